"""The two tracks of the speedrun, read from `records/<track>/track.toml` so targets and rules live in one place.

Each track file also holds the history of the rules as data: one `[[rules]]` entry per rule of the judge's
registry, with the dates between which it is in force, the README sentence it enforces, and its parameters
(such as the compile options a track allows). Nothing in a track file is ever executed.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from speedrun.errors import BadInput

TRACK_NAMES = ("track_1_short", "track_2_medium")
ALIASES = {"small": "track_1_short", "medium": "track_2_medium"}

SOURCE_TREE_RECORDS = Path(__file__).resolve().parents[1] / "records"  # the project's own records/
_PACKAGED_RECORDS = Path(__file__).resolve().parent / "_records"


@dataclass(frozen=True)
class RuleTerms:
    """When one rule of the judge is in force on a track, the sentence it enforces, and its parameters.

    `since` is the first day it applies (None: from the track's first record); `until` the first day it no
    longer does (None: still in force). A record is judged by the rules in force on its date.
    """

    id: str  # the rule's stable id in the judge's registry, e.g. "SR003"
    quote: str  # the README sentence the rule enforces, verbatim
    source: str  # where the quote is: "README, Rules 2"
    since: datetime.date | None = None
    until: datetime.date | None = None
    note: str = ""  # how the boundary is known, when it is not obvious from the quote
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def in_force(self, on: datetime.date) -> bool:
        return (self.since is None or self.since <= on) and (self.until is None or on < self.until)


@dataclass(frozen=True)
class Track:
    name: str
    alias: str
    title: str
    target_val_loss: float
    gpu_model: str
    gpu_count: int
    data_pipeline_sha256: str
    path: Path
    rules: tuple[RuleTerms, ...] = ()
    document_loader_sha256: str = ""  # speedrun/trainer/documents.py, which cuts the 2026-05 recipe's batches

    def terms(self, rule_id: str, on: datetime.date) -> RuleTerms | None:
        """The terms of rule `rule_id` in force on `on`, or None when it is not in force then."""
        return next((t for t in self.rules if t.id == rule_id and t.in_force(on)), None)


def canonical_name(name: str) -> str:
    """'small' -> 'track_1_short'; full names pass through; anything else is bad input."""
    full = ALIASES.get(name, name)
    if full not in TRACK_NAMES:
        raise BadInput(None, f"unknown track {name!r}: use small, medium, {', '.join(TRACK_NAMES)}")
    return full


def track_file(name: str, records_dir: Path | None = None) -> Path:
    """Where a track's TOML lives: the given records/, else the project's own (the source tree, the wheel's copy).

    Never a `records/` of the working directory unless it is passed: the targets and rules a submission is
    judged by must not come from whatever folder the judge happens to be run in.
    """
    candidates = [d for d in (records_dir, SOURCE_TREE_RECORDS, _PACKAGED_RECORDS) if d]
    for root in candidates:
        path = root / name / "track.toml"
        if path.is_file():
            return path
    searched = ", ".join(map(str, candidates))
    raise BadInput(None, f"no track.toml for {name} under {searched}: pass --records DIR with DIR/{name}/track.toml")


@cache
def _load(path: Path) -> Track:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadInput(path, f"cannot read track file: {e}") from None
    try:
        return Track(
            name=str(data["name"]),
            alias=str(data["alias"]),
            title=str(data["title"]),
            target_val_loss=float(data["target_val_loss"]),
            gpu_model=str(data["gpu_model"]),
            gpu_count=int(data["gpu_count"]),
            data_pipeline_sha256=str(data.get("data_pipeline_sha256", "")),
            document_loader_sha256=str(data.get("document_loader_sha256", "")),
            path=path,
            rules=tuple(_rule_terms(path, i, entry) for i, entry in enumerate(data.get("rules", []))),
        )
    except KeyError as e:
        raise BadInput(path, f"missing field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise BadInput(path, f"bad field value: {e}") from None


_TERMS_FIELDS = {"id", "quote", "source", "since", "until", "note", "parameters"}


def _rule_terms(path: Path, index: int, entry: object) -> RuleTerms:
    """One `[[rules]]` entry, validated; errors name the file and the entry."""
    where = f"rules[{index}]"
    if not isinstance(entry, dict):
        raise BadInput(path, f"{where}: expected a table")
    unknown = sorted(set(entry) - _TERMS_FIELDS)
    if unknown:
        raise BadInput(path, f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_TERMS_FIELDS))})")
    for name in ("id", "quote", "source"):
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            raise BadInput(path, f"{where}: field {name!r} must be a non-empty string")
    dates = {}
    for name in ("since", "until"):
        value = entry.get(name)
        if value is not None and (isinstance(value, datetime.datetime) or not isinstance(value, datetime.date)):
            raise BadInput(path, f"{where} ({entry['id']}): field {name!r} must be a date such as 2025-02-01")
        dates[name] = value
    if dates["since"] and dates["until"] and dates["until"] <= dates["since"]:
        raise BadInput(path, f"{where} ({entry['id']}): 'until' {dates['until']} is not after 'since' {dates['since']}")
    parameters = entry.get("parameters", {})
    if not isinstance(parameters, dict):
        raise BadInput(path, f"{where} ({entry['id']}): field 'parameters' must be a table")
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise BadInput(path, f"{where} ({entry['id']}): field 'note' must be a string")
    return RuleTerms(
        id=entry["id"].strip(),
        quote=" ".join(entry["quote"].split()),
        source=entry["source"].strip(),
        since=dates["since"],
        until=dates["until"],
        note=" ".join(note.split()),
        parameters=MappingProxyType(dict(parameters)),
    )


def load_track(name: str, records_dir: Path | None = None) -> Track:
    """Load a track by full name or alias ('small', 'medium')."""
    full = canonical_name(name)
    return _load(track_file(full, records_dir).resolve())


def track_from_path(path: Path) -> str | None:
    """The track a path names, if any of its parts is a track folder name (e.g. records/track_2_medium/...)."""
    for part in path.resolve().parts[::-1]:
        if part in TRACK_NAMES:
            return part
    return None


def split_at_track(path: Path, track: str) -> tuple[Path, tuple[str, ...]] | None:
    """`path` cut at its last `track` part: the records folder above it and the parts below it
    (records/track_1_short/<record>/this_pr -> (records, (<record>, this_pr))); None when no part is `track`."""
    parts = path.parts
    if track not in parts:
        return None
    index = len(parts) - 1 - parts[::-1].index(track)
    return Path(*parts[:index]), parts[index + 1 :]

"""The records store: one `record.toml` per record folder, read into validated `Record` objects.

Layout: `records/<track>/<YYYY-MM-DD>_<Name>/record.toml`, with the record's run logs beside it (or in
sub-folders such as `baseline/` and `this_pr/`). A record's `logs` are either paths relative to its folder
or URLs of files in the upstream repository, which a local copy of that repository's `records/` folder
(`logs_dir`) can resolve. Every error names the file and the field, so a maintainer can fix it in one go.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import stat
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from speedrun.errors import BadInput
from speedrun.tracks import SOURCE_TREE_RECORDS, TRACK_NAMES

RECORD_FILE = "record.toml"
UPSTREAM_REPOSITORY = "https://github.com/KellerJordan/modded-nanogpt"

PUBLISHED_TIME = re.compile(r"^(?P<value>\d+(?:\.\d+)?) (?P<unit>seconds|minutes|hours)(?P<mark>\*?)$")
UNIT_SECONDS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0}
# https://github.com/<owner>/<repo>/(blob|tree)/<ref>/records/<track>/...: the part after `records/` is where
# the file sits in a local copy of that repository's records/ folder.
_REPOSITORY_FILE = re.compile(r"^https://github\.com/[^/]+/[^/]+/(?:blob|tree)/[^/]+/records/(?P<path>.+)$")
_FIELDS = {
    "number",
    "time",
    "date",
    "description",
    "contributors",
    "logs",
    "pull_requests",
    "retimes",
    "note",
    *("data_pipeline_sha256", "code_sha256", "roles", "waivers"),  # what the judge needs: see `JudgingNotes`
    "verified",
}
UNDATED = "unknown"  # the value of `date` for a record published without one

# The [verified] table that `speedrun leaderboard` writes into a record.toml, between these two comment lines.
VERIFIED_TABLE = "verified"
VERIFIED_BEGIN = "# >>> verified: written by `speedrun leaderboard` from the judge's reading of the logs; do not edit"
VERIFIED_END = "# <<< verified"
TIME_SOURCES = ("log", "mean", "normalised")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class VerifiedFigures:
    """What the judge read in a record's logs, kept in its record.toml so the README can show it where the
    logs are not committed (the upstream records' logs are not ours to keep).

    `time_s` is the time the logs give: the figure that shows as the published time when one does
    (`time_from` says which: the linked log's own time, the runs' mean, or the time normalised against a
    baseline re-run), else the linked log's own time, else the mean. `sha256` maps each run log judged,
    as a path relative to the record's folder (here or upstream), to the sha256 of its bytes.
    """

    n: int
    mean_val_loss: float
    p_value: float | None
    verdict: str
    time_s: float | None
    time_from: str | None  # one of TIME_SOURCES, None when the logs give no time
    time_matches: bool  # the published time is `time_s` to its published precision
    sha256: tuple[tuple[str, str], ...]
    judge_version: str
    upstream_commit: str | None = None  # the upstream commit the logs were read at, when known


@dataclass(frozen=True)
class Waiver:
    """A maintainer's decision that a rule does not hold a record back, why, and where that is written."""

    rule_id: str  # the rule's id in the judge's registry, e.g. "SR003"
    reason: str
    link: str  # the README line, pull request or discussion that grants it
    systems_only: bool = False  # the loss requirement waived for a change that does not touch the ML

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.reason}"


@dataclass(frozen=True)
class Roles:
    """What a record's folder holds besides the submission, as a maintainer recorded it.

    Paths are relative to the folder that holds the record's logs (a sub-folder, or a single log file).
    """

    candidate: tuple[str, ...] = ()  # the submission's runs, when the folder's names do not tell
    baseline: str | None = None  # the prior record re-run on the same hardware
    other: tuple[tuple[str, str], ...] = ()  # (path, why it is not the submission)


@dataclass(frozen=True)
class JudgingNotes:
    """The optional fields of a record.toml that the judge reads: waivers, roles and a pinned pipeline hash."""

    waivers: tuple[Waiver, ...] = ()
    roles: Roles = Roles()
    # The data-pipeline hash of the record's own code, computed by the judge from its logs and pinned here
    # (scripts/pin_record_hashes.py), so that the next record is compared with it without reading logs.
    data_pipeline_sha256: str | None = None
    # sha256 of the training code embedded in the record's logs, pinned the same way: a run of this code in
    # another record's folder is a re-run of this record, not that record's submission.
    code_sha256: tuple[str, ...] = ()


@dataclass(frozen=True)
class Record:
    """One row of a track's record history, as published."""

    track: str
    number: int
    time_text: str  # as published: "2.933 minutes", "25.95 minutes*"
    time_seconds: float
    date: datetime.date | None  # None only for a record published without a date
    description: str
    contributors: tuple[str, ...]
    log_urls: tuple[str, ...]  # URLs, or paths relative to `folder`
    pr_urls: tuple[str, ...]
    retimes: int | None  # the record number this row re-times (same code, new timing), else None
    note: str
    folder: Path
    judging: JudgingNotes = JudgingNotes()
    verified: VerifiedFigures | None = None  # the [verified] table, when `speedrun leaderboard` wrote one

    @property
    def path(self) -> Path:
        return self.folder / RECORD_FILE

    @property
    def is_retiming(self) -> bool:
        return self.retimes is not None

    @property
    def time_minutes(self) -> float:
        return self.time_seconds / 60.0


def default_records_dir() -> Path:
    """./records when the working directory has one, else the records/ of the source tree."""
    here = Path.cwd() / "records"
    return here if here.is_dir() else SOURCE_TREE_RECORDS


def parse_time(text: str) -> float:
    """'2.933 minutes' -> 175.98 seconds; a trailing '*' (a footnote mark) is allowed. ValueError otherwise."""
    match = PUBLISHED_TIME.match(text)
    if not match:
        raise ValueError(f"{text!r} is not '<number> seconds|minutes|hours' (optionally followed by '*')")
    return float(match["value"]) * UNIT_SECONDS[match["unit"]]


def is_url(link: str) -> bool:
    return link.startswith(("https://", "http://"))


def upstream_url(path: str) -> str:
    """The upstream repository URL of a repository path such as 'records/track_1_short/<folder>/<file>'."""
    kind = "tree" if PurePosixPath(path).suffix == "" else "blob"
    return f"{UPSTREAM_REPOSITORY}/{kind}/master/{path.strip('/')}"


def repository_path(link: str) -> str | None:
    """The part of an upstream repository URL below `records/` ("track_1_short/<folder>/<file>"), else None."""
    match = _REPOSITORY_FILE.match(link)
    return match["path"] if match else None


def local_log_path(record: Record, link: str, logs_dir: Path | None) -> Path | None:
    """Where a log link of `record` lies on this machine, or None when it is a URL and no `logs_dir` maps it.

    A relative link is resolved against the record folder. A repository URL is resolved against `logs_dir`,
    a local copy of the repository's `records/` folder; BadInput when that copy lacks the file, since a
    partial mirror would silently turn verified rows into unverified ones.
    """
    if not is_url(link):
        return record.folder / link
    match = _REPOSITORY_FILE.match(link)
    if logs_dir is None or match is None:
        return None
    local = logs_dir / match["path"]
    if not local.exists():
        raise BadInput(record.path, f"field 'logs': {link} is not under --logs {logs_dir} (expected {local})")
    return local


def load_records(records_dir: Path | None = None) -> list[Record]:
    """Every record of every track under `records_dir`, validated, sorted by track, number and date.

    Folders without a record.toml (log-only folders, examples) are skipped. BadInput names the file and the
    field on a malformed TOML, a missing or unknown field, a duplicate record number, a re-timing of a record
    that does not exist, a date in the future, or a relative log link that does not exist.
    """
    root = default_records_dir() if records_dir is None else records_dir
    if not root.is_dir():
        raise BadInput(root, "records folder does not exist: pass --records with the path of one")
    # The judge asks for the records once per record it judges: reuse them while no file changed.
    return list(_load_validated(_record_files(root), date.today()))


def _record_files(root: Path) -> tuple[tuple[str, str, int, int], ...]:
    """(track, record.toml, mtime, size) of every record under `root`, sorted: one stat per record folder, and
    no pathlib glob (the judge lists the store for every path it judges). Paths stay strings, made Paths only when
    the records are read: a hundred Paths made and hashed per path judged cost more than the stats."""
    found = []
    for track in TRACK_NAMES:
        folder = os.path.join(root, track)
        try:
            with os.scandir(folder) as entries:
                names = sorted(entry.name for entry in entries if entry.is_dir())
        except OSError:
            continue  # no such track folder
        for name in names:
            path = os.path.join(folder, name, RECORD_FILE)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # a folder of logs only
            except OSError as e:
                raise BadInput(path, f"cannot read: {e}") from None
            if stat.S_ISREG(st.st_mode):
                found.append((track, path, st.st_mtime_ns, st.st_size))
    return tuple(found)


@functools.lru_cache(maxsize=8)
def _load_validated(key: tuple[tuple[str, str, int, int], ...], today: date) -> tuple[Record, ...]:
    records = [read_record(Path(path), track) for track, path, *_ in key]
    _check_numbers(records)
    return tuple(sorted(records, key=_order))


def current_record(track: str, records_dir: Path | None = None) -> Record | None:
    """The record a new submission must beat: the highest-numbered record of the track.

    When that record was re-timed (as record 21 was, twice), its latest re-timing is its current time.
    """
    rows = [r for r in load_records(records_dir) if r.track == track]
    if not rows:
        return None
    top = max(r.number for r in rows)
    return max((r for r in rows if r.number == top), key=_order)


def read_record(path: Path, track: str) -> Record:
    """Read and validate one record.toml of `track`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(path, f"cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(path, f"malformed TOML: {e}") from None
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise BadInput(path, f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(_FIELDS))})")
    fields = _Fields(path, data)
    number = fields.integer("number", minimum=1)
    time_text = fields.text("time")
    try:
        time_seconds = parse_time(time_text)
    except ValueError as e:
        raise BadInput(path, f"field 'time': {e}") from None
    retimes = fields.optional_integer("retimes")
    if retimes is not None and retimes != number:
        raise BadInput(path, f"field 'retimes': a re-timing keeps the number of the record it re-times ({retimes})")
    folder = path.parent
    logs = fields.links("logs")
    for link in logs:
        _check_relative_link(path, folder, link)
    return Record(
        track=track,
        number=number,
        time_text=time_text,
        time_seconds=time_seconds,
        date=fields.date("date"),
        description=fields.text("description"),
        contributors=fields.strings("contributors"),
        log_urls=logs,
        pr_urls=fields.links("pull_requests", urls_only=True),
        retimes=retimes,
        note=fields.text("note", required=False),
        folder=folder,
        judging=read_judging_notes(path, data),
        verified=read_verified(path, data.get(VERIFIED_TABLE)),
    )


def read_verified(path: Path, table: Any) -> VerifiedFigures | None:
    """The [verified] table of a record.toml, validated; None when there is none."""
    if table is None:
        return None
    where = f"[{VERIFIED_TABLE}]"
    if not isinstance(table, dict):
        raise BadInput(path, f"field {VERIFIED_TABLE!r}: expected a table written by `speedrun leaderboard`")
    known = {f for f in VerifiedFigures.__dataclass_fields__}
    unknown = sorted(set(table) - known)
    if unknown:
        raise BadInput(path, f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(known))})")
    fields = _Fields(path, table, prefix=f"{VERIFIED_TABLE}.")
    time_from = fields.text("time_from", required=False) or None
    if time_from is not None and time_from not in TIME_SOURCES:
        raise fields._bad("time_from", f"one of {', '.join(TIME_SOURCES)}")
    sha256 = fields._get("sha256")
    if not isinstance(sha256, dict) or not sha256:
        raise fields._bad("sha256", "a table of log path = sha256")
    for log, digest in sha256.items():
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise BadInput(path, f"{where}: sha256 of {log!r}: expected 64 lowercase hex digits, got {digest!r}")
    commit = fields.text("upstream_commit", required=False) or None
    if commit is not None and not _COMMIT.match(commit):
        raise fields._bad("upstream_commit", "a 40-digit commit hash")
    return VerifiedFigures(
        n=fields.integer("n", minimum=1),
        mean_val_loss=fields.number("mean_val_loss"),
        p_value=fields.optional_number("p_value"),
        verdict=fields.text("verdict"),
        time_s=fields.optional_number("time_s"),
        time_from=time_from,
        time_matches=fields.boolean("time_matches"),
        sha256=tuple(sorted(sha256.items())),
        judge_version=fields.text("judge_version"),
        upstream_commit=commit,
    )


_WAIVER_FIELDS = {"rule", "reason", "link", "systems_only"}
_ROLE_FIELDS = {"candidate", "baseline", "other"}
_RULE_ID = re.compile(r"^SR\d{3}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def read_judging_notes(path: Path, data: dict[str, Any]) -> JudgingNotes:
    """The judge's optional fields of one record.toml (`waivers`, `roles`, `data_pipeline_sha256`), validated."""
    pinned = data.get("data_pipeline_sha256")
    if pinned is not None and (not isinstance(pinned, str) or not _SHA256.match(pinned)):
        raise BadInput(path, f"field 'data_pipeline_sha256': expected 64 lowercase hex digits, got {pinned!r}")
    code = data.get("code_sha256", [])
    if not isinstance(code, list) or not all(isinstance(c, str) and _SHA256.match(c) for c in code):
        raise BadInput(path, "field 'code_sha256': expected a list of 64-hex-digit sha256 strings")
    waivers = _waivers(path, data.get("waivers", []))
    return JudgingNotes(waivers, _roles(path, data.get("roles", {})), pinned, tuple(code))


def _waivers(path: Path, entries: object) -> tuple[Waiver, ...]:
    if not isinstance(entries, list):
        raise BadInput(path, "field 'waivers': expected [[waivers]] tables")
    waivers = []
    for i, entry in enumerate(entries):
        where = f"waivers[{i}]"
        if not isinstance(entry, dict):
            raise BadInput(path, f"{where}: expected a table with rule, reason and link")
        unknown = sorted(set(entry) - _WAIVER_FIELDS)
        if unknown:
            raise BadInput(path, f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_WAIVER_FIELDS))})")
        rule, reason, link = entry.get("rule"), entry.get("reason"), entry.get("link")
        if not isinstance(rule, str) or not _RULE_ID.match(rule):
            raise BadInput(path, f"{where}: field 'rule' must be a rule id such as 'SR003', got {rule!r}")
        if not isinstance(reason, str) or not reason.strip() or "\n" in reason:
            raise BadInput(path, f"{where}: field 'reason' must be a non-empty one-line string")
        if not isinstance(link, str) or not is_url(link) or any(c.isspace() for c in link):
            raise BadInput(path, f"{where}: field 'link' must be the https:// URL of the README line or pull request")
        systems_only = entry.get("systems_only", False)
        if not isinstance(systems_only, bool):
            raise BadInput(path, f"{where}: field 'systems_only' must be true or false")
        waivers.append(Waiver(rule, reason.strip(), link, systems_only))
    return tuple(waivers)


def _roles(path: Path, table: object) -> Roles:
    if not isinstance(table, dict):
        raise BadInput(path, "field 'roles': expected a [roles] table")
    unknown = sorted(set(table) - _ROLE_FIELDS)
    if unknown:
        raise BadInput(path, f"roles: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_ROLE_FIELDS))})")
    candidate = table.get("candidate", [])
    if isinstance(candidate, str):
        candidate = [candidate]
    baseline = table.get("baseline")
    other = table.get("other", {})
    if not isinstance(candidate, list) or not all(_relative_path(c) for c in candidate):
        raise BadInput(path, "roles: 'candidate' must be a path or a list of paths inside the record folder")
    if baseline is not None and not _relative_path(baseline):
        raise BadInput(path, "roles: 'baseline' must be a path inside the record folder")
    if not isinstance(other, dict) or not all(_relative_path(k) and isinstance(v, str) for k, v in other.items()):
        raise BadInput(path, "roles: 'other' must be a table of path = \"why it is not the submission\"")
    return Roles(tuple(candidate), baseline, tuple((k, " ".join(v.split())) for k, v in other.items()))


def _relative_path(value: object) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    pure = PurePosixPath(value)
    return not pure.is_absolute() and ".." not in pure.parts


def _order(record: Record) -> tuple[str, int, bool, datetime.date]:
    # Within one number, the record comes first, then its re-timings by date.
    return (record.track, record.number, record.is_retiming, record.date or datetime.date.min)


def _check_numbers(records: list[Record]) -> None:
    seen: dict[tuple[str, int], Record] = {}
    for record in records:
        if record.is_retiming:
            continue
        key = (record.track, record.number)
        if key in seen:
            raise BadInput(record.path, f"field 'number': record {record.number} is also {seen[key].path}")
        seen[key] = record
    for record in records:
        if record.is_retiming and (record.track, record.number) not in seen:
            raise BadInput(record.path, f"field 'retimes': no record {record.number} in {record.track}")


def _check_relative_link(path: Path, folder: Path, link: str) -> None:
    if is_url(link):
        return
    pure = PurePosixPath(link)
    if pure.is_absolute() or ".." in pure.parts:
        raise BadInput(path, f"field 'logs': {link!r} must be a URL or a path inside the record folder")
    if not (folder / link).exists():
        raise BadInput(path, f"field 'logs': {link!r} does not exist in {folder}")


class _Fields:
    """Typed access to a record.toml's fields; every error names the file and the field."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str = "") -> None:
        self.path = path
        self.data = data
        self.prefix = prefix  # where the fields sit: "" at the top level, "verified." in that table

    def _get(self, name: str, required: bool = True) -> Any:
        if name not in self.data:
            if required:
                raise BadInput(self.path, f"missing field {self.prefix + name!r}")
            return None
        return self.data[name]

    def _bad(self, name: str, expected: str) -> BadInput:
        return BadInput(self.path, f"field {self.prefix + name!r}: expected {expected}, got {self.data.get(name)!r}")

    def number(self, name: str) -> float:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._bad(name, "a number")
        return float(value)

    def optional_number(self, name: str) -> float | None:
        return None if name not in self.data else self.number(name)

    def boolean(self, name: str) -> bool:
        value = self._get(name)
        if not isinstance(value, bool):
            raise self._bad(name, "true or false")
        return value

    def integer(self, name: str, minimum: int) -> int:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._bad(name, f"an integer >= {minimum}")
        return value

    def optional_integer(self, name: str) -> int | None:
        return None if name not in self.data else self.integer(name, minimum=1)

    def text(self, name: str, required: bool = True) -> str:
        value = self._get(name, required)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            raise self._bad(name, "a non-empty one-line string")
        return value.strip()

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() and "\n" not in v for v in value):
            raise self._bad(name, "a list of non-empty one-line strings")
        return tuple(v.strip() for v in value)

    def links(self, name: str, urls_only: bool = False) -> tuple[str, ...]:
        links = self.strings(name)
        for link in links:
            if urls_only and not is_url(link):
                raise BadInput(self.path, f"field {name!r}: {link!r} is not an https:// URL")
            if is_url(link) and any(c.isspace() for c in link):
                raise BadInput(self.path, f"field {name!r}: {link!r} contains spaces")
        return links

    def date(self, name: str) -> datetime.date | None:
        value = self._get(name)
        if value == UNDATED:
            return None
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            raise self._bad(name, f"a date such as 2025-01-26 (or {UNDATED!r})")
        if value > datetime.date.today():
            raise BadInput(self.path, f"field {name!r}: {value} is in the future")
        return value

"""The two tracks of the speedrun, read from `records/<track>/track.toml` so targets live in one place."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

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
class Track:
    name: str
    alias: str
    title: str
    target_val_loss: float
    gpu_model: str
    gpu_count: int
    allowed_compile_options: tuple[str, ...]
    data_pipeline_sha256: str
    path: Path


def canonical_name(name: str) -> str:
    """'small' -> 'track_1_short'; full names pass through; anything else is bad input."""
    full = ALIASES.get(name, name)
    if full not in TRACK_NAMES:
        raise BadInput(None, f"unknown track {name!r}: use small, medium, {', '.join(TRACK_NAMES)}")
    return full


def track_file(name: str, records_dir: Path | None = None) -> Path:
    """Where a track's TOML lives: the given records/, ./records, the source tree, the wheel's copy."""
    candidates = [d for d in (records_dir, Path.cwd() / "records", SOURCE_TREE_RECORDS, _PACKAGED_RECORDS) if d]
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
            allowed_compile_options=tuple(str(x) for x in data.get("allowed_compile_options", [])),
            data_pipeline_sha256=str(data.get("data_pipeline_sha256", "")),
            path=path,
        )
    except KeyError as e:
        raise BadInput(path, f"missing field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise BadInput(path, f"bad field value: {e}") from None


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

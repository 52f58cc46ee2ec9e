"""Find the run logs under a path, and split a record folder into the groups of runs judged together.

A record folder holds logs next to notes, plots, profiler traces and statistics; only the logs count.
Logs directly in the folder are one group (key "."), and each sub-folder holding logs is another, keyed
by its path relative to the folder ("baseline", "this_pr", "this_pr_v3", "runs/seed1").
"""

from __future__ import annotations

from pathlib import Path

from speedrun.errors import BadInput
from speedrun.judge.parse import looks_like_run_log

TOP_LEVEL_GROUP = "."


def find_run_logs(path: Path) -> list[Path]:
    """The run logs at `path`: the file itself, or every run log below a folder, sorted.

    A file named explicitly is returned as is, so that parsing it reports what is wrong with it.
    Raises `BadInput` for a missing path, an empty folder, or a folder without a single run log.
    """
    path = Path(path)
    if not path.exists():
        raise BadInput(path, "no such file or folder")
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BadInput(path, "neither a file nor a folder")
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file() and not is_hidden(p.relative_to(path)))
    except OSError as e:
        raise BadInput(path, f"cannot list folder: {e.strerror or e}") from None
    if not files:
        raise BadInput(path, "empty folder: no run logs to judge")
    logs = [p for p in files if looks_like_run_log(p)]
    if not logs:
        raise BadInput(path, f"no run logs among its {len(files)} files (expected .txt/.log files with step lines)")
    return logs


def holds_run_logs(folder: Path) -> bool:
    """Whether any file below `folder` is a run log: `find_run_logs` without reading further or raising."""
    return any(looks_like_run_log(p) for p in folder.rglob("*") if not is_hidden(p.relative_to(folder)))


def split_groups(folder: Path) -> dict[str, list[Path]]:
    """Group a record folder's logs by the folder they sit in: "." for the top level, else the relative path.

    Groups come out sorted, "." first. A single file is a group of its own under ".".
    """
    folder = Path(folder)
    groups: dict[str, list[Path]] = {}
    for log in find_run_logs(folder):
        key = TOP_LEVEL_GROUP if log == folder else log.parent.relative_to(folder).as_posix()
        groups.setdefault(key, []).append(log)
    return {key: groups[key] for key in sorted(groups, key=lambda k: (k != TOP_LEVEL_GROUP, k))}


def is_hidden(relative: Path) -> bool:
    """Dot-files and anything inside a dot-folder (`.git`, `.ipynb_checkpoints`) are never run logs."""
    return any(part.startswith(".") for part in relative.parts)

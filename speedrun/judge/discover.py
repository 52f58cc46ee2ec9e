"""Find the run logs under a path, and split a record folder into the groups of runs judged together.

A record folder holds logs next to notes, plots, profiler traces and statistics; only the logs count.
Logs directly in the folder are one group (key "."), and each sub-folder holding logs is another, keyed
by its path relative to the folder ("baseline", "this_pr", "this_pr_v3", "runs/seed1").

The folder comes from a submission, so it is walked with care: symbolic links are never followed (a link
could make the judge read a file outside the folder, or count an outside log as a run) but reported as bad
input; the walk is iterative and bounded in depth, so no nesting of folders can exhaust the stack.
"""

from __future__ import annotations

import os
from pathlib import Path

from speedrun.errors import BadInput
from speedrun.judge.parse import looks_like_run_log

TOP_LEVEL_GROUP = "."
MAX_FOLDER_DEPTH = 16  # record folders nest two or three levels (runs/seed1); deeper is not a record
MAX_FILES = 100_000


def find_run_logs(path: Path) -> list[Path]:
    """The run logs at `path`: the file itself, or every run log below a folder, sorted.

    A file named explicitly is returned as is, so that parsing it reports what is wrong with it.
    Raises `BadInput` for a missing path, a symbolic link (the path itself or anything below it), an empty
    folder, or a folder without a single run log.
    """
    path = Path(path)
    _refuse_link(path)
    if not path.exists():
        raise BadInput(path, "no such file or folder")
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BadInput(path, "neither a file nor a folder")
    files, links = _walk(path)
    if links:
        _refuse_link(links[0])
    if not files:
        raise BadInput(path, "empty folder: no run logs to judge")
    logs = [p for p in files if looks_like_run_log(p)]
    if not logs:
        raise BadInput(path, f"no run logs among its {len(files)} files (expected .txt/.log files with step lines)")
    return logs


def holds_run_logs(folder: Path) -> bool:
    """Whether `folder` holds something to judge: a run log, or a link (which judging then reports).

    `find_run_logs` without reading further or raising.
    """
    if Path(folder).is_symlink():
        return True
    try:
        files, links = _walk(Path(folder))
    except BadInput:
        return True  # too deep or unreadable: judging says so
    return bool(links) or any(looks_like_run_log(p) for p in files)


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


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """(every regular file below `root`, every symbolic link below it), sorted, hidden entries left out.

    Iterative, and no link is followed: `DirEntry.is_dir(follow_symlinks=False)` looks at the entry itself.
    """
    files: list[Path] = []
    links: list[Path] = []
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError as e:
            raise BadInput(folder, f"cannot list folder: {e.strerror or e}") from None
        for entry in listed:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                links.append(Path(entry.path))
            elif entry.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_FOLDER_DEPTH:
                    raise BadInput(entry.path, f"folders nested more than {MAX_FOLDER_DEPTH} deep: not a record folder")
                pending.append((Path(entry.path), depth + 1))
            elif entry.is_file(follow_symlinks=False):
                files.append(Path(entry.path))
                if len(files) > MAX_FILES:
                    raise BadInput(root, f"more than {MAX_FILES:,} files: not a record folder")
    return sorted(files), sorted(links)


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise BadInput(
            path, "a symbolic link: the judge does not follow links (put the file or folder itself in its place)"
        )

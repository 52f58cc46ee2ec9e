"""Find the run logs under a path, split a record folder into the groups of runs judged together, and tell
which group is the submission.

A record folder holds logs next to notes, plots, profiler traces and statistics; only the logs count.
Logs directly in the folder are one group (key "."), and each sub-folder holding logs is another, keyed
by its path relative to the folder ("baseline", "this_pr", "this_pr_v3", "runs/seed1").

The folder comes from a submission, so it is walked with care: symbolic links are never followed (a link
could make the judge read a file outside the folder, or count an outside log as a run) but reported as bad
input; the walk is iterative and bounded in depth, so no nesting of folders can exhaust the stack.

Each group has a role (`assign_roles`): the candidate (the submission), its baseline (the prior record
re-run on the same hardware), or other (other baselines, ablations, earlier versions, single-GPU tests,
logs of another kind). Roles come from the record.toml when it names them, else from the names of folders
and files, else from what the logs hold (another format, another model size, another record's code).
Only candidates decide a verdict.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath

from speedrun.errors import BadInput
from speedrun.judge.parse import looks_like_run_log
from speedrun.judge.runlog import RunLog
from speedrun.judge.verdict import Role
from speedrun.store import Roles

TOP_LEVEL_GROUP = "."
MAX_FOLDER_DEPTH = 16  # record folders nest two or three levels (runs/seed1); deeper is not a record
MAX_FILES = 100_000
# Names that say what a group or a log is. A word, not a substring: "baseline0-1480.txt", "12-19-Baseline",
# "xsa-baseline-s1410" are baselines; "baselines_note" is not a run name anyway.
BASELINE_NAME = re.compile(r"(?i)(?<![a-z])(?:baseline|master|prior)(?![a-z])")
OTHER_NAME = re.compile(r"(?i)(?<![a-z])(?:ablations?|extra|single[-_]?gpu|1gpu)(?![a-z])")
VERSION_NAME = re.compile(r"(?i)^(?P<stem>.*?)[-_]?v(?P<version>\d+)(?P<rest>(?:[-_].*)?)$")


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


# --- roles ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Runs judged together, and what they are in their record folder."""

    key: str  # "." for the top level, a sub-folder ("this_pr"), or a subset of one ("logs/baseline*-1490.txt")
    path: Path  # where the reports say the runs are: the folder, or folder/pattern for a subset of its logs
    runs: tuple[RunLog, ...]
    role: Role = Role.CANDIDATE
    reason: str = ""  # how the role was recognised
    from_content: bool = False  # recognised from what its logs hold, not from a name or record.toml


@dataclass(frozen=True)
class RoleHints:
    """What, beyond names and contents, tells the roles apart: the record's own record.toml and its neighbours."""

    roles: Roles = field(default_factory=Roles)  # as a maintainer recorded them in record.toml
    linked: frozenset[Path] = frozenset()  # the logs or folders record.toml links, resolved
    prior_code: frozenset[str] = frozenset()  # sha256 of the prior record's embedded source(s)
    other_code: Mapping[str, str] = field(default_factory=dict)  # sha256 of another record's source -> "record N"
    track_dims: Mapping[int, str] = field(default_factory=dict)  # model_dim -> track, to spot the other track
    track: str = ""
    gpu_count: int = 8


def code_hash(run: RunLog) -> str | None:
    """sha256 of a run's embedded training source, as text: runs of the same code have the same hash."""
    return _text_sha256(run.source) if run.source else None


@lru_cache(maxsize=1024)
def _text_sha256(text: str) -> str:
    # The runs of a folder mostly share one source: each distinct text is hashed once.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def assign_roles(folder: Path, parsed: dict[str, tuple[RunLog, ...]], hints: RoleHints) -> list[Group]:
    """The groups of a record folder with their roles; raises BadInput when no group can be the submission."""
    groups = [Group(key, folder if key == TOP_LEVEL_GROUP else folder / key, runs) for key, runs in parsed.items()]
    groups = _split_named_candidates(folder, groups, hints.roles)
    groups = [part for group in groups for part in _split_by_content(folder, group, hints)]
    groups = [_role_from_record(folder, group, hints.roles) or group for group in groups]
    explicit = bool(hints.roles.candidate)
    if explicit:
        groups = [
            g if g.reason else replace(g, role=Role.OTHER, reason="not named as the submission in record.toml")
            for g in groups
        ]
    else:
        groups = [g if g.reason else _role_from_name(g) for g in groups]
        groups = _latest_versions(groups)
        groups = _linked_candidates(folder, groups, hints.linked)
    groups = _one_baseline(_same_code_is_the_submission(groups))
    if not any(g.role is Role.CANDIDATE for g in groups):
        groups = _promote_a_candidate(folder, groups)
    order = {Role.CANDIDATE: 0, Role.BASELINE: 1, Role.OTHER: 2}
    return sorted(groups, key=lambda g: (order[g.role], g.key != TOP_LEVEL_GROUP, g.key))


def _relative(folder: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _split_named_candidates(folder: Path, groups: list[Group], roles: Roles) -> list[Group]:
    """A log file record.toml names as the candidate becomes a group of its own, out of its folder's group."""
    files = {PurePosixPath(c).as_posix() for c in roles.candidate}
    result = []
    for group in groups:
        # Most record.toml files name no log: then none is named, and no path need be resolved to say so.
        named = [r for r in group.runs if _relative(folder, r.path) in files] if files else []
        rest = tuple(r for r in group.runs if r not in named)
        for run in named:
            result.append(Group(_relative(folder, run.path), run.path, (run,), Role.CANDIDATE, "named in record.toml"))
        if rest:
            result.append(replace(group, runs=rest))
    return result


def _split_by_content(folder: Path, group: Group, hints: RoleHints) -> list[Group]:
    """The logs of a group that are something else than the group's runs, each kind split off as its own group."""
    kinds: dict[tuple[Role, str], list[RunLog]] = {}
    keep: list[RunLog] = []
    has_other_formats = any(r.format != "llmc" for r in group.runs)
    full_machines = any(_gpus(r) >= hints.gpu_count for r in group.runs)
    group_is_baseline = bool(BASELINE_NAME.search(group.key))
    for run in group.runs:
        kind = _kind_of(run, hints, has_other_formats, full_machines, group_is_baseline)
        if kind is None:
            keep.append(run)
        else:
            kinds.setdefault(kind, []).append(run)
    if not kinds:
        return [group]
    if not keep and len(kinds) == 1:  # the whole group is of one kind: it keeps its name
        ((role, reason),) = kinds
        return [replace(group, role=role, reason=reason, from_content=not reason.startswith("named"))]
    parts = [replace(group, runs=tuple(keep))] if keep else []
    for (role, reason), runs in kinds.items():
        for code_runs in _by_code(runs) if role is Role.BASELINE else [runs]:
            pattern = _name_pattern([r.path.name for r in code_runs])
            key = pattern if group.key == TOP_LEVEL_GROUP else f"{group.key}/{pattern}"
            content = not reason.startswith("named")
            parts.append(Group(key, group.path / pattern, tuple(code_runs), role, reason, content))
    return parts


def _kind_of(
    run: RunLog, hints: RoleHints, has_other_formats: bool, full_machines: bool, group_is_baseline: bool
) -> tuple[Role, str] | None:
    """What a log is when it is not one of its group's runs: (role, why), else None."""
    if run.format == "llmc" and has_other_formats:
        return Role.OTHER, "a log of another format (llm.c) beside the speedrun logs"
    dims = model_dims(run)
    if dims is not None and hints.track_dims.get(dims, hints.track) != hints.track:
        return Role.OTHER, f"a log of the {hints.track_dims[dims]} model (model_dim {dims})"
    if OTHER_NAME.search(run.path.name) or (full_machines and 0 < _gpus(run) < hints.gpu_count):
        return Role.OTHER, f"a run on {_gpus(run) or 'fewer'} GPU(s), a test beside the record's runs"
    if group_is_baseline:  # inside a baseline folder, runs of any earlier record's code are the baseline's
        return None
    if BASELINE_NAME.search(run.path.name):
        return Role.BASELINE, "named as a baseline"
    code = code_hash(run) if (hints.prior_code or hints.other_code) else None
    if code and code in hints.prior_code:
        return Role.BASELINE, "runs the prior record's code"
    if code and code in hints.other_code:
        return Role.OTHER, f"runs the code of {hints.other_code[code]}"
    return None


def _gpus(run: RunLog) -> int:
    return run.world_size or (run.gpus.count if run.gpus else 0)


_MODEL_DIM = re.compile(r"\s*[:=]\s*(\d+)")


def model_dims(run: RunLog) -> int | None:
    """The model width a run trains, from its config line or its embedded source (None when neither says)."""
    if run.config:
        found = _find_key(run.config, ("model_dim", "n_embd"))
        if isinstance(found, int):
            return found
    return _source_dims(run.source) if run.source else None


@lru_cache(maxsize=512)
def _source_dims(source: str) -> int | None:
    """The first `model_dim=N` / `n_embd: N` of a source; found with str.find, since a regex search for the
    words would test every position of a 100 KB script."""
    for word in ("model_dim", "n_embd"):
        start = source.find(word)
        while start != -1:
            before = source[start - 1] if start else " "
            if not (before.isalnum() or before == "_"):
                match = _MODEL_DIM.match(source, start + len(word))
                if match:
                    return int(match.group(1))
            start = source.find(word, start + 1)
    return None


def _find_key(tree: object, keys: tuple[str, ...]) -> object:
    if isinstance(tree, dict):
        for key in keys:
            if key in tree:
                return tree[key]
        for value in tree.values():
            found = _find_key(value, keys)
            if found is not None:
                return found
    return None


def _by_code(runs: list[RunLog]) -> list[list[RunLog]]:
    by: dict[str | None, list[RunLog]] = {}
    for run in runs:
        by.setdefault(code_hash(run), []).append(run)
    return list(by.values())


def _name_pattern(names: list[str]) -> str:
    """One file's name, or the names' common start and end around a `*` ("baseline*-1490.txt")."""
    if len(names) == 1:
        return names[0]
    start = _common_start(names)
    end = _common_start([n[len(start) :][::-1] for n in names])[::-1]
    if not start:  # nothing in common but the suffix: name the first and count the others
        return f"{min(names)} and {len(names) - 1} more"
    return f"{start}*{end}"


def _common_start(texts: list[str]) -> str:
    """The longest text every one of `texts` starts with, character by character."""
    first, last = min(texts), max(texts)
    length = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    return first[:length]


def _role_from_record(folder: Path, group: Group, roles: Roles) -> Group | None:
    """The role record.toml gives a group, if it names it."""
    key = group.key
    if roles.baseline is not None and PurePosixPath(roles.baseline).as_posix() == key:
        return replace(group, role=Role.BASELINE, reason="named as the baseline in record.toml")
    for path, why in roles.other:
        if PurePosixPath(path).as_posix() == key:
            return replace(group, role=Role.OTHER, reason=f"{why} (record.toml)")
    if key in {PurePosixPath(c).as_posix() for c in roles.candidate}:
        return replace(group, role=Role.CANDIDATE, reason="named as the submission in record.toml")
    return None


def _role_from_name(group: Group) -> Group:
    name = "" if group.key == TOP_LEVEL_GROUP else group.key
    if BASELINE_NAME.search(name):
        return replace(group, role=Role.BASELINE, reason="named as a baseline")
    if OTHER_NAME.search(name):
        return replace(group, role=Role.OTHER, reason="named as extra runs or an ablation")
    return group


def _latest_versions(groups: list[Group]) -> list[Group]:
    """Among candidate folders named `<stem>_v<N>...`, only the highest version of each stem is the submission."""
    versions: dict[str, int] = {}
    for g in groups:
        match = VERSION_NAME.match(PurePosixPath(g.key).name)
        if g.role is Role.CANDIDATE and not g.reason and match:
            versions[match["stem"]] = max(versions.get(match["stem"], 0), int(match["version"]))
    result = []
    for g in groups:
        match = VERSION_NAME.match(PurePosixPath(g.key).name)
        if g.role is Role.CANDIDATE and not g.reason and match and int(match["version"]) < versions[match["stem"]]:
            latest = f"v{versions[match['stem']]}"
            g = replace(g, role=Role.OTHER, reason=f"an earlier version (v{match['version']}) than {latest}")
        result.append(g)
    return result


def _linked_candidates(folder: Path, groups: list[Group], linked: frozenset[Path]) -> list[Group]:
    """When several groups could be the submission, the one record.toml links is, and the others are not."""
    open_ = [g for g in groups if g.role is Role.CANDIDATE and not g.reason]
    if len(open_) < 2 or not linked:
        return groups

    def is_linked(g: Group) -> bool:
        folder_of = g.path.resolve()
        return any(p == folder_of or any(r.path.resolve() == p for r in g.runs) for p in linked)

    chosen = [g for g in open_ if is_linked(g)]
    if not chosen:
        return groups
    return [
        replace(g, reason="the log record.toml links")
        if g in chosen
        else replace(g, role=Role.OTHER, reason="not the runs record.toml links")
        if g in open_
        else g
        for g in groups
    ]


def _same_code_is_the_submission(groups: list[Group]) -> list[Group]:
    """Runs of the submission's own code are the submission, whatever their name or record.toml says: a name
    alone ("extra", "baseline", "v1") must not let a submission set its worst runs aside."""
    code = {code_hash(r) for g in groups if g.role is Role.CANDIDATE for r in g.runs} - {None}
    return [
        replace(g, role=Role.CANDIDATE, reason=f"runs the submission's code, though {g.reason}")
        if g.role is not Role.CANDIDATE and not g.from_content and g.runs and {code_hash(r) for r in g.runs} <= code
        else g
        for g in groups
    ]


def _one_baseline(groups: list[Group]) -> list[Group]:
    """Of several baseline groups, one is the baseline: `baseline` itself, else the one whose runs are longest;
    the others are shorter or other re-runs of the prior record."""
    baselines = [g for g in groups if g.role is Role.BASELINE]
    if len(baselines) < 2:
        return groups
    named = [g for g in baselines if "record.toml" in g.reason]
    chosen = named[0] if named else pick_baseline({g.key: g.runs for g in baselines})
    chosen_key = chosen.key if isinstance(chosen, Group) else chosen
    return [
        replace(g, role=Role.OTHER, reason=f"another re-run of the prior record ({chosen_key} is the baseline)")
        if g.role is Role.BASELINE and g.key != chosen_key
        else g
        for g in groups
    ]


def pick_baseline(candidates: Mapping[str, tuple[RunLog, ...]]) -> str | None:
    """Which of several baseline groups is the baseline: `baseline` itself, else the one whose runs are longest.

    Folders such as baseline-s1430/ and baseline-s1480/ re-run the prior record at several step counts;
    the prior record as published is the full schedule, and shorter ones are ablations. --baseline overrides.
    """
    if not candidates:
        return None
    if "baseline" in candidates:
        return "baseline"

    def longest_run(key: str) -> tuple[int, int]:
        runs = candidates[key]
        return max((step.step for run in runs if (step := run.final) is not None), default=0), len(runs)

    return max(sorted(candidates), key=longest_run)


def _promote_a_candidate(folder: Path, groups: list[Group]) -> list[Group]:
    """A folder with no candidate: its baseline is judged as a submission of its own (a re-run judged alone);
    with no baseline either, nothing here is a submission."""
    baseline = next((g for g in groups if g.role is Role.BASELINE), None)
    if baseline is not None:
        return [replace(g, role=Role.CANDIDATE, reason="") if g is baseline else g for g in groups]
    reasons = "; ".join(f"{g.key}: {g.reason}" for g in groups[:3])
    raise BadInput(folder, f"no group of runs here is a submission ({reasons})")

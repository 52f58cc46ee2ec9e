"""`speedrun reproduce`: run a published record's own training script, taken from its run log.

Upstream run logs open with the exact script that produced them (and, from 2026, the side files it imports,
each after a dashed `# name.py` header). Re-running that script on your own hardware is how the prior record
is re-timed for the speed rule (a `baseline/` folder beside your runs), and how `speedrun train` is held
against the record it follows. This runs code from a log, so it happens only on this explicit command, and
it first says which record, which files and which sha256 it runs. The judge never runs anything.

Short smoke runs change the script as little as possible: documented edits of its hyperparameter lines (step
count, validation frequency, the paths of the data shards), found with `ast` and applied to the source text,
each listed as `file:line name: old -> new`.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import typer

from speedrun.errors import BadInput
from speedrun.trainer.config import DEFAULT_DATA_DIR

MAIN_SCRIPT = "train_gpt.py"
WORK_FOLDER = ".reproduce"  # inside --out; a dot-folder, so the judge never looks in it
# A side file appended to the embedded source: a blank line, 40 dashes, `# name.py`, 40 dashes, a blank line.
_SIDE_FILE_HEADER = re.compile(r"\n-{40}\n# ([A-Za-z0-9_][A-Za-z0-9_.-]*\.py)\n-{40}\n\n")
_DATA_SHARDS = re.compile(r"(?:^|/)(fineweb_(?:train|val)_\*\.bin)$")
_WORLD_SIZE_NAME = re.compile(r"(?:\w+_)?world_size$")
_PYTHON_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_STEPS, _SCHEDULED, _EXTENSION, _VAL_EVERY = (
    "num_iterations",
    "num_scheduled_iterations",
    "num_extension_iterations",
    "val_loss_every",
)
# Packages some records fetch or import that a machine may lack, and why they need them.
_FLEX_HINT = "`--attention flex` runs the script with a FlexAttention stand-in instead"
_PACKAGE_HINTS = {
    "kernels": f"records from #38 on load Flash Attention 3 through it from the Hugging Face Hub; {_FLEX_HINT}",
    "flash_attn_interface": f"records #29 to #37 import Flash Attention 3 from it; {_FLEX_HINT}",
}
AttentionChoice = Literal["fa3", "flex"]
STAND_IN = "flash_attn_interface.py"  # speedrun/trainer/flash_flex.py, copied beside the script
KERNELS_SHIM = "kernels.py"
_KERNELS_SHIM_TEXT = '''"""`kernels.get_kernel` for a record script run by `speedrun reproduce --attention flex`:
every kernel asked for is the FlexAttention stand-in of Flash Attention 3 in flash_attn_interface.py."""

from flash_attn_interface import get_kernel  # noqa: F401
'''


@dataclass(frozen=True)
class SourceFile:
    """A file of the record's code, as it will be written into the work folder."""

    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Edit:
    """One change to a hyperparameter line of the script."""

    file: str
    line: int
    name: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.name}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class RecordCode:
    """The code a run log embeds: the training script and its side files, with where they came from."""

    log: Path
    files: tuple[SourceFile, ...]  # the main script first
    chosen_because: str = ""  # why this log, when a folder was given
    record: str = ""  # which record it is, where the records store knows its log

    @property
    def main(self) -> SourceFile:
        return self.files[0]


@dataclass
class Outcome:
    """What a reproduction did, for the report and --json."""

    code: RecordCode
    files: list[SourceFile] = field(default_factory=list)  # as run, after the edits
    edits: list[Edit] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    work: Path | None = None
    provided: tuple[SourceFile, ...] = ()  # written beside the record's code (the attention stand-in)


# ------------------------------------------------------------------------------------ the log and its code


def choose_log(path: Path) -> tuple[Path, str]:
    """The run log to take the code from, and a sentence saying why: `path` itself, or for a record folder the
    log the records store links for it, else the first by name of its logs that embed a script, leaving out
    the re-runs of the previous record that record folders keep in `*baseline*` sub-folders."""
    from speedrun.judge.discover import find_run_logs
    from speedrun.judge.parse import parse_log

    path = Path(path)
    if not path.is_dir():
        if not path.exists():
            raise BadInput(path, "no such file or folder")
        return path, ""
    logs = find_run_logs(path)
    linked = _linked_log(path)
    if linked is not None and linked in logs:
        return linked, f"the log the records store links for {path}"
    own = [log for log in logs if not any("baseline" in part.lower() for part in log.relative_to(path).parts[:-1])]
    candidates = own or logs
    sources = {}
    for log in candidates:
        source = parse_log(log).source
        if source is not None:
            sources[log] = hashlib.sha256(source.encode("utf-8")).hexdigest()
    if not sources:
        raise BadInput(path, f"none of its {len(logs)} run logs embeds a training script; nothing to reproduce")
    distinct = len(set(sources.values()))
    same = "all embed the same script" if distinct == 1 else f"they embed {distinct} different scripts"
    left_out = f", leaving out {len(logs) - len(own)} in baseline folders" if own and len(own) < len(logs) else ""
    return min(sources), f"{len(sources)} logs with a script in {path}{left_out} ({same}); taking the first by name"


def _linked_log(folder: Path) -> Path | None:
    """The log of `folder` that a record of the records store links (by the folder's name in the link)."""
    from speedrun.store import load_records

    try:
        records = load_records()
    except BadInput:
        return None
    marker = f"/{folder.name}/"
    for record in records:
        for url in record.log_urls:
            if marker in url:
                candidate = folder / url.split(marker, 1)[1]
                if candidate.is_file():
                    return candidate
    return None


def read_record_code(log: Path, chosen_because: str = "") -> RecordCode:
    """The training script embedded in a run log and the side files appended to it, each checked to parse."""
    from speedrun.judge.parse import MAX_KEPT_LINE_CHARS, parse_log
    from speedrun.judge.pipeline import is_trainer_source

    source = parse_log(log).source
    if source is None:
        raise BadInput(log, "embeds no training script (its log opens with step lines); nothing to reproduce")
    if is_trainer_source(source):
        raise BadInput(log, "was written by `speedrun train`; re-run it with `speedrun train`, not reproduce")
    if any(len(line) > MAX_KEPT_LINE_CHARS and line.endswith(" [...]") for line in source.splitlines()):
        raise BadInput(log, f"its script has a line over {MAX_KEPT_LINE_CHARS:,} characters, which the reader cuts")
    files = split_side_files(source)
    for f in files:
        try:
            ast.parse(f.text)
        except SyntaxError as e:
            python = ".".join(map(str, sys.version_info[:2]))
            raise BadInput(
                log, f"the embedded {f.name} does not parse under this Python {python} (line {e.lineno}: {e.msg})"
            ) from None
    return RecordCode(log, tuple(files), chosen_because, record_name(log))


def split_side_files(source: str) -> list[SourceFile]:
    """The main script, then each side file appended under a dashed `# name.py` header, trailing blank lines
    reduced to one newline (the log adds its own)."""
    parts = _SIDE_FILE_HEADER.split(source)
    files = [SourceFile(MAIN_SCRIPT, parts[0].rstrip("\n") + "\n")]
    for name, text in zip(parts[1::2], parts[2::2], strict=True):
        if name == MAIN_SCRIPT or any(f.name == name for f in files):
            raise BadInput(None, f"the embedded source holds two files named {name}")
        files.append(SourceFile(name, text.rstrip("\n") + "\n"))
    return files


def record_name(log: Path) -> str:
    """'record 28 of track_1_short (2.812 minutes, 2025-08-23)' when the records store links this log (by its file
    name) or its folder, else the folder's name."""
    from speedrun.store import load_records

    try:
        records = load_records()
    except BadInput:
        records = []
    folder = f"/{log.parent.name}/"
    for match in (lambda url: url.endswith(f"/{log.name}"), lambda url: folder in url):
        for record in records:
            if any(match(url) for url in record.log_urls):
                return f"record {record.number} of {record.track} ({record.time_text}, {record.date or 'undated'})"
    return f"an unlisted record ({log.parent.name})"


# ----------------------------------------------------------------------------------------- what it needs


def _trees(code: RecordCode) -> Iterator[tuple[SourceFile, ast.Module]]:
    for f in code.files:
        yield f, ast.parse(f.text)


def missing_packages(code: RecordCode, provided: tuple[SourceFile, ...] = ()) -> list[tuple[str, str, int]]:
    """(package, file, line) for each top-level package the code imports that this Python cannot find. The
    code's own side files, and the `provided` files written beside them, count as present."""
    own = {PurePosixPath(f.name).stem for f in (*code.files, *provided)}
    missing: dict[str, tuple[str, str, int]] = {}
    for f, tree in _trees(code):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in own or top == "__future__" or top in missing:
                    continue
                if importlib.util.find_spec(top) is None:
                    missing[top] = (top, f.name, node.lineno)
    return list(missing.values())


def world_size_rule(code: RecordCode) -> tuple[str, int, str, int] | None:
    """The script's own assertion on its process count: ('==', 8, file, line) for `assert world_size == 8`,
    ('divides', 8, file, line) for `assert 8 % world_size == 0`, or None."""
    for f, tree in _trees(code):
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare):
                rule = _world_size_comparison(node.test)
                if rule is not None:
                    return (*rule, f.name, node.lineno)
    return None


def _world_size_comparison(test: ast.Compare) -> tuple[str, int] | None:
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return None
    left, right = test.left, test.comparators[0]
    for a, b in ((left, right), (right, left)):
        if _is_world_size(a) and _int_value(b) is not None:
            return "==", _int_value(b)  # type: ignore[return-value]
        if (
            isinstance(a, ast.BinOp)
            and isinstance(a.op, ast.Mod)
            and _is_world_size(a.right)
            and _int_value(a.left)
            and _int_value(b) == 0
        ):
            return "divides", _int_value(a.left)  # type: ignore[return-value]
    return None


def _is_world_size(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and bool(_WORLD_SIZE_NAME.fullmatch(node.id))


def _int_value(node: ast.expr) -> int | None:
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int else None


def attention_stand_in() -> tuple[SourceFile, SourceFile]:
    """The files `--attention flex` writes beside the script: the FlexAttention stand-in of Flash Attention 3 as
    `flash_attn_interface.py` (what records #29-37 import) and a `kernels.py` whose `get_kernel` returns it (what
    records #38 on call)."""
    text = (Path(__file__).with_name("flash_flex.py")).read_text(encoding="utf-8")
    return SourceFile(STAND_IN, text), SourceFile(KERNELS_SHIM, _KERNELS_SHIM_TEXT)


def check_can_run(code: RecordCode, nproc_per_node: int, provided: tuple[SourceFile, ...] = ()) -> None:
    """Refuse up front, in one line, what would only fail minutes later: a missing package, a process count the
    script asserts against, a stand-in whose name one of the record's own files already has."""
    for f in provided:
        if any(own.name == f.name for own in code.files):
            raise BadInput(code.log, f"the record has its own {f.name}; the attention stand-in cannot take its place")
    missing = sorted(missing_packages(code, provided), key=lambda m: m[0] not in _PACKAGE_HINTS)
    if missing:
        package, file, line = missing[0]
        hint = _PACKAGE_HINTS.get(package)
        others = f" (also missing: {', '.join(m[0] for m in missing[1:])})" if len(missing) > 1 else ""
        raise BadInput(
            code.log,
            f"its script needs the package `{package}` ({file}:{line}), which is not installed here"
            + (f"; {hint}" if hint else "")
            + others,
        )
    rule = world_size_rule(code)
    if rule is None:
        return
    kind, value, file, line = rule
    if kind == "==" and nproc_per_node != value:
        raise BadInput(
            code.log,
            f"its script asserts world_size == {value} ({file}:{line}): it runs on exactly {value} GPUs, "
            f"so use --nproc-per-node {value} on a machine that has them",
        )
    if kind == "divides" and value % nproc_per_node:
        divisors = ", ".join(str(d) for d in range(1, value + 1) if value % d == 0)
        raise BadInput(code.log, f"its script asserts {value} % world_size == 0 ({file}:{line}): use {divisors}")


def log_subfolders(code: RecordCode) -> list[str]:
    """Folders under logs/ that the script writes its log into without creating them: several records name
    their runs `final/<uuid>` or `yarn/<uuid>` and open `logs/<run_id>.txt` after making only `logs/`. Read from
    the literal start of `run_id = f"final/{...}"`; anything absolute or climbing out with `..` is ignored."""
    found = []
    for _, tree in _trees(code):
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            if not any(isinstance(t, ast.Name) and t.id == "run_id" for t in targets):
                continue
            head = value.values[0] if isinstance(value, ast.JoinedStr) and value.values else value
            if isinstance(head, ast.Constant) and isinstance(head.value, str) and "/" in head.value:
                folder = PurePosixPath(head.value.rsplit("/", 1)[0])
                if folder.parts and not folder.is_absolute() and ".." not in folder.parts:
                    found.append(folder.as_posix())
    return sorted(set(found))


# ------------------------------------------------------------------------------------------------ the edits


def _literal(node: ast.expr) -> bool:
    """A number written out (or arithmetic on numbers, as `2*10172`), not computed from other names."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.BinOp):
        return _literal(node.left) and _literal(node.right)
    return isinstance(node, ast.UnaryOp) and _literal(node.operand)


def _assigned_numbers(tree: ast.Module, name: str) -> list[ast.expr]:
    """The number literals assigned to `name` anywhere (a class attribute, a global, an annotated field)."""
    values = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and _literal(value):
            values.append(value)
    return values


def _shard_paths(tree: ast.Module) -> list[ast.Constant]:
    """String literals naming the FineWeb shard pattern (`.../fineweb_train_*.bin`, `.../fineweb_val_*.bin`)."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _DATA_SHARDS.search(node.value)
    ]


def _offset(lines: list[str], starts: list[int], lineno: int, col: int) -> int:
    """A character offset into the text from ast's (1-based line, UTF-8 byte column)."""
    line = lines[lineno - 1]
    return starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", errors="replace"))


def override(
    script: SourceFile,
    steps: int | None,
    val_every: int | None,
    data_dir: str | None,
) -> tuple[SourceFile, list[Edit]]:
    """The script with its step count, validation frequency and shard paths replaced, and the list of edits.

    Steps: `num_scheduled_iterations` (and `num_extension_iterations` set to 0) where the script splits its
    steps that way, else every `num_iterations` set to a number. Validation: `val_loss_every`. Data: every
    string ending in `fineweb_train_*.bin` or `fineweb_val_*.bin` points into `data_dir` instead, which is
    relative to the folder the script runs in. A requested change the script has no line for is bad input.
    """
    tree = ast.parse(script.text)
    changes: list[tuple[ast.expr, str, str]] = []  # (node, name, new source text)

    def require(nodes: list[ast.expr], option: str, what: str) -> list[ast.expr]:
        if not nodes:
            raise BadInput(None, f"{option}: the script has no {what} to change")
        return nodes

    if steps is not None:
        scheduled = _assigned_numbers(tree, _SCHEDULED)
        if scheduled:
            changes += [(node, _SCHEDULED, str(steps)) for node in scheduled]
            changes += [(node, _EXTENSION, "0") for node in _assigned_numbers(tree, _EXTENSION)]
        else:
            nodes = require(_assigned_numbers(tree, _STEPS), "--steps", f"`{_STEPS}` set to a number")
            changes += [(node, _STEPS, str(steps)) for node in nodes]
    if val_every is not None:
        nodes = require(_assigned_numbers(tree, _VAL_EVERY), "--val-every", f"`{_VAL_EVERY}` set to a number")
        changes += [(node, _VAL_EVERY, str(val_every)) for node in nodes]
    if data_dir is not None:
        nodes = require(_shard_paths(tree), "--data-dir", "path ending in fineweb_train_*.bin")  # type: ignore[arg-type]
        for node in nodes:
            pattern = _DATA_SHARDS.search(node.value).group(1)  # type: ignore[union-attr, attr-defined]
            changes.append((node, "data", repr(f"{data_dir}/{pattern}")))

    lines = _PYTHON_LINES.findall(script.text)  # lines as ast counts them (not str.splitlines' form feeds etc.)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    text = script.text
    edits = []
    for node, name, new in sorted(changes, key=lambda c: (c[0].lineno, c[0].col_offset), reverse=True):
        begin = _offset(lines, starts, node.lineno, node.col_offset)
        end = _offset(lines, starts, node.end_lineno or node.lineno, node.end_col_offset or 0)
        old = text[begin:end]
        text = text[:begin] + new + text[end:]
        edits.append(Edit(script.name, node.lineno, name, " ".join(old.split()), new))
    return SourceFile(script.name, text), edits[::-1]


# -------------------------------------------------------------------------------------------- the runs


def write_work_folder(work: Path, files: list[SourceFile]) -> Path:
    """Write the code into the work folder with a SHA256SUMS file of what is written."""
    work.mkdir(parents=True, exist_ok=True)
    for f in files:
        (work / f.name).write_text(f.text, encoding="utf-8")
    sums = "".join(f"{f.sha256}  {f.name}\n" for f in files)
    (work / "SHA256SUMS").write_text(sums, encoding="utf-8")
    return work


def _logs_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*.txt") if p.is_file()} if folder.is_dir() else set()


def _move(log: Path, out: Path, suffix: str = "") -> Path:
    """Move a log into `out` under its own name (plus `suffix`), never over an existing file."""
    target = out / f"{log.name}{suffix}"
    n = 1
    while target.exists():
        n += 1
        target = out / f"{log.stem}-{n}{log.suffix}{suffix}"
    os.replace(log, target)
    return target


def run_record(
    code: RecordCode,
    out: Path,
    runs: int,
    nproc_per_node: int,
    steps: int | None,
    val_every: int | None,
    data_dir: Path,
    say: Callable[[str], None],
    stdout: object = None,
    attention: AttentionChoice = "fa3",
) -> Outcome:
    """Check, edit, write and run the record's code `runs` times under torch.distributed.run; move each run's
    logs into `out`. A failed or interrupted run's logs are kept beside the others under `<name>.failed` or
    `<name>.interrupted`, out of the judge's sight, and the error says so."""
    from speedrun.trainer.data import train_files, val_files
    from speedrun.trainer.launch import run_to_the_end

    provided = attention_stand_in() if attention == "flex" else ()
    check_can_run(code, nproc_per_node, provided)
    train_files(data_dir)
    val_files(data_dir)
    if out.exists() and not out.is_dir():
        raise BadInput(out, "exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    work = out / WORK_FOLDER / code.main.sha256[:12]  # one per published script
    relative_data = Path(os.path.relpath(data_dir.resolve(), work.resolve())).as_posix()
    try:
        main, edits = override(code.main, steps, val_every, relative_data)
    except BadInput as e:
        raise BadInput(code.log, e.problem) from None
    files = [main, *code.files[1:]]
    write_work_folder(work, [*files, *provided])
    for folder in log_subfolders(code):
        (work / "logs" / folder).mkdir(parents=True, exist_ok=True)
    outcome = Outcome(code, files, edits, [], work, provided)

    say(f"reproducing {code.record}: the script embedded in {code.log}")
    if code.chosen_because:
        say(f"  ({code.chosen_because})")
    for original, written in zip(code.files, files, strict=True):
        edited = " (edited below)" if written.text != original.text else ""
        say(f"  {written.name}  sha256 {original.sha256}  as published{edited}")
        if edited:
            say(f"  {written.name}  sha256 {written.sha256}  as run")
    for edit in edits:
        say(f"  edit {edit}")
    if provided:
        say("  attention: Flash Attention 3 replaced by speedrun's FlexAttention stand-in (--attention flex),")
        say("  the same function computed more slowly; not part of the record:")
        for f in provided:
            say(f"  {f.name}  sha256 {f.sha256}  written beside the script")
    for folder in log_subfolders(code):
        say(f"  made logs/{folder}/ in the work folder: the script writes its log there without making it")
    say(f"  work folder {work}, {runs} run(s) on {nproc_per_node} process(es), logs into {out}")

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc_per_node}"]
    command.append(MAIN_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "DATA_PATH"}  # the edited paths are the whole truth
    env["PYTHONUNBUFFERED"] = "1"
    for number in range(1, runs + 1):
        say(f"run {number} of {runs}")
        before = _logs_under(work / "logs")
        try:
            code_ = run_to_the_end(command, cwd=work, env=env, stdout=stdout)  # type: ignore[arg-type]
        except KeyboardInterrupt:
            aside = [_move(log, out, ".interrupted") for log in sorted(_logs_under(work / "logs") - before)]
            raise ReproduceInterrupted(aside, outcome.logs) from None
        new = sorted(_logs_under(work / "logs") - before)
        if code_ != 0:
            aside = [_move(log, out, ".failed") for log in new]
            kept = f"{len(outcome.logs)} finished log(s) kept in {out}"
            partial = f", its partial log set aside as {aside[0]}" if aside else ""
            raise BadInput(work / MAIN_SCRIPT, f"run {number} of {runs} exited with code {code_}{partial}; {kept}")
        if not new:
            raise BadInput(work / MAIN_SCRIPT, f"run {number} of {runs} finished but wrote no log under logs/")
        for log in new:
            outcome.logs.append(_move(log, out))
            say(f"  log {outcome.logs[-1]}")
    return outcome


class ReproduceInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the logs it had written so far were set aside; the finished ones are in `kept`."""

    def __init__(self, aside: list[Path], kept: list[Path]) -> None:
        super().__init__()
        self.aside = aside
        self.kept = kept


# ------------------------------------------------------------------------------------------------ command


def reproduce(
    path: Path = typer.Argument(
        ...,
        help="A published run log, or a record folder holding them (the first by name is used).",
        show_default=False,
    ),
    runs: int = typer.Option(1, "--runs", min=1, help="How many times to run the script."),
    nproc_per_node: int = typer.Option(
        8, "--nproc-per-node", min=1, help="Processes (GPUs) for torch.distributed.run; the records ran on 8."
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Edit the script's step count (num_iterations, or num_scheduled_iterations)."
    ),
    val_every: int | None = typer.Option(
        None, "--val-every", min=0, help="Edit the script's val_loss_every (0: only at the end)."
    ),
    data_dir: Path = typer.Option(
        DEFAULT_DATA_DIR, "--data-dir", help="Folder holding the token shards; the script's shard paths point here."
    ),
    out: Path = typer.Option(Path("baseline"), "--out", help="Folder the new run logs go into."),
    attention: str = typer.Option(
        "fa3",
        "--attention",
        help="fa3: the script's own Flash Attention 3 (records from #29 need it); flex: put a FlexAttention "
        "stand-in of it (flash_attn_interface.py, kernels.py) beside the script, for machines without it.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Progress to stderr; one JSON object (record, files, sha256, edits, logs) to stdout."
    ),
) -> None:
    """Run a published record's own training script, taken from its run log.

    Writes the script and the side files embedded after it into OUT/.reproduce/
    with their sha256, applies the requested edits to its hyperparameter lines
    (each one listed), runs it under torch.distributed.run --runs times and
    moves the logs it writes into OUT: a baseline/ folder for the speed rule,
    re-timed on your own hardware. This runs code from the log: check the
    record and sha256 it prints. A script that needs a missing package, or
    asserts a GPU count other than --nproc-per-node, is refused before it
    starts. Records from #29 need Flash Attention 3; --attention flex runs
    them with a FlexAttention stand-in written beside the script (slower,
    the same function). Exit codes: 0 done, 2 bad input or a run that failed
    (logs of finished runs are kept), 130 interrupted.
    """
    from speedrun.console import err, error
    from speedrun.console import out as console

    say = (
        (lambda text: err.print(text, soft_wrap=True))
        if as_json
        else (lambda text: console.print(text, soft_wrap=True))
    )
    if attention not in ("fa3", "flex"):
        raise BadInput(None, f"--attention must be fa3 or flex, got {attention!r}")
    log, why = choose_log(path)
    code = read_record_code(log, why)
    try:
        outcome = run_record(
            code,
            out,
            runs,
            nproc_per_node,
            steps,
            val_every,
            data_dir,
            say,
            stdout=sys.stderr if as_json else None,
            attention=attention,  # type: ignore[arg-type]  # checked above
        )
    except ReproduceInterrupted as stopped:
        aside = f"; partial log set aside as {stopped.aside[0]}" if stopped.aside else ""
        error(f"interrupted{aside}; {len(stopped.kept)} finished log(s) kept in {out}")
        raise typer.Exit(130) from None
    if as_json:
        report = {
            "record": code.record,
            "log": str(code.log),
            "files": {f.name: f.sha256 for f in code.files},
            "files_as_run": {f.name: f.sha256 for f in outcome.files},
            "stand_in": {f.name: f.sha256 for f in outcome.provided},
            "edits": [str(e) for e in outcome.edits],
            "work": str(outcome.work),
            "logs": [str(p) for p in outcome.logs],
        }
        console.print_json(json.dumps(report))
    else:
        say(f"{len(outcome.logs)} log(s) in {out}")

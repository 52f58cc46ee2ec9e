"""Read one run log into a `RunLog`. Text only: an embedded training source is kept as a string, never run.

Three shapes of log are understood, all the speedrun has used:

- "llmc": llm.c lines, `s:N tel:X` (val loss) and `s:N trl:X ...` (train loss);
- "step-lines": plain `step:N/M val_loss:X train_time:Yms step_avg:Zms` lines (2024);
- "speedrun": the training source first, then a line of `=`, the environment (`Running ...` version lines,
  the nvidia-smi table), more `=` lines, then step lines and a peak-memory line. Our own trainer writes
  this shape too, with `config:`, `data_pipeline_sha256:`, `train_files:`, `val_files:` and `seed:` lines.

Speed matters (a record folder holds dozens of logs, the upstream archive a thousand and two million step
lines): the source block is split off with `bytes.find`, never scanned line by line, and the step lines are
matched by one `findall` and converted column by column.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from itertools import chain, compress, count, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from speedrun.errors import BadInput
from speedrun.judge.runlog import GpuInfo, RunLog, StepLine

MAX_LOG_BYTES = 512 * 1024 * 1024  # far beyond any real log; refuses a gzip bomb or a disk image
MAX_LOG_LINES = 5_000_000  # real logs hold a few thousand; this bounds the memory that lines take
MAX_KEPT_LINE_CHARS = 10_000  # longer source lines are cut: nobody reads a 100 MB line, and memory matters
MAX_STEP_LINE_CHARS = 1_000  # a real one is under 100; a longer one is refused before any regex runs on it
MAX_ENVIRONMENT_LINE_CHARS = 2_000  # version, nvidia-smi and setting lines are short; longer ones are noise
MAX_SHARED_SOURCE_BYTES = 1024 * 1024  # a training script is ~100 KB; larger sources are not kept in the cache
SNIFF_CHUNK_BYTES = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
LOG_SUFFIXES = (".txt", ".log")

# A separator: a line of nothing but `=` (upstream prints 100 of them; 20 is enough to tell it from prose).
RULE_MIN_WIDTH = 20
_RULE_START = b"=" * RULE_MIN_WIDTH
_RULE_LINE = re.compile(rb"=+[ \t\r]*(?:\n|$)")
_OUTPUT_STARTS = (b"Running ", b"nvidia-smi")  # what a run prints first, right after its source
# The common step line as upstream and our trainer print it (single spaces, fields in this order), or, in
# the last group, any other line: `findall` over a log's step lines joined gives one tuple per line.
# Numbers are taken loosely here and checked by `float`; other spacings or fields go to the loose reader.
_STEP_LINES = re.compile(
    r"^(?:step:(\d+)(?:/(\d+))? (?:(val_loss|train_loss):([^ \n]+) )?"
    r"train_time:([^ m\n]+)ms step_avg:([^ m\n]+)ms\r?|(.+))$",
    re.ASCII | re.MULTILINE,
)
# The same common shape, bounded so that no line it matches can exceed MAX_STEP_LINE_CHARS, matched over a whole
# block of step lines at once.
_COMMON_STEP_LINE = re.compile(
    r"^step:(\d{1,30})(?:/(\d{1,30}))? (?:(val_loss|train_loss):([^ \n]{1,100}) )?"
    r"train_time:([^ m\n]{1,100})ms step_avg:([^ m\n]{1,100})ms\r?$",
    re.ASCII | re.MULTILINE,
)
_STEP_START = re.compile(rb"step:\d")
_LLMC_START = re.compile(rb"s:\d+[ \t]+t[er]l:")
_STEP_FIELDS = frozenset({"val_loss", "train_loss", "train_time", "step_avg"})
_STEP_HEAD = re.compile(r"step:(\d+)(?:/(\d+))?(?=[ \t\r]|$)", re.ASCII)
_LLMC = re.compile(r"s:(\d+)[ \t]+(tel|trl):(\S+)", re.ASCII)
_LLMC_LINES = re.compile(r"^s:(\d+)[ \t]+(tel|trl):(\S+)", re.ASCII | re.MULTILINE)  # the same, over many lines
_GPU_ROW = re.compile(r"\|\s+(\d{1,4})\s+(.+?)\s+(?:On|Off)\s+\|", re.ASCII)
_SMI_HEADER = re.compile(r"\|\s*NVIDIA-SMI\s+(\S+)(?:.*?Driver Version:\s*(\S+))?(?:.*?CUDA Version:\s*(\S+))?")
_PEAK_MEMORY = re.compile(r"peak memory (?:allocated|consumption):\s*(\d{1,15}(?:\.\d{1,15})?)\s*MiB", re.ASCII)
_TORCH = re.compile(r"Running (?:PyTorch|pytorch) (\S+)(?: compiled for CUDA (\S+))?")
_INTEGER = re.compile(r"[-+]?\d{1,30}", re.ASCII)
_SEP_OK = frozenset("\t\n\r\x0c\x1b\x08")
_CONTROL = bytes(b for b in range(32) if chr(b) not in _SEP_OK) + b"\x7f"
_ENVIRONMENT_PREFIXES = ("|", "Running ", "peak memory", "nvidia-smi", "config:", "seed:", "world_size:")
_ENVIRONMENT_PREFIXES += ("data_pipeline_sha256:", "train_files:", "val_files:")


def parse_log(path: Path) -> RunLog:
    """Parse one run log (plain or gzip-compressed). Raises `BadInput(path, problem)` for anything unusable.

    A truncated log still parses: it simply has no final val step, which the rules report.
    """
    path = Path(path)
    data = _read_log_bytes(path)
    _refuse_non_text(path, data)
    source, source_lines, tail_start = _split_source(data)
    tail = data[tail_start:].decode("utf-8", errors="replace")
    with collector_paused():
        return _parse_tail(path, data, tail, source, source_lines)


def looks_like_run_log(path: Path) -> bool:
    """A cheap sniff: a `.txt`/`.log` file (or one of those gzipped) with at least one step line.

    Never raises: anything unreadable is simply not a run log.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if not name.endswith(LOG_SUFFIXES):
        return False
    try:
        if not path.is_file():
            return False
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            if not compressed:
                # Step lines sit at the end of a log, after its source: look there first.
                offset = max(0, path.stat().st_size - SNIFF_CHUNK_BYTES // 16)
                raw.seek(offset)
                end = (b"" if offset else b"\n") + raw.read()  # a line cut by the seek must not match
                if b"\x00" not in end and _first_step_line(end, 0) < len(end):
                    return True
                raw.seek(0)
                return _has_step_line(raw)
        with gzip.open(path, "rb") as f:
            return _has_step_line(f)
    except (OSError, EOFError, zlib.error):
        return False


def _has_step_line(f: BinaryIO) -> bool:
    """Scan a binary stream chunk by chunk for a line that starts like a step line."""
    carry = b"\n"
    read = 0
    while read < MAX_LOG_BYTES:
        chunk = f.read(SNIFF_CHUNK_BYTES)
        if not chunk or (read == 0 and b"\x00" in chunk):
            return False
        read += len(chunk)
        window = carry + chunk
        if _first_step_line(window, 0) < len(window):
            return True
        carry = chunk[-64:]
    return False


def _read_log_bytes(path: Path) -> bytes:
    if not path.exists():
        raise BadInput(path, "no such file")
    if not path.is_file():
        raise BadInput(path, "not a file")
    too_large = BadInput(path, f"larger than {MAX_LOG_BYTES // 2**20} MiB: not a run log")
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            if not compressed:
                if path.stat().st_size > MAX_LOG_BYTES:
                    raise too_large
                raw.seek(0)
                return raw.read()
        with gzip.open(path, "rb") as f:
            return _read_capped(f, too_large)  # decompressed size is only known by decompressing
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise BadInput(path, f"corrupt gzip file ({e})") from None
    except OSError as e:
        raise BadInput(path, f"cannot read: {e.strerror or e}") from None


def _read_capped(f: BinaryIO, too_large: BadInput) -> bytes:
    # Chunk by chunk: `read(MAX_LOG_BYTES + 1)` would set aside the whole cap for every log.
    chunks, size = [], 0
    while chunk := f.read(SNIFF_CHUNK_BYTES):
        size += len(chunk)
        if size > MAX_LOG_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_non_text(path: Path, data: bytes) -> None:
    if not data.strip():
        raise BadInput(path, "empty file")
    if b"\x00" in data:
        raise BadInput(path, "binary file (NUL bytes): not a run log")
    if len(data) > MAX_LOG_LINES and data.count(b"\n") > MAX_LOG_LINES:  # fewer bytes than that: fewer lines
        raise BadInput(path, f"more than {MAX_LOG_LINES:,} lines: not a run log")
    sample = data[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    undecodable = sample.decode("utf-8", errors="replace").count("\ufffd")
    if controls + undecodable > len(sample) // 4:
        raise BadInput(path, "binary file (mostly non-text bytes): not a run log")


def _split_source(data: bytes) -> tuple[str | None, int, int]:
    """Return (embedded source, its last line number, byte offset where the rest of the log starts).

    The source ends at a `=` line followed by the run's first own output (`Running ...` or `nvidia-smi`),
    so a `=` line in a docstring does not cut it short. Where several qualify, the last one before the
    first step line wins. Without any (a log cut off early) the first `=` line ends it. Logs of late 2024
    also open with a `=` line, and then the source starts after it.
    """
    rules = []
    rule = _find_rule(data, 0)
    while rule is not None:
        rules.append(rule)
        rule = _find_rule(data, rule[1])
    if not rules:
        return None, 0, 0
    before_output = [r for r in rules if data.startswith(_OUTPUT_STARTS, r[1])]
    if before_output:
        first_step = _first_step_line(data, before_output[0][1])
        closing = [r for r in before_output if r[0] < first_step][-1]
    else:
        closing = rules[0]
    start, first_line = 0, 1
    if rules[0][0] == 0:
        if closing is rules[0]:
            return None, 0, 0  # a log that opens with a `=` line but embeds no source
        start, first_line = rules[0][1], 2
    block = data[start : closing[0]]
    source = _source_text(block) if len(block) <= MAX_SHARED_SOURCE_BYTES else _decode_source(block)
    source_lines = first_line - 1 + block.count(b"\n")
    return source, source_lines, closing[0]


def _decode_source(block: bytes) -> str:
    return _cap_long_lines(block.decode("utf-8", errors="replace"))


@lru_cache(maxsize=32)
def _source_text(block: bytes) -> str:
    """The runs of a record embed the same source: decoded once, and one string shared by their RunLogs, so the
    rules' caches keyed by source find it at once, by identity, rather than by comparing every character."""
    return _decode_source(block)


def _first_step_line(data: bytes, start: int) -> int:
    """Byte offset of the newline before the first `step:N` or llm.c `s:N tel:`/`trl:` line, or len(data)."""
    found = len(data)
    for marker, shape in ((b"\nstep:", _STEP_START), (b"\ns:", _LLMC_START)):
        at = data.find(marker, start, found)
        while at >= 0 and not shape.match(data, at + 1):
            at = data.find(marker, at + 1, found)
        if at >= 0:
            found = at
    return found


def _find_rule(data: bytes, start: int) -> tuple[int, int] | None:
    """(start, end) of the first `=` line at or after `start`; `end` is past its newline.

    `bytes.find` skips through source code far faster than a multi-line regex would.
    """
    at = start
    while True:
        at = data.find(_RULE_START, at)
        if at < 0:
            return None
        if at == 0 or data[at - 1 : at] == b"\n":
            m = _RULE_LINE.match(data, at)
            if m is not None:
                return at, m.end()
        at = data.find(b"\n", at)
        if at < 0:
            return None


def _cap_long_lines(text: str) -> str:
    if len(text) <= MAX_KEPT_LINE_CHARS:
        return text
    lines = text.split("\n")
    if max(map(len, lines)) <= MAX_KEPT_LINE_CHARS:
        return text
    return "\n".join(ln if len(ln) <= MAX_KEPT_LINE_CHARS else ln[:MAX_KEPT_LINE_CHARS] + " [...]" for ln in lines)


class _TailLines(NamedTuple):
    """What the step reader takes from the lines after the source."""

    steps: list[StepLine]
    step_lines: bool  # `step:N` lines (else llm.c lines)
    around: Iterable[tuple[str, int]]  # the other lines, with their line numbers, for the environment
    cut_number: int  # the line number of a last line that has no newline (0: none)


def _parse_tail(path: Path, data: bytes, tail: str, source: str | None, source_lines: int) -> RunLog:
    first_number = 1 if source is None else source_lines + 1  # the tail starts on the `=` line after the source
    read = _read_common_step_block(tail, first_number) or _read_lines(path, tail, first_number)
    if not read.steps:
        raise BadInput(path, "no training step lines (`step:N/M ...` or llm.c `s:N tel:X`) found: not a run log")

    env = _Environment(path, cut_number=read.cut_number)
    for line, number in read.around:
        if line.startswith(_ENVIRONMENT_PREFIXES) and len(line) <= MAX_ENVIRONMENT_LINE_CHARS:
            env.read(line, number)

    log_format = "llmc" if not read.step_lines else "speedrun" if source is not None else "step-lines"
    return RunLog(
        path=path,
        format=log_format,
        sha256=hashlib.sha256(data).hexdigest(),
        steps=tuple(read.steps),
        source=source,
        source_lines=source_lines,
        versions=env.versions,
        version_lines=env.version_lines,
        gpus=env.gpus(),
        peak_memory_mib=env.peak_memory_mib,
        peak_memory_line=env.peak_memory_line,
        seed=env.seed,
        seed_line=env.seed_line,
        config=env.config,
        config_line=env.config_line,
        data_pipeline_sha256=env.fields.get("data_pipeline_sha256"),
        train_files=env.fields.get("train_files"),
        val_files=env.fields.get("val_files"),
        world_size=env.world_size,
        world_size_line=env.world_size_line,
    )


def _read_common_step_block(tail: str, first_number: int) -> _TailLines | None:
    """The usual log: its step lines one unbroken block, all of the common shape, the last one ended by a newline.

    The block is matched in place, with neither the tail nor the block split into lines: on the archive's
    two million step lines that split, and the join it needed, cost as much as the matching. None when
    the log is of another kind; `_read_lines` then reads it line by line.
    """
    if tail.startswith("step:"):
        start = 0
    else:
        start = tail.find("\nstep:") + 1
        if start == 0:
            return None
    last = tail.rfind("\nstep:") + 1
    end = tail.find("\n", last)
    if end < 0:
        return None  # the last step line may have been cut off mid-write
    block = tail[start:end]
    count_lines = block.count("\n") + 1
    if len(block) > count_lines * MAX_STEP_LINE_CHARS:
        return None  # some line is longer than any step line can be: not worth a regex pass
    # One match per line at most (no group spans a newline), so as many matches as lines means all matched:
    # no other line is among the step lines, and all are of the common shape.
    matched = _COMMON_STEP_LINE.findall(block)
    if len(matched) != count_lines:
        return None
    before = tail[:start].split("\n")[:-1]
    first_step_number = first_number + len(before)
    try:
        steps = _build_steps(matched, range(first_step_number, first_step_number + count_lines))
    except ValueError:
        return None  # an integer too long to convert: the line-by-line reader says where
    after = tail[end + 1 :].split("\n")
    after_number = first_step_number + count_lines
    around = chain(zip(before, count(first_number)), zip(after, count(after_number)))
    cut_number = after_number + len(after) - 1 if after[-1] else 0
    return _TailLines(steps, True, around, cut_number)


def _read_lines(path: Path, tail: str, first_number: int) -> _TailLines:
    """Any log, line by line: step lines in other shapes or among other lines, llm.c lines, a cut last line."""
    lines = tail.split("\n")
    cut_row = len(lines) - 1 if lines[-1] else -1  # a last line with no newline may have been cut off
    step_rows = _rows_starting_with(lines, "step:")
    steps = _read_step_lines(path, lines, step_rows, first_number, cut_row)
    if not step_rows:
        llmc_rows = _rows_starting_with(lines, "s:")
        steps = _read_llmc_lines(path, lines, llmc_rows, first_number, cut_row)
    around = ((lines[row], first_number + row) for row in _rows_around_steps(lines, step_rows))
    return _TailLines(steps, bool(step_rows), around, first_number + cut_row if cut_row >= 0 else 0)


def _rows_starting_with(lines: list[str], prefix: str) -> list[int]:
    """Indexes of the lines that start with `prefix`; `map` and `compress` keep the loop out of Python."""
    return list(compress(count(), map(str.startswith, lines, repeat(prefix))))


def _rows_around_steps(lines: list[str], step_rows: list[int]) -> Iterable[int]:
    """The rows that are not step lines: before the first, after the last, and any in between."""
    if not step_rows:
        return range(len(lines))
    first, last = step_rows[0], step_rows[-1]
    between: Iterable[int] = ()
    if last - first + 1 != len(step_rows):
        between = sorted(set(range(first, last + 1)).difference(step_rows))
    return chain(range(first), between, range(last + 1, len(lines)))


def _read_step_lines(path: Path, lines: list[str], rows: list[int], first_number: int, cut_row: int) -> list[StepLine]:
    """`step:N/M ...` lines. Upstream logs hold ~2,000 each, nearly all of one shape: one `findall` over the
    step lines joined matches them at once, yielding one tuple per line whose last group is set only when
    that line has another shape. When every line has the common shape, columns are converted whole."""
    cut = rows[-1] if rows and rows[-1] == cut_row else None
    whole_rows = rows[:-1] if cut is not None else rows
    texts = [lines[row] for row in whole_rows]
    steps = None
    if not texts or max(map(len, texts)) <= MAX_STEP_LINE_CHARS:
        matched = _STEP_LINES.findall("\n".join(texts))
        if not any(map(itemgetter(6), matched)):
            with suppress(ValueError):  # a corrupted number, or an integer too long: found line by line below
                steps = _build_steps(matched, [first_number + row for row in whole_rows])
    if steps is None:
        steps = [_read_step_line(path, lines[row], first_number + row) for row in whole_rows]
    if cut is not None:
        # The log ends without a newline, so its last line may have been cut off mid-write. Only a line of
        # the common shape, which ends in `ms`, is surely whole; anything else is dropped, and the rules
        # then see a truncated run.
        m = _STEP_LINES.match(lines[cut]) if len(lines[cut]) <= MAX_STEP_LINE_CHARS else None
        if m is not None and not m.group(7):
            with suppress(ValueError):
                steps.extend(_build_steps([m.groups()], [first_number + cut]))
    return steps


def _read_step_line(path: Path, line: str, number: int) -> StepLine:
    if len(line) > MAX_STEP_LINE_CHARS:
        raise BadInput(path, f"line {number}: a step line of {len(line):,} characters {_snippet(line)}")
    m = _STEP_LINES.match(line)
    if m is not None and not m.group(7):
        try:
            return _build_steps([m.groups()], [number])[0]
        except ValueError:  # a corrupted number, or an integer too long to convert
            pass
    parsed = _parse_loose_step(line, number)
    if parsed is None:
        raise BadInput(path, f"line {number}: malformed step line {_snippet(line)}")
    return parsed


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while logs are parsed; it resumes on exit (if it ran before).

    Why, and why the freeze: a log's StepLines are thousands of container objects that never form a cycle,
    and CPython never stops tracking them (it untracks tuples of plain values, but only exact tuples, not a
    NamedTuple). Re-enabling the collector collects nothing by itself, but the allocation count keeps
    growing while paused, so the next allocation sets off a collection that walks every StepLine, and
    later ones walk them again as they age: with one pause per log that was 0.5 s of the archive's 7 s.
    So on exit, what was allocated meanwhile moves to the oldest generation unwalked: `gc.freeze` moves
    every tracked object to the permanent generation and zeroes the counts, `gc.unfreeze` moves them back
    to the oldest generation, where only full collections look. Skipped where objects are frozen already
    (a forking server, say), as unfreezing would undo that. Callers that parse many logs (a record folder)
    pause around all of them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _build_steps(matched: list[tuple[str | Any, ...]], numbers: Iterable[int]) -> list[StepLine]:
    """StepLines from the regex groups of common-shape lines, column by column.

    Raises ValueError on a number that does not convert. `zip(*matched)` turns rows into columns and
    `tuple.__new__` builds each NamedTuple straight from its fields: `map` and `zip` keep the loops in C.
    """
    if not matched:
        return []
    step, total, kind, loss, train_time, step_avg = list(zip(*matched, strict=True))[:6]
    size = len(matched)
    val_loss: list[float | None] = [None] * size
    train_loss: list[float | None] = [None] * size
    for i in compress(count(), kind):  # most lines carry no loss: visit only those that do
        (val_loss if kind[i] == "val_loss" else train_loss)[i] = float(loss[i])
    if total.count(total[0]) == size:  # nearly always: every line of a run names the same total
        totals: Iterable[int | None] = repeat(int(total[0]) if total[0] else None, size)
    else:
        totals = [int(t) if t else None for t in total]
    fields = zip(
        map(int, step),
        totals,
        numbers,
        val_loss,
        train_loss,
        map(float, train_time),
        map(float, step_avg),
        strict=True,
    )
    return list(map(tuple.__new__, repeat(StepLine), fields))


def _read_llmc_lines(path: Path, lines: list[str], rows: list[int], first_number: int, cut_row: int) -> list[StepLine]:
    """llm.c lines: `s:N tel:X` carries the val loss, `s:N trl:X lr:... norm:...` the train loss."""
    # A line with no newline after it may have been cut short: it is dropped, whatever it holds.
    whole_rows = rows[:-1] if rows and rows[-1] == cut_row else rows
    with suppress(ValueError):  # a line of another shape, or a number that does not convert: see below
        return _build_llmc_steps(
            _LLMC_LINES.findall("\n".join([lines[row] for row in whole_rows])),
            [first_number + row for row in whole_rows],
        )
    steps: list[StepLine] = []
    for row in rows:
        number = first_number + row
        m = _LLMC.match(lines[row])
        try:
            if m is None:
                raise ValueError
            step, value = int(m.group(1)), float(m.group(3))
        except ValueError:
            if row == cut_row:
                continue
            raise BadInput(path, f"line {number}: malformed llm.c step line {_snippet(lines[row])}") from None
        if row == cut_row:
            continue  # the log ends without a newline: its last number may have been cut short
        is_val = m.group(2) == "tel"
        steps.append(StepLine(step, None, number, value if is_val else None, None if is_val else value))
    return steps


def _build_llmc_steps(matched: list[tuple[str, str, str]], numbers: list[int]) -> list[StepLine]:
    """StepLines from the regex groups of llm.c lines, one match per line; ValueError if a line did not match
    (then there are fewer matches than lines) or a number does not convert."""
    if len(matched) != len(numbers):
        raise ValueError("not every line is an llm.c step line")
    step, kind, value = (list(column) for column in zip(*matched, strict=True)) if matched else ([], [], [])
    values = list(map(float, value))
    val_loss = [v if k == "tel" else None for k, v in zip(kind, values, strict=True)]
    train_loss = [None if k == "tel" else v for k, v in zip(kind, values, strict=True)]
    fields = zip(map(int, step), repeat(None), numbers, val_loss, train_loss, repeat(None), repeat(None))
    return list(map(tuple.__new__, repeat(StepLine), fields))


class _Environment:
    """What the lines around the steps say: versions, GPUs, peak memory, seed, and our trainer's settings.

    The first occurrence of each figure wins; only the first nvidia-smi table is read.
    """

    def __init__(self, path: Path, cut_number: int) -> None:
        self.path = path
        self.cut_number = cut_number  # a last line with no newline: a figure cut short there is not an error
        self.versions: dict[str, str] = {}
        self.version_lines: dict[str, int] = {}
        self.gpu_names: dict[int, str] = {}
        self.gpu_line = 0
        self.driver: str | None = None
        self.cuda: str | None = None
        self.gpu_table_done = False
        self.no_gpu_line = 0
        self.peak_memory_mib: float | None = None
        self.peak_memory_line = 0
        self.seed: int | None = None
        self.seed_line = 0
        self.world_size: int | None = None
        self.world_size_line = 0
        self.config: dict[str, Any] | None = None
        self.config_line = 0
        self.fields: dict[str, str] = {}

    def read(self, line: str, number: int) -> None:
        if line.startswith("|"):
            self._read_nvidia_smi(line, number)
        elif line.startswith("Running "):
            self._read_version(line, number)
        elif line.startswith("peak memory"):
            m = _PEAK_MEMORY.match(line)
            if m is not None and self.peak_memory_mib is None:
                self.peak_memory_mib, self.peak_memory_line = float(m.group(1)), number
        elif line.startswith("nvidia-smi"):
            if "not available" in line and not self.no_gpu_line:
                self.no_gpu_line = number
        elif line.startswith("seed:"):
            if self.seed_line == 0:
                self.seed, self.seed_line = self._integer(line, number)
        elif line.startswith("world_size:"):
            if self.world_size_line == 0:
                self.world_size, self.world_size_line = self._integer(line, number)
        elif line.startswith("config:"):
            self._read_config(line, number)
        else:
            key, _, value = line.partition(":")
            self.fields.setdefault(key, value.strip())

    def gpus(self) -> GpuInfo | None:
        if self.gpu_names:
            names = tuple(self.gpu_names[i] for i in sorted(self.gpu_names))
            return GpuInfo(names=names, line=self.gpu_line, driver=self.driver, cuda=self.cuda)
        if self.no_gpu_line:
            return GpuInfo(names=(), line=self.no_gpu_line)  # our trainer on a CPU
        return None

    def _read_nvidia_smi(self, line: str, number: int) -> None:
        # A table's process list, or a second table further down, must not add GPUs.
        if self.gpu_table_done:
            return
        header = _SMI_HEADER.match(line)
        if header is not None:
            if self.gpu_line:
                self.gpu_table_done = True
            else:
                self.gpu_line, self.driver, self.cuda = number, header.group(2), header.group(3)
            return
        if not self.gpu_line:
            return
        row = _GPU_ROW.match(line)
        if row is not None:
            index = int(row.group(1))
            self.gpu_table_done = index in self.gpu_names
            self.gpu_names.setdefault(index, row.group(2).strip())
        elif "Processes:" in line:
            self.gpu_table_done = True

    def _read_version(self, line: str, number: int) -> None:
        words = line.split()
        if len(words) < 3:
            return
        tool = words[1].lower()
        if tool == "python":
            self._set_version("python", words[2], number)
        elif tool == "triton":
            self._set_version("triton", words[-1], number)
        elif tool == "pytorch":
            m = _TORCH.match(line)
            if m is not None:
                self._set_version("torch", m.group(1), number)
                if m.group(2) and m.group(2) != "None":  # `None` on a CPU-only PyTorch
                    self._set_version("cuda", m.group(2), number)

    def _set_version(self, tool: str, version: str, number: int) -> None:
        if tool not in self.versions:
            self.versions[tool], self.version_lines[tool] = version, number

    def _integer(self, line: str, number: int) -> tuple[int | None, int]:
        """The integer after `key:`, with its line number; (None, 0) on a cut last line, which may have lost digits."""
        if number == self.cut_number:
            return None, 0
        key, _, text = line.partition(":")
        if not _INTEGER.fullmatch(text.strip()):
            raise BadInput(self.path, f"line {number}: {key} is not an integer: {_snippet(line)}")
        return int(text), number

    def _read_config(self, line: str, number: int) -> None:
        if self.config_line:
            return
        try:
            config = json.loads(line[len("config:") :])
        except (ValueError, RecursionError):
            if number != self.cut_number:
                raise BadInput(self.path, f"line {number}: config is not valid JSON") from None
            return
        if not isinstance(config, dict):
            raise BadInput(self.path, f"line {number}: config is not a JSON object")
        self.config, self.config_line = config, number


def _parse_loose_step(line: str, number: int) -> StepLine | None:
    """A step line in another order or with extra fields: `step:N/M key:value ...`. None if it is not one."""
    head = _STEP_HEAD.match(line)
    if head is None or len(head.group(0)) > 40:
        return None
    values: dict[str, float] = {}
    for token in line[head.end() :].split():
        key, sep, value = token.partition(":")
        if not sep or not key:
            return None
        if key in ("train_time", "step_avg"):
            value = value.removesuffix("ms")
        try:
            values[key] = float(value)
        except ValueError:
            if key in _STEP_FIELDS:
                return None
    if not _STEP_FIELDS.intersection(values):
        return None
    return StepLine(
        step=int(head.group(1)),
        total_steps=int(head.group(2)) if head.group(2) else None,
        line=number,
        val_loss=values.get("val_loss"),
        train_loss=values.get("train_loss"),
        train_time_ms=values.get("train_time"),
        step_avg_ms=values.get("step_avg"),
    )


def _snippet(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")

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
import math
import os
import re
import stat
import sys
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from itertools import chain, compress, count, islice, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from speedrun.errors import BadInput
from speedrun.judge.embedded import (
    MAX_SOURCE_CHARS,
    check_source,
    first_error_line,
    is_sectioned,
    source_structure,
)
from speedrun.judge.runlog import FloatTexts, GpuInfo, RunLog, StepColumns, StepLine, StepLines

# Bounds far above any real log (the largest of the upstream history: 1.6 MB, 19,227 step lines), far below what
# hurts: a log at every bound is read in well under a second and 1 GB, and a gzip bomb stops at the first.
MAX_LOG_BYTES = 16 * 1024 * 1024  # decompressed; refuses a gzip bomb or a disk image
MAX_LOG_LINES = 1_000_000
MAX_STEP_LINES = 50_000  # the most of the history: 19,227
MAX_NUMBER = 1e20  # a loss or a time beyond this is no measurement (and its square would overflow the statistics)
MAX_STEP = 10**9
MAX_DECIMAL_STEP = 2**15  # steps below this are looked up rather than converted (the archive's go up to 20,344)
MAX_BOUNDARY_TRIES = 32  # `=` lines followed by what a run prints, tried as the end of the source
MAX_BOUNDARY_BYTES = 8 * 1024 * 1024  # ... and the source they end, in all: each try costs about its size
MAX_KEPT_LINE_CHARS = 10_000  # longer source lines are cut: nobody reads a 100 MB line, and memory matters
MAX_STEP_LINE_CHARS = 1_000  # a real one is under 100; a longer one is refused before any regex runs on it
MAX_ENVIRONMENT_LINE_CHARS = 2_000  # version, nvidia-smi and setting lines are short; longer ones are noise
MAX_CONFIG_LINE_CHARS = 100_000  # our trainer's config line (~1,200 characters) is never noise: longer is refused
MAX_SHARED_SOURCE_BYTES = 1024 * 1024  # a training script is ~100 KB; larger sources are not kept in the cache
SNIFF_CHUNK_BYTES = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
LOG_SUFFIXES = (".txt", ".log")

# A separator: a line of nothing but `=` (upstream prints 100 of them; 20 is enough to tell it from prose).
RULE_MIN_WIDTH = 20
_RULE_START = b"=" * RULE_MIN_WIDTH
_RULE_LINE = re.compile(rb"=+[ \t\r]*(?:\n|$)")
_OUTPUT_STARTS = (b"Running ", b"nvidia-smi")  # what a run prints first, right after its source
# A number as the common step line prints it: up to 20 characters and no exponent, so within MAX_NUMBER (or nan,
# inf). Anything else goes to the loose reader, which checks the range: a 300-digit loss is refused, not summed.
_NUMBER = r"[^ e\n]{1,20}"
_NUMBER_MS = r"[^ em\n]{1,20}"  # followed by `ms`
# The common step line as upstream and our trainer print it (single spaces, fields in this order), or, in
# the last group, any other line: `findall` over a log's step lines joined gives one tuple per line.
# Other spacings, fields or numbers go to the loose reader.
_STEP_LINES = re.compile(
    rf"^(?:step:(\d{{1,9}})(?:/(\d{{1,9}}))? (?:(val_loss|train_loss):({_NUMBER}) )?"
    rf"train_time:({_NUMBER_MS})ms step_avg:({_NUMBER_MS})ms\r?|(.+))$",
    re.ASCII | re.MULTILINE,
)
# The same common shape, bounded so that no line it matches can exceed MAX_STEP_LINE_CHARS, matched over a whole
# block of step lines at once. Each line is matched from the newline before it up to the newline after it: led by
# a literal, the search skips from line to line instead of trying `^` at every character, and `(?:...|)` is
# `(?:...)?` without the engine's costlier repeat (the same tries in the same order): 15% faster over the archive.
# Each run of digits or number characters is possessive (Python 3.11 on): what follows it is a character the run
# cannot hold, so giving characters back could never make a match, and the engine saves its backtracking state
# (8% faster again).
_POSSESSIVE = "+" if sys.version_info >= (3, 11) else ""
# step_avg strictly a plain decimal or nan (all the archive prints), so that every text converts: its column is
# converted only where it is read (FloatTexts). Any other form goes to the line reader.
_STEP_AVG = rf"(\d{{1,15}}{_POSSESSIVE}(?:\.\d{{1,6}}{_POSSESSIVE})?|nan)"
_COMMON_FIELDS = (
    rf"(?:(val_loss|train_loss):({_NUMBER}{_POSSESSIVE}) |)"
    rf"train_time:({_NUMBER_MS}{_POSSESSIVE})ms step_avg:{_STEP_AVG}ms\r?(?=\n)"
)
_COMMON_STEP_LINE = re.compile(
    rf"\nstep:(\d{{1,9}}{_POSSESSIVE})(?:/(\d{{1,9}}{_POSSESSIVE})|) {_COMMON_FIELDS}", re.ASCII
)
_FIRST_TOTAL = re.compile(r"\nstep:\d{1,9}/(\d{1,9}) ", re.ASCII)


@lru_cache(maxsize=64)
def _common_step_line_of_total(total: str) -> re.Pattern[str]:
    """The common shape with the run's total steps written in (`step:N/1750 ...`): nearly every log names one
    total on every line, and a literal matched costs less than a group kept (10% of the matching). A line with
    another total does not match, and the log is then read line by line."""
    return re.compile(rf"\nstep:(\d{{1,9}}{_POSSESSIVE})/{total} {_COMMON_FIELDS}", re.ASCII)


_STEP_START = re.compile(rb"step:\d")
_LLMC_START = re.compile(rb"s:\d+[ \t]+t[er]l:")
# What makes a file a run log for discovery: a step line with a step field, or an llm.c line with its number.
# `step:500` in a sentence of a notes file is not one.
_RUN_LOG_LINE = re.compile(
    rb"^(?:step:\d{1,30}(?:/\d{1,30})?[ \t][^\n]{0,300}?\b(?:val_loss|train_loss|train_time|step_avg):"
    rb"|s:\d{1,30}[ \t]+t[er]l:[-+]?[\d.n])",
    re.MULTILINE,
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_STEP_FIELDS = frozenset({"val_loss", "train_loss", "train_time", "step_avg"})
_STEP_HEAD = re.compile(r"step:(\d+)(?:/(\d+))?(?=[ \t\r]|$)", re.ASCII)
_LLMC = re.compile(rf"s:(\d{{1,9}})[ \t]+(tel|trl):({_NUMBER})(?![^ \t\r\n])", re.ASCII)
_LLMC_LINES = re.compile(rf"^{_LLMC.pattern}", re.ASCII | re.MULTILINE)  # the same, over many lines
_GPU_ROW = re.compile(r"\|\s+(\d{1,4})\s+(.+?)\s+(?:On|Off)\s+\|", re.ASCII)
_SMI_HEADER = re.compile(r"\|\s*NVIDIA-SMI\s+(\S+)(?:.*?Driver Version:\s*(\S+))?(?:.*?CUDA Version:\s*(\S+))?")
_PEAK_MEMORY = re.compile(r"peak memory (?:allocated|consumption):\s*(\d{1,15}(?:\.\d{1,15})?)\s*MiB", re.ASCII)
_TORCH = re.compile(r"Running (?:PyTorch|pytorch) (\S+)(?: compiled for CUDA (\S+))?")
_INTEGER = re.compile(r"[-+]?\d{1,30}", re.ASCII)
_SEP_OK = frozenset("\t\n\r\x0c\x1b\x08")
_CONTROL = bytes(b for b in range(32) if chr(b) not in _SEP_OK) + b"\x7f"
_ENVIRONMENT_PREFIXES = ("|", "Running ", "peak memory", "nvidia-smi", "config:", "seed:", "world_size:")
_ENVIRONMENT_PREFIXES += ("data_pipeline_sha256:", "train_files:", "val_files:", "data:")
# Our trainer's lines that may be long (the config, and the shards it read: a hundred shards is 7,000 characters):
# they are read up to MAX_CONFIG_LINE_CHARS, never dropped as noise.
_LONG_LINE_PREFIXES = ("config:", "data:", "train_files:", "val_files:")


def parse_log(path: Path) -> RunLog:
    """Parse one run log (plain or gzip-compressed). Raises `BadInput(path, problem)` for anything unusable.

    A truncated log still parses: it simply has no final val step, which the rules report. Whatever goes
    wrong while reading one file (a number out of range, nesting too deep, memory) is that file's problem:
    a one-line BadInput naming it, never a traceback.

    The last logs parsed are kept (a RunLog never changes), found again while the file is the same one, unchanged
    (its path, device, inode, size and change times): judging a record folder reads the record before it too,
    which a leaderboard or a run over the archive has just judged.
    """
    path = Path(path)
    st = _stat(path)  # the one stat of the file: its identity here, its kind and size when it is read
    identity = None if st is None else (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    run = _RECENT_RUNS.get(identity) if identity is not None else None
    if run is not None:
        _RECENT_RUNS.move_to_end(identity)
        return run
    run = _parse_log(path, st)
    if identity is not None:
        _keep_recent(identity, run)
    return run


MAX_KEPT_STEP_LINES = 200_000  # the step lines of the logs kept parsed: a few records' worth
_RECENT_RUNS: OrderedDict[tuple, RunLog] = OrderedDict()
_recent_step_lines = 0


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None  # as for `Path.exists`: no such file


def _keep_recent(identity: tuple, run: RunLog) -> None:
    global _recent_step_lines
    _RECENT_RUNS[identity] = run
    _recent_step_lines += len(run.steps)
    while _recent_step_lines > MAX_KEPT_STEP_LINES and len(_RECENT_RUNS) > 1:
        _recent_step_lines -= len(_RECENT_RUNS.popitem(last=False)[1].steps)


def _parse_log(path: Path, st: os.stat_result | None) -> RunLog:
    try:
        data = _read_log_bytes(path, st)
        _refuse_non_text(path, data)
        split = _split_source(data)
        tail = str(memoryview(data)[split.tail_start :], "utf-8", "replace")  # decoded in place, not copied first
        with collector_paused():
            return _parse_tail(path, data, tail, split)
    except BadInput:
        raise
    except RecursionError:
        raise BadInput(path, "nested too deeply to read") from None
    except MemoryError:
        raise BadInput(path, "too large to read in memory") from None
    except Exception as e:  # any other failure on one file is that file's problem, reported as such
        raise BadInput(path, f"cannot be read ({type(e).__name__}: {str(e)[:200]})") from None


def looks_like_run_log(path: Path) -> bool:
    """A cheap sniff: a `.txt`/`.log` file (or one of those gzipped) with at least one line shaped like a
    step line (`step:N/M` and a step field, or llm.c's `s:N tel:X`).

    A log saved as UTF-16 counts too, so that parsing reports it rather than the judge skipping it silently.
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
                end = raw.read()
                if offset:
                    end = end[end.find(b"\n") + 1 :] if b"\n" in end else b""  # a line cut by the seek must not match
                if b"\x00" not in end and _RUN_LOG_LINE.search(end):
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
        if read == 0 and b"\x00" in chunk:
            return _is_utf16_run_log(chunk)
        if not chunk:
            return False
        read += len(chunk)
        window = carry + chunk
        if _RUN_LOG_LINE.search(window):
            return True
        carry = b"\n" + chunk[chunk.rfind(b"\n", 0, len(chunk) - 400) + 1 :]  # a step line cut by the chunk
    return False


def _is_utf16_run_log(head: bytes) -> bool:
    """Whether bytes holding NULs are a run log saved as UTF-16 (with or without a byte-order mark)."""
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        if encoding == "utf-16" and not head.startswith(_UTF16_BOMS):
            continue
        text = head[: len(head) // 2 * 2].decode(encoding, errors="replace")
        if "\x00" not in text and _RUN_LOG_LINE.search(("\n" + text).encode("utf-8", errors="replace")):
            return True
    return False


def _read_log_bytes(path: Path, st: os.stat_result | None) -> bytes:
    if st is None:
        raise BadInput(path, "no such file")
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(path, "not a file")
    too_large = BadInput(path, f"larger than {MAX_LOG_BYTES // 2**20} MiB: not a run log")
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            if not compressed:
                if st.st_size > MAX_LOG_BYTES:
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
    if not data or data.isspace():  # (not `strip`, which copies the whole log)
        raise BadInput(path, "empty file")
    if b"\x00" in data[:SNIFF_CHUNK_BYTES] and _is_utf16_run_log(data[:SNIFF_CHUNK_BYTES]):
        raise BadInput(path, "a run log saved as UTF-16: the judge reads UTF-8 (save it as UTF-8)")
    if b"\x00" in data:
        raise BadInput(path, "binary file (NUL bytes): not a run log")
    if len(data) > MAX_LOG_LINES and data.count(b"\n") > MAX_LOG_LINES:  # fewer bytes than that: fewer lines
        raise BadInput(path, f"more than {MAX_LOG_LINES:,} lines: not a run log")
    sample = data[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    undecodable = sample.decode("utf-8", errors="replace").count("\ufffd")
    if controls + undecodable > len(sample) // 4:
        raise BadInput(path, "binary file (mostly non-text bytes): not a run log")


class _Split(NamedTuple):
    """Where the embedded source lies in a log, and whether it is Python."""

    source: str | None
    source_lines: int  # the embedded source is lines first_line..source_lines of the file
    tail_start: int  # byte offset where the rest of the log starts
    first_line: int = 1
    problem: str | None = None  # why the source is not Python as a whole
    problem_line: int = 0  # the line of the file the problem is on


def _split_source(data: bytes) -> _Split:
    """Find the embedded source: what the program printed first, up to the `=` line it printed after it.

    That `=` line is followed by the run's first own output (`Running ...` or `nvidia-smi`), and the text
    before it is Python. The source cannot forge its own end: a line of `=` is never valid Python outside a
    string literal, so a `=` line that the source holds (with fake output lines after it) lies inside a
    string, and the text before it does not parse; nor does the text past the real end, which holds that
    `=` line. So the end is the one such `=` line before which the source parses as a whole. Where none
    does (a source that is not Python, cut, or too large), the source is reported as such and ends where
    the format alone says: at the last such `=` line before the first step line, else at the first `=`
    line. Logs of late 2024 open with a `=` line; their source follows it.
    """
    rules = _rule_lines(data)
    if not rules:
        return _Split(None, 0, 0)
    opening = rules[0][0] == 0
    start, first_line = (rules[0][1], 2) if opening else (0, 1)
    before_output = [r for r in rules if data.startswith(_OUTPUT_STARTS, r[1])]
    if before_output:
        first_step = _first_step_line(data, before_output[0][1])
        closing = [r for r in before_output if r[0] < first_step][-1]
    else:
        closing = rules[0]
    if opening and closing is rules[0]:
        return _Split(None, 0, 0)  # a log that opens with a `=` line but embeds no source
    budget = MAX_BOUNDARY_BYTES  # what the search may read in all, so that no log can make it slow
    others = [r for r in before_output if r[0] > start and r != closing]
    for candidate in islice(_boundary_candidates(data, start, closing, others), MAX_BOUNDARY_TRIES):
        size = candidate[0] - start
        if size > MAX_SOURCE_CHARS:
            continue
        budget -= size
        if budget < 0:
            break
        decoded = _source_text(data[start : candidate[0]])
        check = source_structure if candidate is closing else check_source  # only the usual end is kept
        if decoded.problem is None and check(decoded.text).problem is None:
            return _source_split(data, start, first_line, candidate, decoded.text, None, 0)
    block = data[start : closing[0]]
    decoded = _source_text(block)
    if len(block) > MAX_SOURCE_CHARS:
        problem, line = f"{len(block):,} bytes, more than the {MAX_SOURCE_CHARS:,} the judge reads", 0
    elif decoded.problem is not None:
        problem, line = decoded.problem
    else:
        structure = source_structure(decoded.text)
        problem, line = structure.problem, structure.problem_line
    return _source_split(data, start, first_line, closing, decoded.text, problem, line)


def _boundary_candidates(
    data: bytes, start: int, closing: tuple[int, int], others: list[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """The `=` lines to try as the end of the source, the likeliest first: the format's choice, right for every
    honest log (so they cost one try); then the line where the text up to the last candidate first stops
    being Python, which is the end when the source is Python (the parser goes past a fake `=` line inside a
    string, not past the real one); then the others, in order."""
    yield closing
    within = [r for r in others if r[0] - start <= MAX_SOURCE_CHARS]
    if within:
        text = _decode_source(data[start : within[-1][0]]).text
        line = first_error_line(text + "=" * RULE_MIN_WIDTH + "\n")  # the last candidate's own line, too
        at_line = {data.count(b"\n", start, r[0]) + 1: r for r in within}
        if line in at_line:
            yield at_line[line]
    yield from others


def _source_split(
    data: bytes, start: int, first_line: int, closing: tuple[int, int], source: str, problem: str | None, line: int
) -> _Split:
    source_lines = first_line - 1 + data.count(b"\n", start, closing[0])
    file_line = line + first_line - 1 if line else 0
    return _Split(source, source_lines, closing[0], first_line, problem, file_line)


def _rule_lines(data: bytes) -> list[tuple[int, int]]:
    rules = []
    rule = _find_rule(data, 0)
    while rule is not None:
        rules.append(rule)
        rule = _find_rule(data, rule[1])
    return rules


class _Decoded(NamedTuple):
    text: str  # invalid bytes replaced, lines longer than MAX_KEPT_LINE_CHARS cut
    problem: tuple[str, int] | None  # why the text is not the source as it ran, and the source line (1-based)


def _decode_source(block: bytes) -> _Decoded:
    problem = None
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as e:
        text = block.decode("utf-8", errors="replace")
        problem = ("not valid UTF-8, as Python source must be", block.count(b"\n", 0, e.start) + 1)
    kept = _cap_long_lines(text)
    if kept is not text and problem is None:
        line = next(i for i, ln in enumerate(text.split("\n"), 1) if len(ln) > MAX_KEPT_LINE_CHARS)
        problem = (f"a line longer than {MAX_KEPT_LINE_CHARS:,} characters, not read whole", line)
    return _Decoded(kept, problem)


def _source_text(block: bytes) -> _Decoded:
    """The runs of a record embed the same source: decoded once, and one string shared by their RunLogs, so the
    rules' caches keyed by source find it at once, by identity, rather than by comparing every character."""
    return _shared_source_text(block) if len(block) <= MAX_SHARED_SOURCE_BYTES else _decode_source(block)


@lru_cache(maxsize=32)
def _shared_source_text(block: bytes) -> _Decoded:
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

    steps: Sequence[StepLine]  # StepLines from the block reader, a list from the line reader
    step_lines: bool  # `step:N` lines (else llm.c lines)
    around: Iterable[tuple[str, int]]  # the other lines, with their line numbers, for the environment
    cut_number: int  # the line number of a last line that has no newline (0: none)
    columns: StepColumns | None = None  # the steps as columns, when the reader built them on the way


def _parse_tail(path: Path, data: bytes, tail: str, split: _Split) -> RunLog:
    source, source_lines = split.source, split.source_lines
    first_number = 1 if source is None else source_lines + 1  # the tail starts on the `=` line after the source
    read = _read_common_step_block(path, tail, first_number) or _read_lines(path, tail, first_number)
    if not read.steps:
        raise BadInput(path, "no training step lines (`step:N/M ...` or llm.c `s:N tel:X`) found: not a run log")

    env = _Environment(path, cut_number=read.cut_number)
    for line, number in read.around:
        if line.startswith(_ENVIRONMENT_PREFIXES) and len(line) <= MAX_ENVIRONMENT_LINE_CHARS:
            env.read(line, number)
        elif line.startswith(_LONG_LINE_PREFIXES) and number != read.cut_number:
            if len(line) > MAX_CONFIG_LINE_CHARS:
                key = line.partition(":")[0]
                raise BadInput(path, f"line {number}: a {key} line of {len(line):,} characters: not a run log")
            env.read(line, number)

    log_format = "llmc" if not read.step_lines else "speedrun" if source is not None else "step-lines"
    problem = split.problem
    if problem is not None and "(not valid Python)" in problem and _newer_python(env.versions.get("python")):
        problem += f" under Python {sys.version.split()[0]}; the run used Python {env.versions['python']}"
    run = RunLog(
        path=path,
        format=log_format,
        sha256=hashlib.sha256(data).hexdigest(),
        steps=read.steps if isinstance(read.steps, StepLines) else tuple(read.steps),
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
        train_files_line=env.field_lines.get("train_files", 0),
        val_files=env.fields.get("val_files"),
        val_files_line=env.field_lines.get("val_files", 0),
        data=env.data,
        data_line=env.data_line,
        world_size=env.world_size,
        world_size_line=env.world_size_line,
        source_problem=problem,
        source_problem_line=split.problem_line,
        # Our trainer's log: its source is the trainer's files under `# >>>` lines from line 1, and the log
        # has the trainer's config line. In any other log a `# >>>` line is a comment like any other.
        sectioned=source is not None and is_sectioned(source) and env.config is not None,
    )
    if read.columns is not None:
        run.keep_columns(read.columns)
    return run


def _newer_python(version: str | None) -> bool:
    """Whether the run's Python is newer than the judge's, so that its syntax may be new to this parser."""
    numbers = re.match(r"(\d+)\.(\d+)", version or "")
    return numbers is not None and (int(numbers[1]), int(numbers[2])) > sys.version_info[:2]


def _read_common_step_block(path: Path, tail: str, first_number: int) -> _TailLines | None:
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
    count_lines = tail.count("\n", start, end) + 1  # the block tail[start:end], never copied out
    if count_lines > MAX_STEP_LINES:
        _refuse_step_count(path, count_lines)
    if end - start > count_lines * MAX_STEP_LINE_CHARS:
        return None  # some line is longer than any step line can be: not worth a regex pass
    # One match per line at most (each starts at the newline before its line, and no group spans a newline), so
    # as many matches as lines means all matched: no other line is among the step lines, and all are of the
    # common shape. The block is matched where it lies, between the newlines around it (one is added in front
    # when the tail starts with it).
    text, shift = (tail, 0) if start else ("\n" + tail, 1)
    first_total = _FIRST_TOTAL.match(text, start + shift - 1)
    total = first_total[1] if first_total else None
    pattern = _common_step_line_of_total(total) if total else _COMMON_STEP_LINE
    matched = pattern.findall(text, start + shift - 1, end + shift + 1)
    if len(matched) != count_lines:
        return None
    before = tail[:start].split("\n")[:-1]
    first_step_number = first_number + len(before)
    try:
        numbers = range(first_step_number, first_step_number + count_lines)
        steps, columns = _build_step_columns(matched, numbers, total, strict_step_avg=True)
    except ValueError:
        return None  # an integer too long to convert: the line-by-line reader says where
    after = tail[end + 1 :].split("\n")
    after_number = first_step_number + count_lines
    around = chain(zip(before, count(first_number)), zip(after, count(after_number)))
    cut_number = after_number + len(after) - 1 if after[-1] else 0
    return _TailLines(steps, True, around, cut_number, columns)


def _read_lines(path: Path, tail: str, first_number: int) -> _TailLines:
    """Any log, line by line: step lines in other shapes or among other lines, llm.c lines, a cut last line."""
    lines = tail.split("\n")
    cut_row = len(lines) - 1 if lines[-1] else -1  # a last line with no newline may have been cut off
    step_rows = _rows_starting_with(lines, "step:")
    if len(step_rows) > MAX_STEP_LINES:
        _refuse_step_count(path, len(step_rows))
    steps = _read_step_lines(path, lines, step_rows, first_number, cut_row)
    if not step_rows:
        llmc_rows = _rows_starting_with(lines, "s:")
        if len(llmc_rows) > MAX_STEP_LINES:
            _refuse_step_count(path, len(llmc_rows))
        steps = _read_llmc_lines(path, lines, llmc_rows, first_number, cut_row)
    around = ((lines[row], first_number + row) for row in _rows_around_steps(lines, step_rows))
    return _TailLines(steps, bool(step_rows), around, first_number + cut_row if cut_row >= 0 else 0)


def _refuse_step_count(path: Path, count: int) -> None:
    raise BadInput(path, f"{count:,} step lines, more than the {MAX_STEP_LINES:,} a run log may hold")


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
    _check_range(path, parsed)
    return parsed


def _check_range(path: Path, step: StepLine) -> None:
    """A finite loss or time beyond MAX_NUMBER, or a step beyond MAX_STEP, is no measurement: refuse the line.
    (NaN and inf are kept: the rules report them.) The common shape's regex already bounds its numbers."""
    if not 0 <= step.step <= MAX_STEP or not 0 <= (step.total_steps or 0) <= MAX_STEP:
        raise BadInput(path, f"line {step.line}: step {step.step}/{step.total_steps} is out of range")
    for field, value in zip(StepLine._fields[3:], step[3:], strict=True):
        if value is not None and MAX_NUMBER < abs(value) < math.inf:
            raise BadInput(path, f"line {step.line}: {field} {value:.3g} is out of range: not a measurement")


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
    """StepLines from the regex groups of common-shape lines (see `_build_step_columns`)."""
    return list(_build_step_columns(matched, numbers)[0])


def _build_step_columns(
    matched: list[tuple[str | Any, ...]],
    numbers: Iterable[int],
    one_total: str | None = None,
    strict_step_avg: bool = False,
) -> tuple[StepLines, StepColumns]:
    """The step lines from the regex groups of common-shape lines, column by column: StepLines, which keeps
    the columns and makes a StepLine only when one is asked for, and the columns the rules scan. With
    `one_total`, every line named that total and the groups leave it out; with `strict_step_avg`, every
    step_avg text is one that converts (`_STEP_AVG`), and is converted when read.

    Raises ValueError on a number that does not convert. `zip(*matched)` turns rows into columns, and `map`
    converts each column whole: the loops stay in C.
    """
    if not matched:
        return StepLines(((),) * len(StepLine._fields)), StepColumns((), (), (), (), (), 0)
    size = len(matched)
    if one_total is not None:
        step, kind, loss, train_time, step_avg = zip(*matched, strict=True)
        total: Sequence[str] = (one_total,)
    else:
        step, total, kind, loss, train_time, step_avg = list(zip(*matched, strict=True))[:6]
    val_loss: list[float | None] = [None] * size
    train_loss: list[float | None] = [None] * size
    val_rows = []
    for i in compress(count(), kind):  # most lines carry no loss: visit only those that do
        if kind[i] == "val_loss":
            val_loss[i] = float(loss[i])
            val_rows.append(i)
        else:
            train_loss[i] = float(loss[i])
    # Nearly always every line of a run names the same total. Joined with a `/`, which no total holds, the column
    # equals the first total repeated exactly when every total is the first: compared as one string, not one by one.
    # (One line alone may come from `match.groups()`, whose missing total is None, not "".)
    if len(total) == 1 or "/".join(total) == "/".join(repeat(total[0], size)):
        totals: tuple[int | None, ...] = (int(total[0]) if total[0] else None,) * size
    else:
        totals = tuple(int(t) if t else None for t in total)
    steps, times, val = _step_numbers(step), tuple(map(float, train_time)), tuple(val_loss)
    losses = (None,) * size if train_loss.count(None) == size else tuple(train_loss)  # modern logs print none
    lines = numbers if isinstance(numbers, range) else tuple(numbers)  # a range indexes like a tuple, for free
    averages = FloatTexts(step_avg) if strict_step_avg else tuple(map(float, step_avg))
    fields = (steps, totals, lines, val, losses, times, averages)
    return StepLines(fields), StepColumns(steps, totals, val, times, tuple(val_rows), 0)


def _step_numbers(texts: Sequence[str]) -> tuple[int, ...]:
    """The step numbers of a column of step texts. The runs of a record print the same steps, so the column
    joined into one string finds an earlier run's numbers (joining and one hash cost a fifth of converting)."""
    return _numbers_of_column("\n".join(texts))


@lru_cache(maxsize=32)  # a few records' step columns (each a few thousand ints and their text)
def _numbers_of_column(joined: str) -> tuple[int, ...]:
    """`int` of each line, looked up where the text is a number's own decimal form below MAX_DECIMAL_STEP (every
    step of the archive): twice as fast as converting, the same ints. Any other text is converted."""
    texts = joined.split("\n")
    try:
        return tuple(map(_decimal_numbers().__getitem__, texts))
    except KeyError:
        return tuple(map(int, texts))


@lru_cache(maxsize=1)
def _decimal_numbers() -> dict[str, int]:
    """`str(n) -> n` below MAX_DECIMAL_STEP: about 3 MB, made once, on the first log read."""
    return {str(n): n for n in range(MAX_DECIMAL_STEP)}


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
        self.data: dict[str, Any] | None = None
        self.data_line = 0
        self.fields: dict[str, str] = {}
        self.field_lines: dict[str, int] = {}

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
            self.config, self.config_line = self._read_json(line, number, "config", self.config, self.config_line)
        elif line.startswith("data:"):
            self.data, self.data_line = self._read_json(line, number, "data", self.data, self.data_line)
        else:
            key, _, value = line.partition(":")
            if key not in self.fields:
                self.fields[key], self.field_lines[key] = value.strip(), number

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

    def _read_json(
        self, line: str, number: int, key: str, seen: dict[str, Any] | None, seen_line: int
    ) -> tuple[dict[str, Any] | None, int]:
        """Our trainer's `config:` or `data:` line as a JSON object (the first such line wins)."""
        if seen_line:
            return seen, seen_line
        try:
            value = json.loads(line[len(key) + 1 :])
        except (ValueError, RecursionError):
            if number != self.cut_number:
                raise BadInput(self.path, f"line {number}: {key} is not valid JSON") from None
            return None, 0
        if not isinstance(value, dict):
            raise BadInput(self.path, f"line {number}: {key} is not a JSON object")
        return value, number


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

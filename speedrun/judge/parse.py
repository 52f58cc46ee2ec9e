"""Read one run log into a `RunLog`. Text only: an embedded training source is kept as a string, never run.

Three shapes of log are understood, all the speedrun has used:

- "llmc": llm.c lines, `s:N tel:X` (val loss) and `s:N trl:X ...` (train loss);
- "step-lines": plain `step:N/M val_loss:X train_time:Yms step_avg:Zms` lines (2024);
- "speedrun": the training source first, then a line of `=`, the environment (`Running ...` version lines,
  the nvidia-smi table), more `=` lines, then step lines and a peak-memory line. Our own trainer writes
  this shape too, with `config:`, `data_pipeline_sha256:`, `train_files:`, `val_files:` and `seed:` lines.

Speed matters (a record folder holds dozens of logs, the upstream archive a thousand): the source block is
split off with one search for the `=` line, and only the lines after it are looked at one by one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from pathlib import Path
from typing import Any

from speedrun.errors import BadInput
from speedrun.judge.runlog import GpuInfo, RunLog, StepLine

MAX_LOG_BYTES = 512 * 1024 * 1024  # far beyond any real log; refuses a gzip bomb or a disk image
MAX_KEPT_LINE_CHARS = 10_000  # longer source lines are cut: nobody reads a 100 MB line, and memory matters
SNIFF_CHUNK_BYTES = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
LOG_SUFFIXES = (".txt", ".log")

# A separator: a line of nothing but `=` (upstream prints 100 of them; 20 is enough to tell it from prose).
RULE_MIN_WIDTH = 20
_RULE_START = b"=" * RULE_MIN_WIDTH
_RULE_LINE = re.compile(rb"=+[ \t\r]*(?:\n|$)")
_STEP = re.compile(
    r"step:(\d+)(?:/(\d+))?[ \t]+(?:(val_loss|train_loss):(\S+)[ \t]+)?"
    r"train_time:([-+]?[\d.]+(?:[eE][-+]?\d+)?)ms[ \t]+step_avg:(\S+?)ms[ \t\r]*$",
    re.ASCII,
)
_STEP_HEAD = re.compile(r"step:(\d+)(?:/(\d+))?(?=[ \t\r]|$)", re.ASCII)
_LLMC = re.compile(r"s:(\d+)[ \t]+(tel|trl):(\S+)", re.ASCII)
_GPU_ROW = re.compile(r"\|\s+(\d+)\s+(.+?)\s+(?:On|Off)\s+\|")
_SMI_HEADER = re.compile(r"\|\s*NVIDIA-SMI\s+(\S+)(?:.*?Driver Version:\s*(\S+))?(?:.*?CUDA Version:\s*(\S+))?")
_PEAK_MEMORY = re.compile(r"peak memory (?:allocated|consumption):\s*([\d.]+)\s*MiB")
_TORCH = re.compile(r"Running (?:PyTorch|pytorch) (\S+)(?: compiled for CUDA (\S+))?")
_FIELD = re.compile(r"([a-z0-9_]+):(.*)")
_SEP_OK = frozenset("\t\n\r\x0c\x1b\x08")
_CONTROL = bytes(b for b in range(32) if chr(b) not in _SEP_OK) + b"\x7f"
_TAIL_PREFIXES = ("step:", "s:", "|", "Running ", "peak memory", "nvidia-smi", "config:", "data_pipeline", "seed:")
_TAIL_PREFIXES += ("train_files:", "val_files:")


def parse_log(path: Path) -> RunLog:
    """Parse one run log (plain or gzip-compressed). Raises `BadInput(path, problem)` for anything unusable.

    A truncated log still parses: it simply has no final val step, which the rules report.
    """
    path = Path(path)
    data = _read_log_bytes(path)
    _refuse_non_text(path, data)
    source, source_lines, tail_start = _split_source(data)
    tail = data[tail_start:].decode("utf-8", errors="replace")
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
        opener = gzip.open if compressed else open
        with opener(path, "rb") as f:
            return _has_step_line(f)
    except (OSError, EOFError, zlib.error):
        return False


def _has_step_line(f: Any) -> bool:
    """Scan a binary stream chunk by chunk for a line that starts like a step line."""
    pattern = re.compile(rb"(?:^|\n)(?:step:\d|s:\d+[ \t]+t[er]l:)")
    carry = b"\n"
    read = 0
    while read < MAX_LOG_BYTES:
        chunk = f.read(SNIFF_CHUNK_BYTES)
        if not chunk:
            return False
        if read == 0 and b"\x00" in chunk:
            return False
        read += len(chunk)
        if pattern.search(carry + chunk):
            return True
        carry = chunk[-32:]
    return False


def _read_log_bytes(path: Path) -> bytes:
    if not path.exists():
        raise BadInput(path, "no such file")
    if not path.is_file():
        raise BadInput(path, "not a file")
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            if not compressed:
                raw.seek(0)
                data = raw.read(MAX_LOG_BYTES + 1)
        if compressed:
            with gzip.open(path, "rb") as f:
                data = f.read(MAX_LOG_BYTES + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise BadInput(path, f"corrupt gzip file ({e})") from None
    except OSError as e:
        raise BadInput(path, f"cannot read: {e.strerror or e}") from None
    if len(data) > MAX_LOG_BYTES:
        raise BadInput(path, f"larger than {MAX_LOG_BYTES // 2**20} MiB: not a run log")
    return data


def _refuse_non_text(path: Path, data: bytes) -> None:
    if not data.strip():
        raise BadInput(path, "empty file")
    if b"\x00" in data:
        raise BadInput(path, "binary file (NUL bytes): not a run log")
    sample = data[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    undecodable = sample.decode("utf-8", errors="replace").count("\ufffd")
    if controls + undecodable > len(sample) // 4:
        raise BadInput(path, "binary file (mostly non-text bytes): not a run log")


def _split_source(data: bytes) -> tuple[str | None, int, int]:
    """Return (embedded source, its last line number, byte offset where the rest of the log starts).

    The source is everything before the first `=` line; logs of late 2024 also open with a `=` line,
    and then the source lies between the first two.
    """
    first = _find_rule(data, 0)
    if first is None:
        return None, 0, 0
    start, first_line = 0, 1
    if first[0] == 0:
        second = _find_rule(data, first[1])
        if second is None:
            return None, 0, 0
        start, first, first_line = first[1], second, 2
    block = data[start : first[0]]
    source = _cap_long_lines(block.decode("utf-8", errors="replace"))
    source_lines = first_line - 1 + block.count(b"\n")
    return source, source_lines, first[0]


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


def _parse_tail(path: Path, data: bytes, tail: str, source: str | None, source_lines: int) -> RunLog:
    lines = tail.split("\n")
    first_line_no = 1 if source is None else source_lines + 1  # the tail starts on the `=` line after the source
    last_content = len(lines) - 1
    while last_content >= 0 and not lines[last_content].strip():
        last_content -= 1

    steps: list[StepLine] = []
    llmc = False
    versions: dict[str, str] = {}
    version_lines: dict[str, int] = {}
    gpu_names: dict[int, str] = {}
    gpu_line = 0
    driver = cuda = None
    gpu_table_done = False
    no_gpu_line = 0
    peak: float | None = None
    peak_line = 0
    seed: int | None = None
    seed_line = 0
    fields: dict[str, tuple[str, int]] = {}

    step_match = _STEP.match
    for index, line in enumerate(lines):
        if not line.startswith(_TAIL_PREFIXES):
            continue
        number = first_line_no + index
        if line.startswith("step:"):
            # The hot path: upstream logs hold ~2,000 step lines each, nearly all of the common shape.
            m = step_match(line)
            if m is not None:
                try:
                    step, total, kind, loss, train_time, step_avg = m.groups()
                    value = float(loss) if kind else None
                    steps.append(
                        StepLine(
                            int(step),
                            int(total) if total else None,
                            number,
                            value if kind == "val_loss" else None,
                            value if kind == "train_loss" else None,
                            float(train_time),
                            float(step_avg),
                        )
                    )
                    continue
                except ValueError:  # a corrupted number, or an integer too long to convert
                    pass
            parsed = _parse_loose_step(line, number)
            if parsed is not None:
                steps.append(parsed)
            elif index < last_content:
                raise BadInput(path, f"line {number}: malformed step line {_snippet(line)}")
            # else: the final line was cut off mid-write; the log is truncated, which the rules report
        elif line.startswith("s:"):
            m = _LLMC.match(line)
            if m is None:
                continue
            llmc = True
            try:
                step, value = int(m.group(1)), float(m.group(3))
            except ValueError:
                if index < last_content:
                    raise BadInput(path, f"line {number}: malformed llm.c step line {_snippet(line)}") from None
                continue
            val = m.group(2) == "tel"
            steps.append(
                StepLine(
                    step=step,
                    total_steps=None,
                    line=number,
                    val_loss=value if val else None,
                    train_loss=None if val else value,
                )
            )
        elif line.startswith("|") and not gpu_table_done:
            # Only the first nvidia-smi table counts; its process list and any later table are ignored.
            header = _SMI_HEADER.match(line)
            if header is not None:
                if gpu_line:
                    gpu_table_done = True
                else:
                    gpu_line, driver, cuda = number, header.group(2), header.group(3)
            elif gpu_line:
                row = _GPU_ROW.match(line)
                if row is not None and len(row.group(1)) < 6:
                    gpu_index = int(row.group(1))
                    gpu_table_done = gpu_index in gpu_names
                    gpu_names.setdefault(gpu_index, row.group(2).strip())
                elif "Processes:" in line:
                    gpu_table_done = True
        elif line.startswith("Running "):
            _read_version(line, number, versions, version_lines)
        elif line.startswith("peak memory"):
            m = _PEAK_MEMORY.match(line)
            if m is not None and peak is None:
                peak, peak_line = float(m.group(1)), number
        elif line.startswith("nvidia-smi"):
            if "not available" in line and not no_gpu_line:
                no_gpu_line = number
        elif line.startswith("seed:"):
            value_text = line[5:].strip()
            if not value_text.lstrip("-").isdigit():
                if index < last_content:
                    raise BadInput(path, f"line {number}: seed is not an integer: {_snippet(line)}")
                continue
            if seed is None:
                seed, seed_line = int(value_text), number
        else:
            m = _FIELD.match(line)
            if m is not None and m.group(1) not in fields:
                fields[m.group(1)] = (m.group(2).strip(), number)

    if not steps:
        raise BadInput(path, "no training step lines (`step:N/M ...` or llm.c `s:N tel:X`) found: not a run log")

    gpus = None
    if gpu_names:
        names = tuple(gpu_names[i] for i in sorted(gpu_names))
        gpus = GpuInfo(names=names, line=gpu_line, driver=driver, cuda=cuda)
    elif no_gpu_line:
        gpus = GpuInfo(names=(), line=no_gpu_line)

    config, config_line = _read_config(path, fields.get("config"), last_content + first_line_no)
    if llmc and not any(s.total_steps is not None for s in steps):
        log_format = "llmc"
    else:
        log_format = "speedrun" if source is not None else "step-lines"
    return RunLog(
        path=path,
        format=log_format,
        sha256=hashlib.sha256(data).hexdigest(),
        steps=tuple(steps),
        source=source,
        source_lines=source_lines,
        versions=versions,
        version_lines=version_lines,
        gpus=gpus,
        peak_memory_mib=peak,
        peak_memory_line=peak_line,
        seed=seed,
        seed_line=seed_line,
        config=config,
        config_line=config_line,
        data_pipeline_sha256=fields["data_pipeline_sha256"][0] if "data_pipeline_sha256" in fields else None,
        train_files=fields["train_files"][0] if "train_files" in fields else None,
        val_files=fields["val_files"][0] if "val_files" in fields else None,
    )


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
            if key in ("val_loss", "train_loss", "train_time", "step_avg"):
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


def _read_version(line: str, number: int, versions: dict[str, str], version_lines: dict[str, int]) -> None:
    words = line.split()
    if len(words) < 3:
        return
    tool = words[1].lower()
    if tool == "python" and "python" not in versions:
        versions["python"], version_lines["python"] = words[2], number
    elif tool == "pytorch" and "torch" not in versions:
        m = _TORCH.match(line)
        if m is not None:
            versions["torch"], version_lines["torch"] = m.group(1), number
            if m.group(2):
                versions["cuda"], version_lines["cuda"] = m.group(2), number
    elif tool == "triton" and "triton" not in versions:
        versions["triton"], version_lines["triton"] = words[-1], number


def _read_config(path: Path, found: tuple[str, int] | None, last_line: int) -> tuple[dict[str, Any] | None, int]:
    if found is None:
        return None, 0
    text, number = found
    try:
        config = json.loads(text)
    except (ValueError, RecursionError):
        if number >= last_line:
            return None, 0  # cut off mid-write
        raise BadInput(path, f"line {number}: config is not valid JSON") from None
    if not isinstance(config, dict):
        raise BadInput(path, f"line {number}: config is not a JSON object")
    return config, number


def _snippet(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")

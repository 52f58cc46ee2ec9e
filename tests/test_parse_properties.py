"""Property tests: whatever bytes a log holds, the parser returns a RunLog or raises BadInput, nothing else.

Inputs are random bytes, and real-shaped logs damaged the ways logs get damaged: lines dropped or
repeated, the file cut short, garbage spliced in, numbers corrupted.
"""

from __future__ import annotations

import gzip
import math
import re
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speedrun.errors import BadInput
from speedrun.judge.parse import looks_like_run_log, parse_log
from speedrun.judge.runlog import RunLog
from tests.test_parse import LATE_2024_LOG, LLMC_LOG, MODERN_LOG, OURS_LOG, PLAIN_LOG

TEMPLATES = [LLMC_LOG, PLAIN_LOG, MODERN_LOG, LATE_2024_LOG, OURS_LOG]
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("props") / "run.txt"


def parse_or_refuse(path: Path, data: bytes, text: bytes | None = None) -> RunLog | None:
    """Write `data` to `path` and parse it: a RunLog, or None after a well-formed BadInput.

    `text` is what `data` decompresses to, where it is gzipped."""
    path.write_bytes(data)
    assert isinstance(looks_like_run_log(path), bool)
    try:
        run = parse_log(path)
    except BadInput as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
        assert path.read_bytes() == data  # nothing overwritten
        return None
    check_consistent(run, data if text is None else text)
    return run


def check_consistent(run: RunLog, data: bytes) -> None:
    """A parsed run never contradicts its file: cited lines exist and hold what was read from them."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    assert run.steps
    numbers = [s.line for s in run.steps]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    for step in run.steps:
        assert 1 <= step.line <= len(lines)
        assert lines[step.line - 1].startswith(("step:", "s:"))
        assert step.val_loss is None or isinstance(step.val_loss, float)
    if run.final is not None:
        value = run.final_val_loss
        assert isinstance(value, float) and (math.isnan(value) or value == value)
    assert run.source_lines <= len(lines)
    if run.gpus is not None:
        assert 1 <= run.gpus.line <= len(lines)
    for number in [*run.version_lines.values(), run.peak_memory_line, run.seed_line, run.config_line]:
        assert 0 <= number <= len(lines)


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_random_bytes(log_file: Path, data: bytes) -> None:
    parse_or_refuse(log_file, data)


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_random_bytes_behind_a_gzip_magic(log_file: Path, data: bytes) -> None:
    parse_or_refuse(log_file, b"\x1f\x8b" + data)


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("step:/0123456789. val_losstrain_time:ms=\n|Running")), max_size=600))
def test_random_text_made_of_log_pieces(log_file: Path, text: str) -> None:
    parse_or_refuse(log_file, text.encode())


NASTY_NUMBERS = ["1.2.3", "", "-", "+", "1e999", "-1e999", "nan", "inf", "-0", "\uff19", "0x10", "1_000", "9" * 5000]
NASTY_NUMBERS += ["3.2x81", "1e", ".", "1..2", "\u0663", " ", "\x00", "NaNms", "12ms34"]


def corrupt_numbers(text: str, draw: st.DrawFn) -> str:
    """Damage some numbers: a digit turned into another character, or a whole number replaced."""
    numbers = [m.span() for m in re.finditer(r"\d+(?:\.\d+)?", text)]
    if not numbers:
        return text
    for start, end in sorted(draw(st.lists(st.sampled_from(numbers), max_size=4, unique=True)), reverse=True):
        if draw(st.booleans()):
            text = text[:start] + draw(st.sampled_from(NASTY_NUMBERS)) + text[end:]
        else:
            at = draw(st.integers(start, end - 1))
            text = text[:at] + draw(st.sampled_from(["x", "-", ".", "e", "nan", "", " "])) + text[at + 1 :]
    return text


@st.composite
def damaged_logs(draw: st.DrawFn) -> bytes:
    lines = draw(st.sampled_from(TEMPLATES)).split("\n")
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["drop", "repeat", "garbage", "swap", "blank"]))
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            break
        if action == "drop":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        elif action == "garbage":
            junk = draw(st.binary(max_size=80)).decode("latin-1")
            lines.insert(at, junk)
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            lines[at] = ""
    text = "\n".join(lines)
    if draw(st.booleans()):
        text = corrupt_numbers(text, draw)
    data = text.encode("utf-8", errors="surrogateescape")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # the run was killed mid-write
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    return data


@SETTINGS
@given(data=damaged_logs())
def test_damaged_logs(log_file: Path, data: bytes) -> None:
    parse_or_refuse(log_file, data)


@SETTINGS
@given(data=damaged_logs())
def test_damaged_gzip_logs(log_file: Path, data: bytes) -> None:
    packed = gzip.compress(data)
    parse_or_refuse(log_file, packed, text=data)


def outcome(path: Path) -> str:
    """What parsing a log gives, as text: the RunLog, or the one-line error."""
    try:
        return repr(parse_log(path))  # repr: NaN != NaN
    except BadInput as e:
        return f"BadInput: {e}"


@SETTINGS
@given(data=damaged_logs())
def test_the_block_reader_agrees_with_the_line_reader(log_file: Path, data: bytes) -> None:
    """Logs whose step lines form one block of the common shape, or whose llm.c lines all match, are read in
    one pass; every log read that way reads the same line by line."""
    log_file.write_bytes(data)
    fast = outcome(log_file)
    with (
        mock.patch("speedrun.judge.parse._read_common_step_block", return_value=None),
        mock.patch("speedrun.judge.parse._build_llmc_steps", side_effect=ValueError),
    ):
        assert outcome(log_file) == fast


@settings(max_examples=150, deadline=None, derandomize=True)
@given(template=st.sampled_from(TEMPLATES), cut=st.floats(0.0, 1.0))
def test_a_cut_log_keeps_the_steps_before_the_cut(log_file: Path, template: str, cut: float) -> None:
    """Truncation only ever loses the steps after the cut, never misreads those before it.

    A cut inside the embedded source leaves a text with no end to its source: what it holds (a docstring may
    hold a step line) is then read as a log of its own, with nothing to tell it from one. The property is about
    logs cut while the run printed, after its source and the `=` line that ends it: the cut falls there."""
    whole = parse_or_refuse(log_file, template.encode())
    assert whole is not None
    lines = template.splitlines(keepends=True)
    printed_from = len("".join(lines[: whole.source_lines + 1])) if whole.source else 0  # past the `=` line
    data = template.encode()[: printed_from + int((len(template) - printed_from) * cut)]
    run = parse_or_refuse(log_file, data)
    if run is not None:
        assert repr(run.steps) == repr(whole.steps[: len(run.steps)])  # repr: NaN != NaN

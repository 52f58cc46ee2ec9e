"""Where the embedded source ends, whether it is Python, and the bounds on reading a log.

A contributor writes the code whose source the log embeds, so the source must not be able to move its own
end: a string literal holding a `=` line, `Running` lines, an nvidia-smi table or step lines is source. The
checks here hold the parser against logs built like the archive's (tests/test_parse.py has the shapes) and
against the archive itself.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.judge import embedded, parse
from speedrun.judge.discover import find_run_logs
from speedrun.judge.embedded import source_structure
from speedrun.judge.parse import parse_log
from tests.test_parse import MODERN_LOG, NVIDIA_SMI, OURS_LOG, RULE, SOURCE, bad_input, line_of, write

FAKE_OUTPUT = f'''_NOTES = """
{RULE}
Running Python 3.12.7
Running PyTorch 2.7.0 compiled for CUDA 12.6
{NVIDIA_SMI.replace("H100 80GB HBM3", "H100 FAKE TABLE")}
{RULE}
step:0/1770 val_loss:10.8258 train_time:0ms step_avg:0.05ms
step:1770/1770 val_loss:2.0000 train_time:1ms step_avg:0.00ms
"""
'''
FLAG = "torch._inductor.config.max_autotune = True\n"


def with_source(source: str) -> str:
    return MODERN_LOG.replace(SOURCE, source, 1)


# --- the boundary -------------------------------------------------------------------------------------------------


def test_a_fake_boundary_inside_a_string_is_source(tmp_path: Path) -> None:
    source = SOURCE + FAKE_OUTPUT + FLAG
    run = parse_log(write(tmp_path, with_source(source)))
    assert run.source == source and run.source_problem is None
    assert run.source_lines == source.count("\n")
    assert run.gpus is not None and run.gpus.model == "NVIDIA H100 80GB HBM3"  # the real table, not the fake one
    assert [s.val_loss for s in run.val_steps] == [10.8258, 3.2781]  # the fake step lines are source
    assert run.final is not None and run.final.line == line_of(with_source(source), "step:1770/1770 val_loss:3.2781")


def test_the_format_alone_would_have_been_fooled(tmp_path: Path) -> None:
    """The reason for the structural check: the last `=` line before the first step line is the fake one."""
    data = with_source(SOURCE + FAKE_OUTPUT + FLAG).encode()
    rules = parse._rule_lines(data)
    outputs = [r for r in rules if data.startswith(parse._OUTPUT_STARTS, r[1])]
    first_step = parse._first_step_line(data, outputs[0][1])
    format_choice = [r for r in outputs if r[0] < first_step][-1]
    assert format_choice == outputs[0] and format_choice[0] < data.index(FLAG.encode())


def test_many_fake_boundaries_are_tried_within_a_bound(tmp_path: Path) -> None:
    fakes = "".join(f'N{i} = """\n{RULE}\nRunning Python 3.12\n"""\n' for i in range(parse.MAX_BOUNDARY_TRIES * 3))
    run = parse_log(write(tmp_path, with_source(SOURCE + fakes + FLAG)))
    # Past the tries the format decides: the last candidate before the first step line, which parses here.
    assert run.source == SOURCE + fakes + FLAG and run.source_problem is None


def test_a_source_that_is_not_python_is_reported_with_its_line(tmp_path: Path) -> None:
    source = SOURCE.replace("import sys\n", "import sys\n<<<<<<< HEAD\n")
    text = with_source(source)
    run = parse_log(write(tmp_path, text))
    assert run.source == source  # the boundary the format gives
    assert run.source_problem is not None and run.source_problem.startswith("line 3: invalid syntax")
    assert run.source_problem_line == line_of(text, "<<<<<<<")
    assert run.final_val_loss == pytest.approx(3.2781)  # the rest of the log is read as ever


def test_a_late_2024_log_reports_problems_at_lines_of_the_file(tmp_path: Path) -> None:
    text = f"{RULE}\nimport os\nx = (\n{RULE}\n" + MODERN_LOG[MODERN_LOG.index("\nRunning Python 3.12.7") + 1 :]
    run = parse_log(write(tmp_path, text))
    assert run.source == "import os\nx = (\n"
    assert run.source_problem is not None and run.source_problem_line == 3  # the file's line 3 is the source's 2


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("x = 1;" + " " * 12_000 + FLAG, "longer than 10,000 characters"),
        ("x = (\n    " + " +\n    ".join(["a"] * 50_000) + "\n)\n", "nested too deeply"),
        ("x = 1\n" * (embedded.MAX_SOURCE_STATEMENTS + 1), "statements read"),
        (("#" * 99 + "\n") * (embedded.MAX_SOURCE_CHARS // 100 + 10), "the judge reads"),
    ],
    ids=["cut long line", "deep nesting", "too many statements", "too large"],
)
def test_sources_the_judge_cannot_read_whole_are_reported(tmp_path: Path, source: str, problem: str) -> None:
    run = parse_log(write(tmp_path, with_source(source)))
    assert run.source_problem is not None and problem in run.source_problem, run.source_problem


def test_invalid_utf8_in_the_source_is_reported(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, with_source("# caf\xe9\n" + SOURCE).encode("latin-1")))
    assert run.source_problem is not None and "UTF-8" in run.source_problem
    assert run.final_val_loss == pytest.approx(3.2781)


def test_newer_syntax_than_the_judge_reads_names_both_pythons(tmp_path: Path) -> None:
    source = 'x = {"a": 1}\nprint(f"{x["a"]}")\n'  # PEP 701: Python 3.12 reads it, earlier ones do not
    run = parse_log(write(tmp_path, with_source(source).replace("Running Python 3.12.7", "Running Python 3.99.0")))
    if sys.version_info >= (3, 12):
        assert run.source_problem is None
    else:
        assert run.source_problem is not None and "the run used Python 3.99.0" in run.source_problem


def test_the_upstream_multi_file_shape_parses_file_by_file() -> None:
    kernels = "import triton\n\n@triton.jit\ndef k(x):\n    pass\n"
    source = f"import os\nx = 1\n\n\n{'-' * 40}\n# triton_kernels.py\n{'-' * 40}\n\n{kernels}"
    structure = source_structure(source)
    assert structure.problem is None
    assert [b.first_line for b in structure.blocks] == [1, 2, 9, 11]
    banner_in_string = f'NOTE = """\n{"-" * 40}\n# x.py\n{"-" * 40}\n"""\ny = 2\n'
    assert source_structure(banner_in_string).problem is None
    assert source_structure(source.replace("def k(x):", "def k(x)")).problem is not None


def test_statement_split_merges_a_string_spanning_statements() -> None:
    source = 'A = """\nunindented line\n"""\nB = 1\n@triton.autotune(\n    configs=[],\n)\n@jit\ndef f():\n    pass\n'
    structure = source_structure(source)
    assert structure.problem is None
    # The string's block is merged with the next ones until they parse together (here through `B = 1`): a
    # run of statements is as good as one. The multi-line decorator stays with its function.
    assert [b.text.split("\n")[0] for b in structure.blocks] == ['A = """', "@triton.autotune("]
    assert "B = 1" in structure.blocks[0].text and structure.blocks[1].text.endswith("pass\n")


# --- our trainer's sections ---------------------------------------------------------------------------------------


def test_sections_are_honoured_only_in_our_trainers_logs(tmp_path: Path) -> None:
    assert parse_log(write(tmp_path, OURS_LOG)).sectioned
    without_config = re.sub(r"^config: .*\n", "", OURS_LOG, flags=re.MULTILINE)
    assert not parse_log(write(tmp_path, without_config)).sectioned
    marker_in_upstream = with_source(SOURCE + "# >>> speedrun/trainer/data.py\nx = 1\n")
    assert not parse_log(write(tmp_path, marker_in_upstream)).sectioned


def test_a_long_config_line_is_read_and_an_absurd_one_refused(tmp_path: Path) -> None:
    long_config = OURS_LOG.replace('"num_iterations": 3', '"num_iterations": 3, "notes": "' + "x" * 5000 + '"')
    assert parse_log(write(tmp_path, long_config)).sectioned  # over 2,000 characters, still the config
    absurd = OURS_LOG.replace('"num_iterations": 3', '"n": "' + "x" * parse.MAX_CONFIG_LINE_CHARS + '"')
    assert "config line of" in bad_input(write(tmp_path, absurd)).problem


# --- bounds and errors --------------------------------------------------------------------------------------------


def test_bounds_sit_far_above_the_archive_and_far_below_what_hurts() -> None:
    assert parse.MAX_LOG_BYTES <= 16 * 2**20 and parse.MAX_STEP_LINES <= 50_000
    assert embedded.MAX_SOURCE_CHARS <= 2**20


@pytest.mark.parametrize(
    "line",
    ["step:1770/1770 val_loss:" + "9" * 300 + " train_time:1ms step_avg:1.00ms", "step:1770/1770 val_loss:1e300"],
    ids=["300 digits", "exponent"],
)
def test_numbers_out_of_range_are_bad_input(tmp_path: Path, line: str) -> None:
    text = MODERN_LOG.replace("step:1770/1770 val_loss:3.2781 train_time:170100ms step_avg:96.10ms", line)
    assert "out of range" in bad_input(write(tmp_path, text)).problem


def test_nan_and_inf_survive_the_range_check(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, MODERN_LOG.replace("val_loss:3.2781", "val_loss:inf")))
    assert run.final_val_loss == float("inf")


def test_too_many_step_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_STEP_LINES", 3)
    assert "step lines, more than the 3" in bad_input(write(tmp_path, MODERN_LOG)).problem


def test_any_other_failure_on_one_file_is_bad_input_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("a bug in the reader")

    monkeypatch.setattr(parse, "_parse_tail", broken)
    assert "ZeroDivisionError: a bug in the reader" in bad_input(write(tmp_path, MODERN_LOG)).problem

    def deep(*args: object) -> None:
        raise RecursionError

    monkeypatch.setattr(parse, "_parse_tail", deep)
    assert bad_input(write(tmp_path, MODERN_LOG)).problem == "nested too deeply to read"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_log_saved_as_utf16_is_found_and_reported(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, MODERN_LOG.encode(encoding))
    assert find_run_logs(tmp_path) == [path]
    assert "UTF-16" in bad_input(path).problem


# --- the archive --------------------------------------------------------------------------------------------------

# Logs whose source does not parse under this Python, with why. Python 3.12 reads f-strings that nest the
# same quotes (PEP 701); the two medium records of April 2025 ran on 3.12.9 and use them.
UNPARSEABLE_BEFORE_312 = {
    "track_2_medium/2025-04-16_Record7/223_3310d0b1-b24d-48ee-899f-d5c2a254a195.txt",
    "track_2_medium/2025-04-22_Record8/075_640429f2-e726-4e83-aa27-684626239ffc.txt",
}


@pytest.mark.archive
@pytest.mark.slow
def test_every_archive_source_ends_where_the_format_says_and_parses(upstream_records: Path) -> None:
    """The structural boundary agrees with the format's on all ~974 real logs (the last `=` line followed by
    `Running`/`nvidia-smi` before the first step line, else the first `=` line), and every source parses
    but for the known exceptions: the hardening changes nothing for honest logs."""
    unparseable = set()
    checked = 0
    for path in find_run_logs(upstream_records):
        try:
            run = parse_log(path)
        except BadInput:
            continue
        data = path.read_bytes()
        rules = parse._rule_lines(data)
        outputs = [r for r in rules if data.startswith(parse._OUTPUT_STARTS, r[1])]
        if outputs:
            first_step = parse._first_step_line(data, outputs[0][1])
            closing = [r for r in outputs if r[0] < first_step][-1]
        elif rules:
            closing = rules[0]
        if run.source is not None:
            assert run.source_lines == data.count(b"\n", 0, closing[0]), path
            checked += 1
        if run.source_problem is not None:
            unparseable.add(path.relative_to(upstream_records).as_posix())
    assert checked > 900
    assert unparseable == (set() if sys.version_info >= (3, 12) else UNPARSEABLE_BEFORE_312)

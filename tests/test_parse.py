"""The log parser on small hand-written logs of every shape, and on every kind of bad input."""

from __future__ import annotations

import gc
import gzip
import json
import math
import os
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.judge import parse
from speedrun.judge.discover import find_run_logs, split_groups
from speedrun.judge.judging import parse_runs
from speedrun.judge.parse import looks_like_run_log, parse_log

RULE = "=" * 100

LLMC_LOG = """\
s:0 tel:10.9830
s:0 trl:10.9811 lr:0.000001 norm:15.37
s:1 trl:10.9598 lr:0.000002 norm:15.24
s:250 tel:6.3097
s:250 trl:6.1000 lr:0.000100 norm:0.80
s:500 tel:3.2722
"""

PLAIN_LOG = """\
step:0/500 val_loss:10.9830 train_time:0ms step_avg:nanms
step:1/500 train_loss:10.9811 train_time:210ms step_avg:nanms
step:2/500 train_loss:10.5000 train_time:420ms step_avg:nanms
step:250/500 val_loss:4.1000 train_time:52000ms step_avg:208.00ms
step:500/500 train_loss:3.3000 train_time:104000ms step_avg:208.00ms
step:500/500 val_loss:3.2790 train_time:104100ms step_avg:208.20ms
"""

NVIDIA_SMI = """\
Sat Mar  1 12:00:00 2025
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 570.86.15              Driver Version: 570.86.15      CUDA Version: 12.8     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |
|=========================================+========================+======================|
|   0  NVIDIA H100 80GB HBM3          On  |   00000000:18:00.0 Off |                    0 |
| N/A   31C    P0            69W /  700W |       4MiB /  81559MiB |      0%      Default |
+-----------------------------------------+------------------------+----------------------+
|   1  NVIDIA H100 80GB HBM3          On  |   00000000:2A:00.0 Off |                    0 |
| N/A   37C    P0            116W /  700W |     530MiB /  81559MiB |      0%      Default |
+-----------------------------------------+------------------------+----------------------+
|   2  NVIDIA H100 80GB HBM3          On  |   00000000:3A:00.0 Off |                    0 |
| N/A   37C    P0            116W /  700W |     530MiB /  81559MiB |      0%      Default |
+-----------------------------------------+------------------------+----------------------+
|   3  NVIDIA H100 80GB HBM3          On  |   00000000:5D:00.0 Off |                    0 |
| N/A   37C    P0            116W /  700W |     530MiB /  81559MiB |      0%      Default |
+-----------------------------------------+------------------------+----------------------+

+-----------------------------------------------------------------------------------------+
| Processes:                                                                              |
|  GPU   GI   CI        PID   Type   Process name                              GPU Memory |
|        ID   ID                                                               Usage      |
|=========================================================================================|
|    1   N/A  N/A     35792      C   /usr/bin/python3                                0MiB |
|    2   N/A  N/A     35793      C   /usr/bin/python3                                0MiB |
+-----------------------------------------------------------------------------------------+
"""

SOURCE = '''\
import os
import sys

with open(sys.argv[0]) as f:
    code = f.read()
"""Docstrings may hold anything, even a line that looks like a result:
step:9999/9999 val_loss:1.0000 train_time:1ms step_avg:1.00ms
"""
print0(f"Running Python {sys.version}")
'''

MODERN_LOG = f"""\
{SOURCE}{RULE}
Running Python 3.12.7 (main, Oct  1 2024, 08:52:12) [GCC 11.4.0]
Running PyTorch 2.7.0.dev20250208+cu126 compiled for CUDA 12.6
Running Triton version 3.2.0
{NVIDIA_SMI}
{RULE}
step:0/1770 val_loss:10.8258 train_time:0ms step_avg:0.05ms
step:1/1770 train_time:150ms step_avg:150.00ms
step:2/1770 train_time:250ms step_avg:125.00ms
step:1770/1770 train_time:170000ms step_avg:96.05ms
step:1770/1770 val_loss:3.2781 train_time:170100ms step_avg:96.10ms
peak memory allocated: 31215 MiB reserved: 32456 MiB
"""

# Late 2024: the source sits between two `=` lines, and peak memory had another wording.
LATE_2024_LOG = f"""\
{RULE}
import os
print(f"peak memory consumption: {{mem}} MiB")
{RULE}
Running pytorch 2.6.0.dev20241124+cu124 compiled for CUDA 12.4
nvidia-smi:
{NVIDIA_SMI}
{RULE}
Training DataLoader: total number of tokens: 1800000000 across 18 files
{RULE}
step:0/1750 val_loss:10.8258 train_time:0ms step_avg:nanms
step:1/1750 train_loss:10.8258 train_time:26757ms step_avg:nanms
step:1750/1750 val_loss:3.2733 train_time:279551ms step_avg:160.66ms
peak memory consumption: 25000 MiB
"""

CONFIG = {"track": "track_1_short", "seed": 7, "num_iterations": 3}
OURS_LOG = f"""\
# >>> speedrun/trainer/train.py
import torch
# >>> speedrun/trainer/model.py
class GPT: ...
{RULE}
Running Python 3.12.3
Running PyTorch 2.13.0+cpu compiled for CUDA None
nvidia-smi: not available (device cpu)
{RULE}
config: {json.dumps(CONFIG)}
data_pipeline_sha256: {"ab" * 32}
train_files: data/fineweb10B/fineweb_train_*.bin (2 files)
val_files: data/fineweb10B/fineweb_val_*.bin (1 files)
world_size: 1
seed: 7
step:0/3 val_loss:10.9000 train_time:0ms step_avg:0.00ms
step:1/3 train_time:100ms step_avg:100.00ms
step:2/3 train_time:200ms step_avg:100.00ms
step:3/3 train_time:300ms step_avg:100.00ms
step:3/3 val_loss:7.5000 train_time:310ms step_avg:103.33ms
peak memory allocated: 0 MiB reserved: 0 MiB
"""


def write(tmp_path: Path, text: str | bytes, name: str = "run.txt") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the first line of `text` that starts with `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), start=1) if line.startswith(needle))


def bad_input(path: Path) -> BadInput:
    """Parse a log that must be refused; check the message is one line that names the file."""
    with pytest.raises(BadInput) as caught:
        parse_log(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ": "), message
    assert "\n" not in message
    return caught.value


# --- the shapes of log ---


def test_llmc_log(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, LLMC_LOG, "main.log"))
    assert run.format == "llmc"
    assert run.source is None and run.gpus is None
    assert [s.step for s in run.val_steps] == [0, 250, 500]
    assert run.final_val_loss == pytest.approx(3.2722)
    assert run.final is not None and run.final.line == 6 and run.final.total_steps is None
    assert run.train_time_ms is None  # llm.c logs carry no timing
    assert run.steps[1].train_loss == pytest.approx(10.9811)


def test_plain_step_lines(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, PLAIN_LOG))
    assert run.format == "step-lines"
    assert len(run.steps) == 6
    assert run.final_val_loss == pytest.approx(3.2790)
    assert run.train_time_ms == 104100
    assert run.final is not None and run.final.line == 6 and run.final.total_steps == 500
    assert math.isnan(run.steps[0].step_avg_ms or 0.0)  # `step_avg:nanms` is kept as NaN
    assert run.steps[1].train_loss == pytest.approx(10.9811) and run.steps[1].val_loss is None


def test_runs_with_the_same_steps_share_their_step_column_and_others_do_not(tmp_path: Path) -> None:
    def log(steps: list[int], time_ms: int) -> str:
        lines = [f"step:{s}/40 train_time:{time_ms * s}ms step_avg:{time_ms:.2f}ms" for s in steps[:-1]]
        return "\n".join([*lines, f"step:{steps[-1]}/40 val_loss:3.2 train_time:{time_ms * 40}ms step_avg:1.00ms\n"])

    first = parse_log(write(tmp_path, log([1, 2, 3, 40], 10), "a.txt"))
    second = parse_log(write(tmp_path, log([1, 2, 3, 40], 20), "b.txt"))
    other = parse_log(write(tmp_path, log([1, 2, 30, 40], 10), "c.txt"))
    assert first.columns.step is second.columns.step  # one tuple for both: found by the column's text
    assert [s.step for s in other.steps] == [1, 2, 30, 40]
    assert [s.train_time_ms for s in second.steps] == [20, 40, 60, 800]


def test_step_avg_is_a_float_read_where_asked_and_other_spellings_still_parse(tmp_path: Path) -> None:
    common = "step:0/2 val_loss:10.8 train_time:0ms step_avg:nanms\nstep:1/2 train_time:50ms step_avg:50.00ms\n"
    run = parse_log(write(tmp_path, common + "step:2/2 val_loss:3.2 train_time:100ms step_avg:50.00ms\n", "a.txt"))
    assert run.steps[1].step_avg_ms == 50.0 and isinstance(run.steps[1].step_avg_ms, float)
    assert math.isnan(run.steps[0].step_avg_ms or 0.0) and [s.step_avg_ms for s in run.steps][2:] == [50.0]
    spelled = parse_log(write(tmp_path, common + "step:2/2 val_loss:3.2 train_time:100ms step_avg:5e1ms\n", "b.txt"))
    assert spelled.steps[2].step_avg_ms == 50.0


def test_a_log_parsed_again_is_the_same_run_until_its_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, PLAIN_LOG)
    first = parse_log(path)
    assert parse_log(path) is first
    os.utime(path, ns=(1, 1))  # the same bytes, another time: read again
    again = parse_log(path)
    assert again is not first and again.sha256 == first.sha256
    path.write_text(PLAIN_LOG.replace("3.2790", "3.2791"), encoding="utf-8")
    assert parse_log(path).final_val_loss == pytest.approx(3.2791)


def test_modern_upstream_log(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, MODERN_LOG))
    assert run.format == "speedrun"
    assert run.source == SOURCE
    assert run.source_lines == SOURCE.count("\n")
    assert run.versions == {"python": "3.12.7", "torch": "2.7.0.dev20250208+cu126", "cuda": "12.6", "triton": "3.2.0"}
    assert run.version_lines["triton"] == line_of(MODERN_LOG, "Running Triton")
    assert run.gpus is not None
    assert run.gpus.count == 4 and run.gpus.model == "NVIDIA H100 80GB HBM3"  # process rows are not GPUs
    assert (run.gpus.driver, run.gpus.cuda) == ("570.86.15", "12.8")
    assert run.gpus.line == line_of(MODERN_LOG, "| NVIDIA-SMI")
    assert run.peak_memory_mib == 31215 and run.peak_memory_line == line_of(MODERN_LOG, "peak memory")
    # The step line inside the docstring is source, not a result.
    assert [s.step for s in run.val_steps] == [0, 1770]
    assert run.final_val_loss == pytest.approx(3.2781) and run.train_time_ms == 170100
    assert run.final is not None and run.final.line == line_of(MODERN_LOG, "step:1770/1770 val_loss")
    assert run.at(run.final.line).line == run.final.line


def test_late_2024_log_opens_with_a_rule(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, LATE_2024_LOG))
    assert run.format == "speedrun"
    assert run.source is not None and run.source.startswith("import os\n") and "peak memory consumption" in run.source
    assert run.source_lines == 3  # the opening `=` line and two lines of code
    assert run.versions == {"torch": "2.6.0.dev20241124+cu124", "cuda": "12.4"}
    assert run.gpus is not None and run.gpus.count == 4
    assert run.peak_memory_mib == 25000 and run.peak_memory_line == line_of(LATE_2024_LOG, "peak memory consumption")
    assert run.final_val_loss == pytest.approx(3.2733) and run.train_time_ms == 279551


def test_our_trainer_log(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, OURS_LOG))
    assert run.format == "speedrun"
    assert run.source is not None and run.source.startswith("# >>> speedrun/trainer/train.py\n")
    assert run.source.count("# >>> speedrun/trainer/") == 2
    assert run.config == CONFIG and run.config_line == line_of(OURS_LOG, "config:")
    assert run.data_pipeline_sha256 == "ab" * 32
    assert run.train_files is not None and run.train_files.startswith("data/fineweb10B/fineweb_train_")
    assert run.val_files is not None and run.val_files.endswith("(1 files)")
    assert run.seed == 7 and run.seed_line == line_of(OURS_LOG, "seed:")
    assert run.gpus is not None and run.gpus.count == 0 and run.gpus.line == line_of(OURS_LOG, "nvidia-smi")
    assert run.world_size == 1 and run.world_size_line == line_of(OURS_LOG, "world_size:")
    assert run.versions == {"python": "3.12.3", "torch": "2.13.0+cpu"}  # no CUDA on a CPU-only PyTorch
    assert run.final_val_loss == pytest.approx(7.5) and run.train_time_ms == 310
    assert len(run.steps) == 5 and run.peak_memory_mib == 0


def test_gzip_log_parses_like_the_plain_one(tmp_path: Path) -> None:
    plain = parse_log(write(tmp_path, MODERN_LOG))
    packed = write(tmp_path, gzip.compress(MODERN_LOG.encode()), "run.txt.gz")
    run = parse_log(packed)
    assert run.path == packed
    assert run.steps == plain.steps and run.gpus == plain.gpus and run.source == plain.source
    assert run.sha256 == plain.sha256  # the hash is of the log's text, however it is stored
    assert looks_like_run_log(packed)


def test_windows_line_endings(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, MODERN_LOG.replace("\n", "\r\n").encode()))
    assert run.final_val_loss == pytest.approx(3.2781)
    assert run.gpus is not None and run.gpus.count == 4
    assert run.versions["triton"] == "3.2.0"


def test_nan_and_inf_losses_are_kept_for_the_rules(tmp_path: Path) -> None:
    text = PLAIN_LOG.replace("val_loss:4.1000", "val_loss:inf").replace("val_loss:3.2790", "val_loss:nan")
    run = parse_log(write(tmp_path, text))
    assert math.isinf(run.val_steps[1].val_loss or 0.0)
    assert run.final_val_loss is not None and math.isnan(run.final_val_loss)


def test_truncated_log_parses_without_a_final_val(tmp_path: Path) -> None:
    cut = MODERN_LOG[: MODERN_LOG.index("step:2/1770")] + "step:2/1770 train_ti"  # killed mid-write
    run = parse_log(write(tmp_path, cut))
    assert [s.step for s in run.steps] == [0, 1]
    assert run.final is not None and run.final.step == 0  # only the step-0 val: the rules see no full run
    assert run.peak_memory_mib is None


@pytest.mark.parametrize(
    ("cut_after", "steps"),
    [("val_loss:3.27", 5), ("train_time:10410", 5), ("step_avg:208.20ms", 6)],
    ids=["mid-loss", "mid-time", "whole-line"],
)
def test_a_cut_last_line_is_never_misread(tmp_path: Path, cut_after: str, steps: int) -> None:
    """`val_loss:3.27` cut from `val_loss:3.2790` would be a wrong result: an unfinished line is dropped."""
    cut = PLAIN_LOG[: PLAIN_LOG.rindex(cut_after) + len(cut_after)]
    run = parse_log(write(tmp_path, cut))
    assert len(run.steps) == steps
    assert run.final_val_loss == pytest.approx(3.2790 if steps == 6 else 4.1000)


def test_a_cut_llmc_line_is_dropped(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, LLMC_LOG.rstrip("\n")[:-2], "main.log"))  # `s:500 tel:3.27`
    assert run.final_val_loss == pytest.approx(6.3097)


def test_a_malformed_last_line_that_ended_is_an_error(tmp_path: Path) -> None:
    text = PLAIN_LOG.replace("val_loss:3.2790", "val_loss:3.2?90")
    assert bad_input(write(tmp_path, text)).problem.startswith("line 6: malformed step line")


def test_hostile_source_is_only_text(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = (
        f"import os\nos.system('touch {marker}')\n__import__('shutil').rmtree('/')\n"
        "raise SystemExit(3)\n" + "x = '\\x00'\n" * 3
    )
    run = parse_log(write(tmp_path, hostile + RULE + "\n" + PLAIN_LOG))
    assert run.source == hostile
    assert not marker.exists()
    assert run.final_val_loss == pytest.approx(3.2790)


def test_a_rule_inside_the_source_does_not_end_it(tmp_path: Path) -> None:
    source = f'"""Notes\n{RULE}\nmore notes\n"""\nimport os\n'
    run = parse_log(write(tmp_path, source + MODERN_LOG[len(SOURCE) :]))
    assert run.source == source
    assert run.versions["python"] == "3.12.7"


def test_non_utf8_bytes_are_replaced(tmp_path: Path) -> None:
    data = MODERN_LOG.encode().replace(b"import sys", b"import \xff\xfe sys")
    run = parse_log(write(tmp_path, data))
    assert run.source is not None and "\ufffd" in run.source
    assert run.final_val_loss == pytest.approx(3.2781)


def test_a_10_mb_line_is_cut_in_the_kept_source(tmp_path: Path) -> None:
    huge = b"x = '" + b"a" * 10_000_000 + b"'\n"
    run = parse_log(write(tmp_path, huge + MODERN_LOG.encode()))
    assert run.source is not None and len(run.source) < 20_000 + len(SOURCE)
    assert run.source_lines == 1 + SOURCE.count("\n")
    assert run.final_val_loss == pytest.approx(3.2781)
    assert run.final is not None and run.final.line == 1 + line_of(MODERN_LOG, "step:1770/1770 val_loss")


def test_a_10_mb_line_after_the_steps(tmp_path: Path) -> None:
    run = parse_log(write(tmp_path, PLAIN_LOG.encode() + b"|" + b" " * 10_000_000 + b"\n"))
    assert run.final_val_loss == pytest.approx(3.2790)


def test_a_10_mb_step_line(tmp_path: Path) -> None:
    huge = "step:1/500 val_loss:" + "9" * 10_000_000
    error = bad_input(write(tmp_path, PLAIN_LOG.replace("step:1/500", huge + "\nstep:1/500")))
    assert error.problem.startswith("line 2: a step line of 10,000,020 characters")
    run = parse_log(write(tmp_path, PLAIN_LOG + huge))  # the same line cut off at the end of the log
    assert run.final_val_loss == pytest.approx(3.2790)


def test_step_lines_with_other_fields(tmp_path: Path) -> None:
    text = "step:0/10 train_time:0ms val_loss:10.5 step_avg:0ms lr:0.1\nstep:10 val_loss:3.5 train_time:9.5ms\n"
    run = parse_log(write(tmp_path, text))
    assert [(s.step, s.total_steps, s.val_loss, s.train_time_ms) for s in run.steps] == [
        (0, 10, 10.5, 0.0),
        (10, None, 3.5, 9.5),
    ]


def test_only_the_first_nvidia_smi_table_counts(tmp_path: Path) -> None:
    text = MODERN_LOG.replace("peak memory", NVIDIA_SMI + NVIDIA_SMI + "peak memory")
    run = parse_log(write(tmp_path, text))
    assert run.gpus is not None and run.gpus.count == 4


def test_mixed_gpu_models(tmp_path: Path) -> None:
    text = MODERN_LOG.replace("|   3  NVIDIA H100 80GB HBM3   ", "|   3  NVIDIA A100-SXM4-80GB   ")
    run = parse_log(write(tmp_path, text))
    assert run.gpus is not None and run.gpus.model == "NVIDIA H100 80GB HBM3 + NVIDIA A100-SXM4-80GB"


def test_the_garbage_collector_is_left_as_found(tmp_path: Path) -> None:
    """Parsing pauses the collector while it builds tuples; it must come back, even after an error."""
    good, bad = write(tmp_path, PLAIN_LOG, "good.txt"), write(tmp_path, PLAIN_LOG.replace("3.2790", "3.x"), "bad.txt")
    assert gc.isenabled()
    parse_log(good)
    with pytest.raises(BadInput):
        parse_log(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        parse_log(good)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(BadInput):
        parse_runs([good, bad])  # a whole group is parsed under one pause
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # what the pause froze to move it on is thawed again


def test_a_pause_leaves_frozen_objects_frozen(tmp_path: Path) -> None:
    """Objects someone else froze (before forking, say) stay frozen: the pause only moves on its own."""
    good = write(tmp_path, PLAIN_LOG, "good.txt")
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        parse_runs([good])
        # not thawed (0) and nothing more frozen; a frozen object freed meanwhile (one evicted from a cache of
        # the re module, say) lowers the count, so it is not compared for equality
        assert 0 < gc.get_freeze_count() <= frozen and gc.isenabled()
    finally:
        gc.unfreeze()


# --- bad input: one line naming the file, never a traceback ---


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in bad_input(tmp_path / "absent.txt").problem


def test_a_folder_is_not_a_log(tmp_path: Path) -> None:
    assert "not a file" in bad_input(tmp_path).problem


@pytest.mark.parametrize("text", ["", "\n\n  \n"], ids=["empty", "blank"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    assert bad_input(write(tmp_path, text)).problem == "empty file"


def test_nul_bytes_mean_binary(tmp_path: Path) -> None:
    assert "binary" in bad_input(write(tmp_path, PLAIN_LOG.encode() + b"\x00\x01")).problem


def test_mostly_binary_file(tmp_path: Path) -> None:
    noise = bytes((i * 131 + 7) % 256 for i in range(20_000)).replace(b"\x00", b"\x01")
    assert "binary" in bad_input(write(tmp_path, noise + PLAIN_LOG.encode())).problem


def test_no_step_lines(tmp_path: Path) -> None:
    assert "no training step lines" in bad_input(write(tmp_path, "hello\nworld\n")).problem
    assert "no training step lines" in bad_input(write(tmp_path, SOURCE + RULE + "\nRunning Python 3\n")).problem


def test_malformed_step_line_in_the_middle(tmp_path: Path) -> None:
    text = PLAIN_LOG.replace("val_loss:4.1000", "val_loss:4.1x00")
    error = bad_input(write(tmp_path, text))
    assert error.problem.startswith("line 4: malformed step line")


def test_a_step_line_without_any_step_field(tmp_path: Path) -> None:
    text = PLAIN_LOG.replace("step:2/500 train_loss:10.5000 train_time:420ms step_avg:nanms", "step:2/500 lr:0.1")
    assert bad_input(write(tmp_path, text)).problem.startswith("line 3: malformed step line")


def test_odd_environment_numbers_are_not_read(tmp_path: Path) -> None:
    text = MODERN_LOG.replace("allocated: 31215 MiB", "allocated: 3.12.15 MiB").replace("|   3  ", "|   99999  ")
    run = parse_log(write(tmp_path, text))
    assert run.peak_memory_mib is None
    assert run.gpus is not None and run.gpus.count == 3


def test_malformed_llmc_line_in_the_middle(tmp_path: Path) -> None:
    assert "line 4" in bad_input(write(tmp_path, LLMC_LOG.replace("tel:6.3097", "tel:6.3.0"))).problem


def test_bad_config(tmp_path: Path) -> None:
    assert "not valid JSON" in bad_input(write(tmp_path, OURS_LOG.replace('"seed": 7', '"seed": '))).problem
    not_object = OURS_LOG.replace(f"config: {json.dumps(CONFIG)}", "config: [1, 2]")
    assert "not a JSON object" in bad_input(write(tmp_path, not_object)).problem


def test_bad_seed_or_world_size(tmp_path: Path) -> None:
    assert "seed is not an integer" in bad_input(write(tmp_path, OURS_LOG.replace("seed: 7", "seed: seven"))).problem
    bad = OURS_LOG.replace("world_size: 1", "world_size: 1.5")
    assert "world_size is not an integer" in bad_input(write(tmp_path, bad)).problem


def test_corrupt_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(PLAIN_LOG.encode())
    assert "gzip" in bad_input(write(tmp_path, packed[: len(packed) // 2], "run.txt.gz")).problem


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_LOG_BYTES", 100)
    assert "larger than" in bad_input(write(tmp_path, PLAIN_LOG)).problem


def test_gzip_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_LOG_BYTES", 1000)
    packed = write(tmp_path, gzip.compress(PLAIN_LOG.encode() * 100), "run.txt.gz")
    assert len(packed.read_bytes()) < 1000
    assert "larger than" in bad_input(packed).problem


def test_too_many_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_LOG_LINES", 5)
    assert "more than 5 lines" in bad_input(write(tmp_path, PLAIN_LOG)).problem


def test_bad_input_overwrites_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, b"\x00garbage")
    bad_input(path)
    assert path.read_bytes() == b"\x00garbage"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.txt"]


# --- sniffing and discovery ---


def test_looks_like_run_log(tmp_path: Path) -> None:
    assert looks_like_run_log(write(tmp_path, MODERN_LOG, "a.txt"))
    assert looks_like_run_log(write(tmp_path, LLMC_LOG, "main.log"))
    assert not looks_like_run_log(write(tmp_path, MODERN_LOG, "train_gpt.py"))
    assert not looks_like_run_log(write(tmp_path, "# Results\nstep:1/2 was fast\n", "README.md"))
    assert not looks_like_run_log(write(tmp_path, "torch==2.5\nnumpy\n", "requirements.txt"))
    assert not looks_like_run_log(write(tmp_path, b"\x00" + PLAIN_LOG.encode(), "b.txt"))
    assert not looks_like_run_log(write(tmp_path, gzip.compress(b'{"traceEvents": []}'), "trace.json.gz"))
    assert not looks_like_run_log(write(tmp_path, b"\x1f\x8bnot really gzip", "c.txt.gz"))
    assert not looks_like_run_log(tmp_path / "absent.txt")
    assert not looks_like_run_log(tmp_path)


def test_sniff_finds_step_lines_past_the_first_chunk(tmp_path: Path) -> None:
    padding = "# padding\n" * (parse.SNIFF_CHUNK_BYTES // 10 + 7)
    assert looks_like_run_log(write(tmp_path, padding + RULE + "\n" + PLAIN_LOG))


def test_sniff_reads_the_whole_file_when_the_end_has_no_steps(tmp_path: Path) -> None:
    notes = "# trailing notes\n" * (parse.SNIFF_CHUNK_BYTES // 8)
    assert looks_like_run_log(write(tmp_path, PLAIN_LOG + notes, "steps-first.txt"))
    # The sniff reads the last 64 KiB first; a line it starts reading in the middle of is no step line.
    end = "step:1 is where this window starts, mid-line "
    end += "y" * (parse.SNIFF_CHUNK_BYTES // 16 - len(end) - 1) + "\n"
    assert not looks_like_run_log(write(tmp_path, "notes\n" * 1000 + "x" + end, "notes.txt"))


def make_record(root: Path) -> Path:
    write(root, MODERN_LOG, "1.txt")
    write(root, PLAIN_LOG, "2.txt")
    write(root, "# A record\n", "README.md")
    write(root, "| n | p |\n", "statistics.md")
    write(root, b"\x89PNG\r\n\x1a\n\x00\x00", "plot.png")
    write(root, "print('hi')\n", "train_gpt.py")
    write(root, MODERN_LOG, "this_pr/3.txt")
    write(root, gzip.compress(PLAIN_LOG.encode()), "this_pr/4.txt.gz")
    write(root, PLAIN_LOG, "baseline/5.log")
    write(root, gzip.compress(b"{}"), "traces/rank0-chrome-trace.json.gz")
    write(root, PLAIN_LOG, ".ipynb_checkpoints/6.txt")
    return root


def test_find_run_logs(tmp_path: Path) -> None:
    root = make_record(tmp_path / "record")
    found = [p.relative_to(root).as_posix() for p in find_run_logs(root)]
    assert found == ["1.txt", "2.txt", "baseline/5.log", "this_pr/3.txt", "this_pr/4.txt.gz"]
    assert find_run_logs(root / "README.md") == [root / "README.md"]  # named explicitly: parsing will say why


def test_split_groups(tmp_path: Path) -> None:
    root = make_record(tmp_path / "record")
    groups = split_groups(root)
    assert list(groups) == [".", "baseline", "this_pr"]
    assert [p.name for p in groups["."]] == ["1.txt", "2.txt"]
    assert [p.name for p in groups["this_pr"]] == ["3.txt", "4.txt.gz"]
    assert split_groups(root / "1.txt") == {".": [root / "1.txt"]}


def test_split_groups_nested_and_without_top_level_logs(tmp_path: Path) -> None:
    write(tmp_path, PLAIN_LOG, "this_pr_v3/seed1/a.txt")
    write(tmp_path, PLAIN_LOG, "this_pr_v3/b.txt")
    write(tmp_path, "notes\n", "README.md")
    assert {k: len(v) for k, v in split_groups(tmp_path).items()} == {"this_pr_v3": 1, "this_pr_v3/seed1": 1}


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        (lambda root: None, "no such file or folder"),
        (lambda root: root.mkdir(), "empty folder"),
        (lambda root: write(root, "# only notes\n", "README.md"), "no run logs among its 1 files"),
    ],
    ids=["missing", "empty", "no-logs"],
)
def test_discovery_bad_input(tmp_path: Path, setup: object, problem: str) -> None:
    root = tmp_path / "record"
    setup(root)  # type: ignore[operator]
    for call in (find_run_logs, split_groups):
        with pytest.raises(BadInput) as caught:
            call(root)
        assert str(caught.value).startswith(f"{root}: ") and problem in caught.value.problem


def test_step_lines_kept_as_columns_read_as_a_tuple(tmp_path: Path) -> None:
    """The parser keeps a log's step lines as columns (StepLines); they read as the tuple of StepLines the line
    reader gives: indexes, slices, iteration, reversal, equality, repr, and the columns the rules scan."""
    from speedrun.judge.runlog import StepLines

    path = tmp_path / "run.txt"
    path.write_text(MODERN_LOG, encoding="utf-8")
    run = parse_log(path)
    assert isinstance(run.steps, StepLines)
    whole = tuple(run.steps)
    assert run.steps == whole and whole == run.steps and repr(run.steps) == repr(whole)
    assert run.steps[0] == whole[0] and run.steps[-1] == whole[-1] and run.steps[1:3] == whole[1:3]
    assert list(reversed(run.steps)) == list(reversed(whole)) and len(run.steps) == len(whole)
    assert run.columns.step == tuple(s.step for s in whole)
    assert [whole[i] for i in run.columns.val_rows] == [s for s in whole if s.val_loss is not None]
    assert run.final == [s for s in whole if s.val_loss is not None][-1]
    train = [s for s in whole if s.val_loss is None]
    assert run.train_columns == ([s.step for s in train], [s.train_time_ms for s in train])
    assert [run.train_step(i) for i in range(len(train))] == train

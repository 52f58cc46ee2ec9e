"""`speedrun reproduce` on a CPU: a fake record log whose embedded script is a tiny torch program on two gloo
ranks, with a side file appended the way 2026 logs append `triton_kernels.py`; and every kind of bad input."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.judge.parse import parse_log
from speedrun.trainer.reproduce import (
    RecordCode,
    SourceFile,
    attention_stand_in,
    check_can_run,
    log_subfolders,
    missing_packages,
    override,
    read_record_code,
    split_side_files,
)
from speedrun.trainer.shards import write_synthetic

ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "250", "OMP_NUM_THREADS": "1"}
SIDE_FILE = "helper_ops.py"
HELPER = """import torch


def mean_square(x: torch.Tensor) -> torch.Tensor:
    return (x * x).mean()
"""
# The shape of a record script, at toy scale: reads itself and its side file for the log, hyperparameters in a
# class, torchrun's environment, a log written by rank 0 under logs/, step lines in the upstream format.
SCRIPT = """import glob
import os
import sys
import uuid

with open(sys.argv[0]) as f:
    code = f.read()
with open(os.path.join(os.path.dirname(sys.argv[0]), "helper_ops.py")) as f:
    code += f"\\n\\n{'-' * 40}\\n# helper_ops.py\\n{'-' * 40}\\n\\n" + f.read()

import torch
import torch.distributed as dist
from helper_ops import mean_square


class Hyperparameters:
    train_files = "data/fineweb10B/fineweb_train_*.bin"
    val_files = "data/fineweb10B/fineweb_val_*.bin"
    num_iterations = 1000  # number of iterations to run
    val_loss_every = 125  # every how many steps to evaluate val loss? 0 for only at the end


args = Hyperparameters()
dist.init_process_group("gloo")
rank, world_size = dist.get_rank(), dist.get_world_size()
assert 8 % world_size == 0, "world_size must be a divisor of 8"
assert glob.glob(args.train_files) and glob.glob(args.val_files), "no shards"
FAIL_NOW = bool(os.environ.get("FAIL_AFTER_ONE_RUN")) and os.path.exists(f"ran-once-{rank}")
open(f"ran-once-{rank}", "w").close()
logfile = f"logs/{uuid.uuid4()}.txt"


def print0(text):
    if rank == 0:
        os.makedirs("logs", exist_ok=True)
        with open(logfile, "a") as f:
            print(text, file=f)


print0(code)
print0("=" * 100)
print0(f"Running Python {sys.version}")
print0("nvidia-smi: not available")
print0("=" * 100)
torch.manual_seed(0)
w = torch.zeros(4, requires_grad=True)
target = torch.arange(4.0)
opt = torch.optim.SGD([w], lr=0.1)
for step in range(args.num_iterations + 1):
    if step == args.num_iterations or (args.val_loss_every > 0 and step % args.val_loss_every == 0):
        val = mean_square(w.detach() - target)
        dist.all_reduce(val)
        val_loss = val.item() / world_size
        print0(f"step:{step}/{args.num_iterations} val_loss:{val_loss:.4f} train_time:{step}ms step_avg:1.00ms")
    if step == args.num_iterations:
        break
    if FAIL_NOW and step == 1:
        raise SystemExit(3)
    loss = mean_square(w - target)
    loss.backward()
    dist.all_reduce(w.grad)
    opt.step()
    opt.zero_grad()
    print0(f"step:{step + 1}/{args.num_iterations} train_time:{step + 1}ms step_avg:1.00ms")
dist.barrier()  # gloo can abort at exit when one rank tears down while the other still talks to it
dist.destroy_process_group()
# and gloo's worker threads can still abort the interpreter's finalisation (SIGABRT, seldom, under load):
# every line is written and closed already, so leave without it
os._exit(0)
"""


def fake_record_log(folder: Path, script: str = SCRIPT, helper: str | None = HELPER) -> Path:
    """A published-looking run log: the script (and its side file after a dashed header), the environment, steps."""
    folder.mkdir(parents=True, exist_ok=True)
    source = script + (f"\n\n{'-' * 40}\n# {SIDE_FILE}\n{'-' * 40}\n\n{helper}" if helper is not None else "")
    lines = [source, "=" * 100, "Running Python 3.12.0", "nvidia-smi: not available", "=" * 100]
    lines += ["step:0/1000 val_loss:3.5000 train_time:0ms step_avg:nanms", "step:1/1000 train_time:1ms step_avg:1.00ms"]
    log = folder / "0c5449cc-0b01-4ecc-bec3-f46a09741d60.txt"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return log


def reproduce(*args: str | Path, env: dict[str, str] = ENV) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "speedrun", "reproduce", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def one_line_error(proc: subprocess.CompletedProcess[str], script_ran: bool = False) -> str:
    """Our one error line (a script that ran may have printed its own traceback before it)."""
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert script_ran or "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    write_synthetic(folder, train_shards=1, tokens_per_shard=2000, val_tokens=2000, seed=0, language_name="order2")
    return folder


# ------------------------------------------------------------------------------------ reading and editing


def test_the_script_and_its_side_file_come_out_as_published(tmp_path: Path) -> None:
    log = fake_record_log(tmp_path / "2025-01-01_Fake")
    code = read_record_code(log)
    assert [f.name for f in code.files] == ["train_gpt.py", SIDE_FILE]
    assert code.files[0].text == SCRIPT and code.files[1].text == HELPER
    assert code.main.sha256 == hashlib.sha256(SCRIPT.encode()).hexdigest()


def test_side_files_with_unsafe_names_stay_part_of_the_script() -> None:
    source = f"x = 1\n\n{'-' * 40}\n# ../escape.py\n{'-' * 40}\n\ny = 2\n"
    assert [f.name for f in split_side_files(source)] == ["train_gpt.py"]


def test_overrides_edit_the_hyperparameter_lines_and_list_each_edit() -> None:
    script = SourceFile("train_gpt.py", SCRIPT)
    edited, edits = override(script, steps=3, val_every=1, data_dir="../../shards")
    assert [str(e) for e in edits] == [
        """train_gpt.py:17 data: "data/fineweb10B/fineweb_train_*.bin" -> '../../shards/fineweb_train_*.bin'""",
        """train_gpt.py:18 data: "data/fineweb10B/fineweb_val_*.bin" -> '../../shards/fineweb_val_*.bin'""",
        "train_gpt.py:19 num_iterations: 1000 -> 3",
        "train_gpt.py:20 val_loss_every: 125 -> 1",
    ]
    lines = edited.text.splitlines()
    assert lines[18] == "    num_iterations = 3  # number of iterations to run"
    assert len(lines) == len(SCRIPT.splitlines())


def test_split_step_counts_are_edited_where_they_are_numbers() -> None:
    script = SourceFile(
        "train_gpt.py",
        "class H:\n    num_scheduled_iterations: int = 2275\n    num_extension_iterations: int = 40\n"
        "    num_iterations: int = num_scheduled_iterations + num_extension_iterations\n    val_loss_every: int = (\n"
        "        250  # every how many steps\n    )\n",
    )
    edited, edits = override(script, steps=120, val_every=40, data_dir=None)
    assert [str(e) for e in edits] == [
        "train_gpt.py:2 num_scheduled_iterations: 2275 -> 118",
        "train_gpt.py:3 num_extension_iterations: 40 -> 2",
        "train_gpt.py:6 val_loss_every: 250 -> 40",
    ]
    assert "num_iterations: int = num_scheduled_iterations + num_extension_iterations" in edited.text


def test_an_override_the_script_has_no_line_for_is_refused() -> None:
    with pytest.raises(BadInput, match="--val-every: the script has no `val_loss_every`"):
        override(SourceFile("train_gpt.py", "num_iterations = 5\n"), steps=2, val_every=1, data_dir=None)


def test_log_subfolders_named_by_run_ids_are_made_before_the_run() -> None:
    """Record 28 names its run f'final/{uuid}' and opens logs/final/<uuid>.txt having made only logs/."""
    source = (
        "import uuid\nclass Hyperparameters:\n    run_id = f'final/{uuid.uuid4()}'\n"
        "run_id: str = f'../up/{uuid.uuid4()}'\nother = f'x/{1}'\n"
    )
    code = RecordCode(Path("r.txt"), (SourceFile("train_gpt.py", source),))
    assert log_subfolders(code) == ["final"]  # never outside logs/


# ------------------------------------------------------------------------------------------------ bad input


def test_a_log_without_an_embedded_script_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "plain.txt"
    log.write_text("step:0/10 val_loss:4.0000 train_time:0ms step_avg:nanms\n", encoding="utf-8")
    assert "embeds no training script" in one_line_error(reproduce(log, "--out", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_missing_package_is_named_before_anything_runs(tmp_path: Path, data_dir: Path) -> None:
    script = SCRIPT.replace("import torch\n", "import torch\nfrom kernels_for_a_test_only import get_kernel\n", 1)
    log = fake_record_log(tmp_path / "rec", script)
    line = one_line_error(reproduce(log, "--data-dir", data_dir, "--out", tmp_path / "out", "--nproc-per-node", "2"))
    assert "`kernels_for_a_test_only`" in line and "train_gpt.py:12" in line and "not installed" in line
    assert not (tmp_path / "out").exists()


def test_an_import_under_an_if_or_a_try_is_optional(tmp_path: Path) -> None:
    optional = (
        "if run_evals:\n    from evals_for_a_test_only import hellaswag\n"
        "try:\n    import absent_for_a_test\nexcept ImportError:\n    pass\n"
    )
    needed = "def f():\n    import needed_for_a_test_only\n"
    code = RecordCode(tmp_path / "r.txt", (SourceFile("train_gpt.py", optional + needed),))
    assert missing_packages(code) == [("needed_for_a_test_only", "train_gpt.py", 8)]


def test_a_missing_flash_attention_points_at_the_stand_in(tmp_path: Path, data_dir: Path) -> None:
    script = SCRIPT.replace("import torch\n", "import torch\nfrom kernels import get_kernel\n", 1)
    code = RecordCode(tmp_path / "r.txt", (SourceFile("train_gpt.py", script), SourceFile(SIDE_FILE, HELPER)))
    if importlib.util.find_spec("kernels") is None:
        with pytest.raises(BadInput, match=r"`kernels` \(train_gpt.py:12\).*`--attention flex`"):
            check_can_run(code, nproc_per_node=2)
    check_can_run(code, nproc_per_node=2, provided=attention_stand_in())  # the stand-in provides it
    old = RecordCode(tmp_path / "r.txt", (SourceFile("train_gpt.py", "from flash_attn_interface import f\n"),))
    check_can_run(old, nproc_per_node=2, provided=attention_stand_in())


def test_a_record_with_its_own_file_of_a_stand_in_name_is_refused(tmp_path: Path) -> None:
    code = RecordCode(tmp_path / "r.txt", (SourceFile("train_gpt.py", "x = 1\n"), SourceFile("kernels.py", "y = 2\n")))
    with pytest.raises(BadInput, match=r"has its own kernels\.py"):
        check_can_run(code, nproc_per_node=1, provided=attention_stand_in())


def test_a_script_that_insists_on_8_processes_says_so(tmp_path: Path) -> None:
    code = RecordCode(Path("r.txt"), (SourceFile("train_gpt.py", "world_size = 2\nassert world_size == 8\n"),))
    with pytest.raises(BadInput, match=r"asserts world_size == 8 \(train_gpt.py:2\).*--nproc-per-node 8"):
        check_can_run(code, nproc_per_node=2)
    check_can_run(code, nproc_per_node=8)
    divides = RecordCode(Path("r.txt"), (SourceFile("train_gpt.py", "assert 8 % world_size == 0\n"),))
    with pytest.raises(BadInput, match="use 1, 2, 4, 8"):
        check_can_run(divides, nproc_per_node=3)


# ------------------------------------------------------------------------------------------ real runs


@pytest.mark.slow
def test_two_gloo_runs_collect_their_logs_and_print_record_edits_and_sha256(tmp_path: Path, data_dir: Path) -> None:
    log = fake_record_log(tmp_path / "2025-01-01_Fake")
    out = tmp_path / "baseline"
    args = ["--runs", "2", "--nproc-per-node", "2", "--steps", "3", "--val-every", "1", "--data-dir", data_dir]
    proc = reproduce(log.parent, *args, "--out", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = " ".join(proc.stdout.split())
    assert f"the script embedded in {log}" in text
    assert hashlib.sha256(SCRIPT.encode()).hexdigest() in text and hashlib.sha256(HELPER.encode()).hexdigest() in text
    assert "edit train_gpt.py:19 num_iterations: 1000 -> 3" in text and "val_loss_every: 125 -> 1" in text
    logs = sorted(out.glob("*.txt"))
    assert len(logs) == 2
    for new in logs:
        run = parse_log(new)
        assert [s.step for s in run.val_steps] == [0, 1, 2, 3]
        assert run.source is not None and "num_iterations = 3" in run.source and "# helper_ops.py" in run.source
    work = next((out / ".reproduce").iterdir())
    sums = (work / "SHA256SUMS").read_text()
    assert hashlib.sha256(HELPER.encode()).hexdigest() + "  helper_ops.py" in sums


FLEX_SCRIPT_LINES = """from kernels import get_kernel

interface = get_kernel("kernels-community/flash-attn3").flash_attn_interface
q = torch.randn(256, 2, 16)
cu = torch.tensor([0, 100, 256, 256], dtype=torch.int32)
y = interface.flash_attn_varlen_func(q, q, q, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=256,
                                     max_seqlen_k=256, causal=True, softmax_scale=0.1, window_size=(128, 0))
assert y.shape == q.shape and torch.isfinite(y).all()
"""


@pytest.mark.slow
def test_with_attention_flex_the_script_runs_with_the_stand_in_beside_it(tmp_path: Path, data_dir: Path) -> None:
    script = SCRIPT.replace(
        "from helper_ops import mean_square\n", "from helper_ops import mean_square\n" + FLEX_SCRIPT_LINES
    )
    log = fake_record_log(tmp_path / "rec", script)
    out = tmp_path / "baseline"
    args = ["--nproc-per-node", "2", "--steps", "2", "--val-every", "0", "--data-dir", data_dir, "--attention", "flex"]
    proc = reproduce(log, *args, "--out", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = " ".join(proc.stdout.split())
    stand_in, shim = attention_stand_in()
    assert "Flash Attention 3 replaced by speedrun's FlexAttention stand-in" in text
    assert f"flash_attn_interface.py sha256 {stand_in.sha256} written beside the script" in text
    assert f"kernels.py sha256 {shim.sha256}" in text
    (new,) = out.glob("*.txt")
    assert parse_log(new).final is not None
    work = next((out / ".reproduce").iterdir())
    assert f"{stand_in.sha256}  flash_attn_interface.py" in (work / "SHA256SUMS").read_text()


@pytest.mark.slow
def test_a_failing_run_keeps_the_finished_logs_and_sets_its_own_aside(tmp_path: Path, data_dir: Path) -> None:
    log = fake_record_log(tmp_path / "rec")
    out = tmp_path / "baseline"
    args = ["--runs", "2", "--nproc-per-node", "2", "--steps", "3", "--val-every", "0", "--data-dir", data_dir]
    line = one_line_error(reproduce(log, *args, "--out", out, env={**ENV, "FAIL_AFTER_ONE_RUN": "1"}), script_ran=True)
    assert "run 2 of 2 exited with code" in line and "1 finished log(s) kept" in line
    (finished,) = out.glob("*.txt")
    assert parse_log(finished).final is not None and parse_log(finished).final.step == 3
    (failed,) = out.glob("*.txt.failed")
    assert str(failed) in line

"""`speedrun judge` end to end on logs written here: exit codes, --json, --markdown, and every bad input."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

RULE = "=" * 100
GPU_ROW = "|   {i}  NVIDIA H100 80GB HBM3          On  |   00000000:0A:00.0 Off |                    0 |"
# A training source with a data loader the pipeline rule recognises (the names upstream scripts use).
SOURCE = """import torch

def _load_data_shard(file):
    return torch.from_file(str(file), False, 256, dtype=torch.int32)

def distributed_data_generator(pattern, batch_size, rank, world_size):
    while True:
        yield _load_data_shard(pattern)

model = torch.compile(model, dynamic=False)
"""
PRIOR_RECORD = """number = 85
time = "1.600 minutes"
date = 2026-06-01
description = "The record these tests measure their runs against"
contributors = ["@tester"]
logs = []
pull_requests = []
data_pipeline_sha256 = "{pipeline}"
code_sha256 = ["{code}"]
"""
PRIOR_CODE = f"{SOURCE}version = 'the prior record'\n"  # what a baseline of the prior record runs


@functools.cache
def judge_store() -> Path:
    """A records/ folder with the project's track files and one prior record per track (96 s), whose pinned
    data-pipeline hash is SOURCE's and whose pinned code is PRIOR_CODE: logs written here are then judged
    against a record they can beat, and a baseline of PRIOR_CODE runs its code."""
    from speedrun.judge.discover import code_hash
    from speedrun.judge.parse import parse_log
    from speedrun.judge.pipeline import data_pipeline_hash

    root = Path(tempfile.mkdtemp(prefix="speedrun-store-")) / "records"
    prior_log = root.parent / "prior.txt"
    prior_log.write_text(log_text(source=PRIOR_CODE), encoding="utf-8")
    for track in ("track_1_short", "track_2_medium"):
        (root / track / "2026-06-01_Prior").mkdir(parents=True)
        shutil.copy(ROOT / "records" / track / "track.toml", root / track / "track.toml")
        text = PRIOR_RECORD.format(pipeline=data_pipeline_hash(SOURCE), code=code_hash(parse_log(prior_log)))
        (root / track / "2026-06-01_Prior" / "record.toml").write_text(text, encoding="utf-8")
    return root


def log_text(
    loss: float = 3.275,
    time_ms: int = 90_000,
    steps: int = 1000,
    *,
    source: str = SOURCE,
    gpus: int = 8,
    seed: int = 0,
    truncate_at: int | None = None,
    model_dim: int | None = None,
) -> str:
    """A log in the modern upstream shape: source, `=` line, versions, nvidia-smi, `=` line, step lines."""
    if model_dim is not None:
        source += f"model = GPT(vocab_size=50304, num_layers=12, num_heads=6, model_dim={model_dim})\n"
    lines = [
        *source.rstrip("\n").split("\n"),
        RULE,
        "Running Python 3.12.0",
        "Running PyTorch 2.10.0 compiled for CUDA 12.8",
    ]
    lines += ["| NVIDIA-SMI 580.126.09             Driver Version: 580.126.09     CUDA Version: 13.0     |"]
    lines += [GPU_ROW.format(i=i) for i in range(gpus)]
    lines += [RULE]
    for step in range(steps + 1):
        if truncate_at is not None and step > truncate_at:
            break
        t = round(time_ms * step / steps)
        avg = f"{t / step:.2f}" if step else "nan"
        if step % 250 == 0:
            val = (
                loss if step == steps else 4.0 + (steps - step) / steps + seed / 1e3
            )  # runs differ as independent runs do
            lines.append(f"step:{step}/{steps} val_loss:{val:.4f} train_time:{t}ms step_avg:{avg}ms")
        elif step % 10 == 0:
            lines.append(f"step:{step}/{steps} train_time:{t}ms step_avg:{avg}ms")
    if truncate_at is None:
        lines.append("peak memory allocated: 30868 MiB reserved: 45200 MiB")
    return "\n".join(lines) + "\n"


def write_runs(folder: Path, losses: list[float], times: list[int] | None = None, **kwargs: object) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    times = times or [90_000 + 37 * i for i in range(len(losses))]
    paths = []
    for i, (loss, t) in enumerate(zip(losses, times, strict=True)):
        path = folder / f"run{i:02d}.txt"
        path.write_text(log_text(loss, t, seed=i, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
        paths.append(path)
    return paths


GOOD = [3.2770, 3.2775, 3.2768, 3.2781, 3.2772, 3.2779, 3.2766, 3.2774]
BAD = [3.2810, 3.2790, 3.2805, 3.2799]


def judge(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`speedrun judge ARGS`, against the test store unless ARGS name --records."""
    store = () if "--records" in map(str, args) else ("--records", judge_store())
    return subprocess.run(
        [sys.executable, "-m", "speedrun", "judge", *map(str, args), *map(str, store)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], name: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert name in message


def test_passing_folder_exits_0_and_json_has_the_documented_fields(tmp_path: Path) -> None:
    write_runs(tmp_path / "sub", GOOD)
    proc = judge(tmp_path / "sub", "--json", "--track", "small")
    assert proc.returncode == 0, proc.stderr
    (doc,) = json.loads(proc.stdout)
    assert doc["verdict"] == "pass" and doc["track"] == "track_1_short" and doc["track_reason"] == "--track"
    assert {"path", "runs", "summary", "checks"} <= set(doc)
    assert len(doc["runs"]) == 8
    assert set(doc["runs"][0]) >= {"file", "steps", "final_val_loss", "train_time_ms"}
    assert doc["runs"][0]["steps"] == 1000 and doc["runs"][0]["final_val_loss"] == 3.277
    summary = doc["summary"]
    assert summary["n"] == 8
    assert summary["p_value"] < 0.01
    assert summary["mean_train_time_s"] == pytest.approx(sum(90 + 0.037 * i for i in range(8)) / 8)
    for key in ("mean_val_loss", "std_val_loss", "median_train_time_s"):
        assert isinstance(summary[key], float)
    rules = {c["rule"]: c["status"] for c in doc["checks"]}
    assert rules["loss"] == "pass" and rules["timing"] == "pass" and rules["hardware"] == "pass"
    assert all(set(c) >= {"rule", "status", "detail"} for c in doc["checks"])


def test_failing_folder_exits_1_and_the_table_names_the_rule(tmp_path: Path) -> None:
    write_runs(tmp_path / "runs", BAD)
    proc = judge(tmp_path / "runs", "--track", "small")
    assert proc.returncode == 1, proc.stderr
    assert "FAIL" in proc.stdout and "loss" in proc.stdout
    assert "run00.txt:" in proc.stdout  # every run's result line is cited


def test_several_paths_are_judged_each_on_its_own(tmp_path: Path) -> None:
    write_runs(tmp_path / "good", GOOD)
    write_runs(tmp_path / "bad", BAD)
    proc = judge(tmp_path / "good", tmp_path / "bad", "--json", "--track", "small")
    assert proc.returncode == 1
    verdicts = [(Path(d["path"]).name, d["verdict"]) for d in json.loads(proc.stdout)]
    assert verdicts == [("good", "pass"), ("bad", "fail")]


def test_record_folder_is_judged_per_sub_folder_against_its_baseline(tmp_path: Path) -> None:
    record = tmp_path / "records" / "track_1_short" / "2030-01-01_Faster"
    write_runs(record / "baseline", GOOD, [91_000 + 50 * i for i in range(8)], source=PRIOR_CODE)
    write_runs(record / "this_pr", GOOD, [89_000 + 50 * i for i in range(8)])
    proc = judge(record, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (doc,) = json.loads(proc.stdout)
    assert doc["path"].endswith("this_pr") and doc["track_reason"] == "path"
    assert doc["baseline"]["path"].endswith("baseline")
    speed = next(c for c in doc["checks"] if c["rule"] == "speed")
    assert speed["status"] == "pass"
    assert speed["figures"]["speedup"] == pytest.approx(91.175 / 89.175, rel=1e-4)

    from speedrun.judge.judging import judge_path

    (alone,) = judge_path(record / "this_pr")  # a sub-folder judged on its own still finds the baseline beside it
    assert alone.baseline is not None and alone.baseline.path == record / "baseline"
    (explicit,) = judge_path(record, baseline=record / "baseline")  # and is not judged as a submission too
    assert explicit.path == record / "this_pr"


def test_explicit_baseline_option(tmp_path: Path) -> None:
    write_runs(tmp_path / "base", GOOD, [88_000 + 50 * i for i in range(8)])
    write_runs(tmp_path / "cand", GOOD, [89_000 + 50 * i for i in range(8)])
    proc = judge(tmp_path / "cand", "--baseline", tmp_path / "base", "--json", "--track", "small")
    assert proc.returncode == 1  # slower than its baseline
    (doc,) = json.loads(proc.stdout)
    assert next(c for c in doc["checks"] if c["rule"] == "speed")["status"] == "fail"


def test_track_from_model_size(tmp_path: Path) -> None:
    write_runs(tmp_path / "m", [2.915, 2.912, 2.914, 2.911], model_dim=1024)
    (doc,) = json.loads(judge(tmp_path / "m", "--json").stdout)
    assert doc["track"] == "track_2_medium" and doc["track_reason"].startswith("model size")


def test_markdown_states_the_target_of_the_records_folder_judged_against(tmp_path: Path) -> None:
    shutil.copytree(judge_store(), tmp_path / "records")
    track_toml = (ROOT / "records" / "track_1_short" / "track.toml").read_text(encoding="utf-8")
    (tmp_path / "records" / "track_1_short" / "track.toml").write_text(
        track_toml.replace("target_val_loss = 3.28", "target_val_loss = 3.3"), encoding="utf-8"
    )
    write_runs(tmp_path / "runs", GOOD)
    out = tmp_path / "statistics.md"
    proc = judge(tmp_path / "runs", "--track", "small", "--records", tmp_path / "records", "--markdown", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "p(val_loss < 3.3)" in out.read_text(encoding="utf-8")


def test_markdown_is_written_once_and_never_overwritten_without_force(tmp_path: Path) -> None:
    write_runs(tmp_path / "runs", GOOD)
    out = tmp_path / "statistics.md"
    assert judge(tmp_path / "runs", "--track", "small", "--markdown", out).returncode == 0
    text = out.read_text(encoding="utf-8")
    assert "p(val_loss < 3.28)" in text and "| run00.txt |" in text
    out.write_text("mine", encoding="utf-8")
    one_line_error(judge(tmp_path / "runs", "--track", "small", "--markdown", out), "statistics.md")
    assert out.read_text(encoding="utf-8") == "mine"
    assert judge(tmp_path / "runs", "--track", "small", "--markdown", out, "--force").returncode == 0
    assert out.read_text(encoding="utf-8") == text


def test_non_finite_loss_is_a_failed_check_naming_the_line(tmp_path: Path) -> None:
    paths = write_runs(tmp_path / "runs", GOOD[:4])
    paths[2].write_text(log_text().replace("val_loss:3.2750", "val_loss:nan"), encoding="utf-8")
    proc = judge(tmp_path / "runs", "--track", "small", "--json")
    assert proc.returncode == 1
    (doc,) = json.loads(proc.stdout)
    loss = next(c for c in doc["checks"] if c["rule"] == "loss")
    assert loss["status"] == "fail" and "run02.txt:" in loss["detail"]


def test_hostile_source_is_never_executed(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    hostile = (
        "import os\n"
        f"os.system('touch {canary}')\n"
        f"open({str(canary)!r}, 'w').write('ran')\n"
        "__import__('shutil').rmtree('/')\n"
        "model = torch.compile(model, dynamic=False)\n"
    )
    folder = tmp_path / "runs"
    write_runs(folder, GOOD, source=hostile)
    proc = judge(folder, "--track", "small", "--json")
    assert proc.returncode in (0, 1, 4), proc.stderr
    assert not canary.exists()


@pytest.mark.parametrize("case", ["missing", "empty_folder", "no_logs", "truncated", "non_utf8", "binary"])
def test_bad_input_is_one_line_naming_the_file_and_exit_2(tmp_path: Path, case: str) -> None:
    if case == "missing":
        target, name = tmp_path / "nowhere", "nowhere"
    elif case == "empty_folder":
        target = tmp_path / "empty"
        target.mkdir()
        name = "empty"
    elif case == "no_logs":
        target = tmp_path / "notes"
        target.mkdir()
        (target / "README.md").write_text("# notes\n")
        (target / "statistics.md").write_text("p=0.001\n")
        (target / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
        name = "notes"
    elif case == "truncated":
        target = tmp_path / "cut.txt"
        target.write_text(log_text().split("step:0/")[0] + "step:1/1000 train_time:90ms step_avg:90.00ms\n")
        name = "cut.txt"
    elif case == "non_utf8":
        target = tmp_path / "latin.txt"
        target.write_bytes(b"\xff\xfe\xfa garbage \xc3\x28\n" * 3)
        name = "latin.txt"
    else:
        target = tmp_path / "image.txt"
        target.write_bytes(bytes(range(256)) * 64)
        name = "image.txt"
    one_line_error(judge(target, "--track", "small"), name)


def test_log_with_undecodable_bytes_in_its_source_still_parses(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    paths = write_runs(folder, GOOD)
    data = paths[0].read_bytes()
    paths[0].write_bytes(b"# caf\xe9 \xff\n" + data)
    proc = judge(folder, "--track", "small", "--json")
    # A program prints its source as UTF-8, so these bytes are an edit: the source is read (bytes replaced),
    # the figures judged, and the compiler check cannot be confirmed.
    assert proc.returncode == 4, proc.stderr
    (group,) = json.loads(proc.stdout)
    flags = next(c for c in group["checks"] if c["rule"] == "compile flags")
    assert flags["status"] == "warn" and "not valid UTF-8" in flags["detail"]


def test_a_100_mb_line_is_handled(tmp_path: Path) -> None:
    target = tmp_path / "huge.txt"
    with target.open("w", encoding="utf-8") as f:
        f.write("x = '")
        chunk = "a" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write("'\n")
        f.write(log_text(source="import torch\n"))
    proc = judge(target, "--track", "small", "--json")
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (1, 2, 4)  # one run cannot pass the loss rule; or refused as bad input
    if proc.returncode == 2:
        one_line_error(proc, "huge.txt")


def test_unknown_track_and_missing_baseline_are_bad_input(tmp_path: Path) -> None:
    write_runs(tmp_path / "runs", GOOD)
    one_line_error(judge(tmp_path / "runs", "--track", "large"), "large")
    one_line_error(judge(tmp_path / "runs", "--baseline", tmp_path / "nope"), "nope")
    one_line_error(judge(tmp_path / "runs", "--records", tmp_path / "no-records"), "no-records")


# --- property-based: whatever the bytes, the judge answers with a verdict or a clean BadInput -------------------

MUTATIONS = st.sampled_from(["drop", "duplicate", "truncate", "garbage", "number", "swap"])


def _mutate(text: str, ops: list[tuple[str, int, bytes]]) -> bytes:
    lines = text.encode().split(b"\n")
    for op, where, junk in ops:
        i = where % max(1, len(lines))
        if op == "drop" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "truncate":
            lines = lines[:i]
        elif op == "garbage":
            lines.insert(i, junk)
        elif op == "number" and lines:
            lines[i] = re.sub(rb"\d", (junk[:1] or b"9").replace(b"\\", b"/"), lines[i], count=1)
        elif op == "swap" and len(lines) > 1:
            lines[i], lines[i - 1] = lines[i - 1], lines[i]
    return b"\n".join(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(st.tuples(MUTATIONS, st.integers(0, 10_000), st.binary(max_size=40)), min_size=1, max_size=6),
    loss=st.floats(allow_nan=True, allow_infinity=True),
)
def test_judging_mutated_logs_gives_a_verdict_or_bad_input(tmp_path: Path, ops: list, loss: float) -> None:
    from speedrun.errors import BadInput
    from speedrun.judge.judging import judge_path
    from speedrun.judge.report import to_json

    folder = tmp_path / f"case{abs(hash((tuple(ops), loss))) % 10**9}"
    folder.mkdir()
    text = log_text(steps=200).replace("val_loss:3.2750", f"val_loss:{loss}")
    (folder / "a.txt").write_bytes(_mutate(text, ops))
    (folder / "b.txt").write_text(log_text(3.27, steps=200, seed=1), encoding="utf-8")
    try:
        judgements = judge_path(folder, track="small")
    except BadInput as e:
        assert "\n" not in str(e)
        return
    json.dumps(to_json(judgements), allow_nan=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096))
def test_judging_random_bytes_gives_a_verdict_or_bad_input(tmp_path: Path, data: bytes) -> None:
    from speedrun.errors import BadInput
    from speedrun.judge.judging import judge_path

    target = tmp_path / "random.txt"
    target.write_bytes(data)
    try:
        judge_path(target, track="small")
    except BadInput as e:
        assert "random.txt" in str(e)


# --- our own trainer's logs -----------------------------------------------------------------------------------

TRAINER = Path(__file__).resolve().parents[1] / "speedrun" / "trainer"


def trainer_log_text(loss: float, seed: int, data_source: str, time_ms: int = 90_000) -> str:
    """A log as `speedrun train` writes it: sectioned sources, environment, config and seed lines, steps."""
    head = (
        "# >>> speedrun/trainer/model.py\nimport torch\nmodel = torch.compile(model, dynamic=False)\n"
        f"# >>> speedrun/trainer/data.py\n{data_source.rstrip()}\n"
    )
    config = json.dumps({"track": "track_2_medium", "model": {"model_dim": 1024}, "val_tokens": 10_485_760})
    steps = log_text(loss, time_ms, seed=seed, source="x = 1\n").split(RULE)[-1].lstrip("\n")
    train = [f"fineweb_train_{i:06d}.bin" for i in (1, 2)]
    data = {
        "version": 1,
        "synthetic": None,
        "train": [{"file": name, "tokens": 100_000_000, "synthetic": None} for name in train],
        "val": [{"file": "fineweb_val_000000.bin", "tokens": 100_000_000, "synthetic": None}],
    }
    return (
        f"{head}{RULE}\nRunning Python 3.12.0\nnvidia-smi: not available (device cpu)\n{RULE}\n"
        f"config: {config}\ndata_pipeline_sha256: {'0' * 64}\ntrain_files: {','.join(train)}\n"
        f"val_files: fineweb_val_000000.bin\ndata: {json.dumps(data)}\nseed: {seed}\n{steps}"
    )


def test_trainer_logs_track_from_config_and_canonical_data_pipeline(tmp_path: Path) -> None:
    from speedrun.judge.judging import judge_path

    data = (TRAINER / "data.py").read_text(encoding="utf-8")
    folder = tmp_path / "ours"
    folder.mkdir()
    for i, loss in enumerate([2.915, 2.912, 2.914, 2.911]):
        (folder / f"r{i}.txt").write_text(trainer_log_text(loss, i, data), encoding="utf-8")
    (j,) = judge_path(folder)
    assert j.track == "track_2_medium" and j.track_reason.startswith("config line")
    checks = {c.rule: c for c in j.checks}
    assert checks["data pipeline"].status.value == "pass", checks["data pipeline"].detail
    assert "does not trust" in checks["data pipeline"].detail  # the printed hash is wrong and ignored
    data_line = str(checks["data pipeline"].evidence[0])
    assert data_line.endswith(":5")  # the first line of the data.py section in the log
    assert checks["hardware"].status.value == "warn"  # a CPU run: not 8x H100

    edited = data.replace("def ", "def _unused():\n    return 0\n\n\ndef ", 1)
    (folder / "r0.txt").write_text(trainer_log_text(2.915, 0, edited), encoding="utf-8")
    (j,) = judge_path(folder)
    assert {c.rule: c.status.value for c in j.checks}["data pipeline"] == "warn"  # runs disagree
    for path in folder.iterdir():
        path.write_text(trainer_log_text(2.915 - int(path.stem[1:]) / 1000, 0, edited), encoding="utf-8")
    (j,) = judge_path(folder)
    assert {c.rule: c.status.value for c in j.checks}["data pipeline"] == "fail"


def test_source_lines_are_cited_as_lines_of_the_log_file(tmp_path: Path) -> None:
    from speedrun.judge.judging import judge_path

    source = "import torch\nimport torch._inductor.config as config\nconfig.max_autotune = True\n"
    text = log_text(source=source)
    (tmp_path / "plain.txt").write_text(text, encoding="utf-8")
    (tmp_path / "opened.txt").write_text(f"{RULE}\n{text}", encoding="utf-8")  # late-2024 logs open with `=`
    for name, line in (("plain.txt", 3), ("opened.txt", 4)):
        (j,) = judge_path(tmp_path / name, track="small")
        flags = next(c for c in j.checks if c.rule == "compile flags")
        assert flags.status.value == "fail"
        assert [str(e) for e in flags.evidence] == [f"{tmp_path / name}:{line}"]


# --- verdicts and exit codes --------------------------------------------------------------------------------------


def test_review_exits_4_and_says_what_could_not_be_confirmed(tmp_path: Path) -> None:
    write_runs(tmp_path / "one", [3.2750])  # one run below the target: no p-value, nothing fails
    proc = judge(tmp_path / "one", "--track", "small", "--json")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    (doc,) = json.loads(proc.stdout)
    loss = next(c for c in doc["checks"] if c["rule_id"] == "SR003")
    assert doc["verdict"] == "review" and loss["status"] == "unchecked"
    assert "REVIEW" in judge(tmp_path / "one", "--track", "small").stdout


def test_a_run_without_its_final_val_line_is_listed_left_out_and_reviewed(tmp_path: Path) -> None:
    paths = write_runs(tmp_path / "runs", GOOD)
    paths[3].write_text(log_text(3.30, truncate_at=900), encoding="utf-8")  # ends at step 900 of 1000
    proc = judge(tmp_path / "runs", "--track", "small", "--json")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    (doc,) = json.loads(proc.stdout)
    assert [Path(r["file"]).name for r in doc["incomplete"]] == ["run03.txt"]
    assert "last val loss at step 750" in doc["incomplete"][0]["why"]
    assert doc["summary"]["n"] == 7 and "run03.txt" not in [Path(r["file"]).name for r in doc["runs"]]
    complete = next(c for c in doc["checks"] if c["rule_id"] == "SR010")
    assert complete["status"] == "warn" and "run03.txt" in complete["detail"]


def test_a_truncated_log_judged_alone_or_a_group_without_a_complete_run_is_bad_input(tmp_path: Path) -> None:
    cut = tmp_path / "cut.txt"
    cut.write_text(log_text(truncate_at=900), encoding="utf-8")
    proc = judge(cut, "--track", "small")
    one_line_error(proc, "cut.txt")
    assert "truncated log" in proc.stderr
    folder = tmp_path / "all-cut"
    folder.mkdir()
    shutil.copy(cut, folder / "a.txt")
    proc = judge(folder, "--track", "small")
    one_line_error(proc, "a.txt")
    assert "truncated log" in proc.stderr


def test_several_paths_one_bad_the_others_are_still_judged_and_reported(tmp_path: Path) -> None:
    write_runs(tmp_path / "good", GOOD)
    proc = judge(tmp_path / "good", tmp_path / "missing", "--json", "--track", "small")
    assert proc.returncode == 2
    good, bad = json.loads(proc.stdout)
    assert good["verdict"] == "pass" and bad["path"].endswith("missing") and "no such file" in bad["bad_input"]
    assert len(proc.stderr.strip().splitlines()) == 1 and "missing" in proc.stderr


@pytest.mark.parametrize(("losses", "code"), [([GOOD, [3.2750]], 4), ([[3.2750], BAD], 1), ([GOOD, GOOD], 0)])
def test_several_paths_exit_with_the_worst_verdict(tmp_path: Path, losses: list[list[float]], code: int) -> None:
    for i, values in enumerate(losses):
        write_runs(tmp_path / f"p{i}", values)
    assert judge(tmp_path / "p0", tmp_path / "p1", "--track", "small").returncode == code


def test_a_folder_with_logs_of_both_tracks_is_an_error_naming_both(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_runs(folder, GOOD[:3], model_dim=768)
    (folder / "medium.txt").write_text(log_text(2.91, model_dim=1024), encoding="utf-8")
    proc = judge(folder)
    one_line_error(proc, "mixed")
    assert "track_1_short (run00.txt, model size (model_dim 768))" in proc.stderr
    assert "track_2_medium (medium.txt, model size (model_dim 1024))" in proc.stderr


def test_as_of_judges_by_the_rules_of_that_day(tmp_path: Path) -> None:
    write_runs(tmp_path / "runs", [3.2750])
    (doc,) = json.loads(judge(tmp_path / "runs", "--track", "small", "--json", "--as-of", "2024-11-01").stdout)
    assert doc["rules_as_of"] == {"date": "2024-11-01", "source": "--as-of"}
    statuses = {c["rule_id"]: c["status"] for c in doc["checks"]}
    assert statuses["SR002"] == "pass" and statuses["SR003"] == "n/a"  # one run was enough before 2024-12-04
    one_line_error(judge(tmp_path / "runs", "--as-of", "yesterday"), "yesterday")


def test_help_documents_every_exit_code() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "speedrun", "judge", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    text = " ".join(proc.stdout.split())
    for words in ("0 pass", "1 a rule fails", "2 bad input", "3 an internal error", "4 review"):
        assert words in text, words

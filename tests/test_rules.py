"""Each rule on hand-built runs: pass, fail, warn, unchecked and n/a, with the lines it cites; the history of the
rules (which are in force on which day) and the README table generated from them."""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from speedrun.judge.compile_flags import find_compile_flags, whole_source_flags
from speedrun.judge.notes import StatedStatistic
from speedrun.judge.pipeline import data_pipeline_hash, source_hash
from speedrun.judge.rules import (
    REGISTRY,
    PriorRecord,
    RuleInput,
    apply_rules,
    check_compile_flags,
    check_complete_runs,
    check_data_pipeline,
    check_hardware,
    check_independence,
    check_loss,
    check_mean_loss,
    check_recipe,
    check_speed,
    check_timing,
    check_timing_with_grace,
    independent_runs,
    rule_table,
)
from speedrun.judge.runlog import Evidence, GpuInfo, RunLog, StepLine
from speedrun.judge.verdict import Check, Status
from speedrun.tracks import Track, load_track

ROOT = Path(__file__).resolve().parents[1]
SMALL = load_track("small")
MEDIUM = load_track("medium")
H100X8 = GpuInfo(names=("NVIDIA H100 80GB HBM3",) * 8, line=5)

LOADER = '''
def _load_data_shard(file):
    """Read one shard."""
    header = torch.from_file(str(file), False, 256, dtype=torch.int32)
    return header

def distributed_data_generator(filename_pattern, batch_size, rank, world_size):
    files = sorted(Path.cwd().glob(filename_pattern))
    while True:
        yield files
'''
SOURCE = "import torch\n" + LOADER + "\nmodel = torch.compile(model, dynamic=False, fullgraph=True)\n"
SOURCE_SHA256 = hashlib.sha256(SOURCE.encode()).hexdigest()  # what a record.toml pins as the code of such runs
# The pre-record-21 scripts' untimed grace period: the clock restarts at step 10.
GRACE_CODE = "for step in range(100):\n    if step == 10:\n        training_time_ms = 0\n"


def make_run(
    name: str = "a.txt",
    loss: float = 3.275,
    time_ms: float = 90_000.0,
    steps: int = 1500,
    *,
    source: str | None = SOURCE,
    gpus: GpuInfo | None = H100X8,
    seed: int | None = None,
    val_every: int = 500,
    grace: int = 0,
    wobble: float | None = None,
) -> RunLog:
    """A run whose step lines are consistent: train_time grows linearly and step_avg = train_time / step.

    Runs of different names get different val-loss trajectories unless `wobble` is given.
    """
    if wobble is None:
        wobble = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 997 / 1e3  # 0.001 apart at least
    lines = []
    line = 100
    for step in range(0, steps + 1, 50):
        t = time_ms * max(step - grace, 0) / (steps - grace)
        avg = t / (step - grace) if step > grace else math.nan
        val = None
        if step % val_every == 0 or step == steps:
            val = loss if step == steps else 4.0 + (steps - step) / steps + wobble
        lines.append(StepLine(step, steps, line, val_loss=val, train_time_ms=round(t), step_avg_ms=round(avg, 2)))
        line += 1
    digest = hashlib.sha256(f"{name}{loss}{time_ms}{wobble}".encode()).hexdigest()
    return RunLog(
        path=Path(name),
        format="speedrun",
        sha256=digest,
        steps=tuple(lines),
        source=source,
        source_lines=source.count("\n") if source else 0,
        gpus=gpus,
        seed=seed,
        seed_line=60 if seed is not None else 0,
    )


FINEWEB_TRAIN = [f"fineweb_train_{i:06d}.bin" for i in range(1, 9)]


def ours(
    run: RunLog,
    *,
    synthetic: str | None = None,
    train_tokens: int = 100_000_000,
    val_tokens: int = 100_000_000,
    **config: object,
) -> RunLog:
    """The run as our trainer logs it: its config, file and data lines, FineWeb's shards unless told otherwise."""
    train = [{"file": name, "tokens": train_tokens, "synthetic": synthetic} for name in FINEWEB_TRAIN]
    val = [{"file": "fineweb_val_000000.bin", "tokens": val_tokens, "synthetic": synthetic}]
    data = {"version": 1, "synthetic": synthetic, "train": train, "val": val}
    settings = {"track": "track_1_short", "preset": None, "num_iterations": 1695, "val_tokens": 10_485_760, **config}
    return replace(
        run,
        config=settings,
        config_line=50,
        train_files=",".join(FINEWEB_TRAIN),
        train_files_line=52,
        val_files="fineweb_val_000000.bin",
        val_files_line=53,
        data=data,
        data_line=54,
    )


def edit_step(step: StepLine, **changes: object) -> StepLine:
    """A copy of a step line with some fields changed."""
    return step._replace(**changes)  # type: ignore[arg-type]


def rule_input(runs: list[RunLog], track: Track = SMALL, **kwargs: Any) -> RuleInput:
    runs_t = tuple(runs)
    return RuleInput(track=track, runs=runs_t, independent=independent_runs(runs_t), **kwargs)


def spread(n: int, mean: float, std: float = 0.001) -> list[float]:
    return [mean + std * (i - (n - 1) / 2) / max(1, (n - 1) / 2) for i in range(n)]


# --- loss ------------------------------------------------------------------------------------------------------


def test_loss_passes_with_enough_runs_below_target() -> None:
    runs = [make_run(f"r{i}.txt", v) for i, v in enumerate(spread(8, 3.2770))]
    check = check_loss(rule_input(runs))
    assert check.status is Status.PASS
    assert check.figures["n"] == 8 and check.figures["p_value"] < 0.01
    assert str(check.evidence[0]) == f"r0.txt:{runs[0].steps[-1].line}"


def test_loss_fails_above_target_and_says_no_number_of_runs_helps() -> None:
    runs = [make_run(f"r{i}.txt", v) for i, v in enumerate(spread(5, 3.2810))]
    check = check_loss(rule_input(runs))
    assert check.status is Status.FAIL
    assert "no number of runs" in check.detail


def test_loss_fails_with_too_few_runs_and_says_how_many_are_needed() -> None:
    runs = [make_run(f"r{i}.txt", v) for i, v in enumerate(spread(3, 3.2795, 0.001))]
    check = check_loss(rule_input(runs))
    assert check.status is Status.FAIL
    assert check.figures["runs_needed"] > 3
    assert f"{check.figures['runs_needed']} runs needed" in check.detail


def test_one_run_below_the_target_cannot_be_tested_and_one_above_fails() -> None:
    below = check_loss(rule_input([make_run(loss=3.1)]))
    assert below.status is Status.UNCHECKED and "one run cannot give a p-value" in below.detail
    assert check_loss(rule_input([make_run(loss=3.29)])).status is Status.FAIL


def test_statistics_stated_in_the_notes_ask_for_a_review_and_are_cited() -> None:
    stated = (StatedStatistic(0.0003, "=", Evidence(Path("README.md"), 12)),)
    runs = [make_run(f"r{i}.txt", v) for i, v in enumerate(spread(2, 3.2790, 0.002))]
    check = check_loss(rule_input(runs, stated=stated))
    assert check.status is Status.WARN
    assert "p=0.0003 (README.md:12)" in check.detail and "README.md:12" in map(str, check.evidence)
    not_significant = (StatedStatistic(0.2, "=", Evidence(Path("README.md"), 3)),)
    assert check_loss(rule_input(runs, stated=not_significant)).status is Status.FAIL
    passing = [make_run(f"r{i}.txt", v) for i, v in enumerate(spread(8, 3.2770))]
    assert check_loss(rule_input(passing, stated=stated)).status is Status.PASS  # the logs suffice


def test_loss_compares_with_the_baseline_for_a_systems_only_waiver() -> None:
    runs = [make_run(f"r{i}.txt", v) for i, v in enumerate(spread(4, 3.2785))]
    base = tuple(make_run(f"b{i}.txt", v) for i, v in enumerate(spread(4, 3.2786)))
    check = check_loss(rule_input(runs, baseline=base))
    assert check.figures["baseline_loss_difference"] == pytest.approx(-0.0001)
    assert check.figures["baseline_loss_welch_p"] > 0.5
    assert "baseline_loss_welch_p" not in check_loss(rule_input(runs)).figures


def test_mean_loss_before_the_statistical_requirement() -> None:
    assert check_mean_loss(rule_input([make_run(loss=3.2785)])).status is Status.PASS
    above = check_mean_loss(rule_input([make_run("a.txt", 3.2790), make_run("b.txt", 3.2830)]))
    assert above.status is Status.FAIL and "mean=3.2810" in above.detail


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_loss_fails_on_a_non_finite_loss_and_cites_its_line(bad: float) -> None:
    runs = [make_run("ok.txt", 3.27), make_run("ok2.txt", 3.271), make_run("diverged.txt", bad)]
    check = check_loss(rule_input(runs))
    assert check.status is Status.FAIL
    assert "diverged.txt:" in check.detail


def test_medium_track_uses_its_own_target() -> None:
    runs = [make_run(f"r{i}.txt", v) for i, v in enumerate(spread(8, 2.915))]
    assert check_loss(rule_input(runs, MEDIUM)).status is Status.PASS
    assert check_loss(rule_input(runs, SMALL)).status is Status.PASS
    runs = [make_run(f"r{i}.txt", v) for i, v in enumerate(spread(8, 3.0))]
    assert check_loss(rule_input(runs, MEDIUM)).status is Status.FAIL


# --- timing ----------------------------------------------------------------------------------------------------


def test_timing_passes_and_reports_seconds() -> None:
    runs = [make_run("a.txt", time_ms=90_000), make_run("b.txt", time_ms=92_000)]
    check = check_timing(rule_input(runs))
    assert check.status is Status.PASS, check.detail
    assert check.figures["mean_s"] == pytest.approx(91.0)
    assert check.figures["min_s"] == 90.0 and check.figures["max_s"] == 92.0


def test_timing_accepts_the_pre_2025_grace_steps() -> None:
    run = make_run(grace=10, source=SOURCE + GRACE_CODE)
    # In that era the clock ran through the untimed grace steps and restarted after them.
    warmup = tuple(
        StepLine(step, 1500, 90 + step, train_time_ms=30_000.0 + step, step_avg_ms=math.nan) for step in (1, 5, 10)
    )
    run = replace(run, steps=(run.steps[0], *warmup, *run.steps[1:]))
    check = check_timing_with_grace(rule_input([run]))
    assert check.status is Status.PASS, check.detail
    assert check.rule_id == "SR006"


def test_the_grace_steps_are_accepted_only_from_code_that_has_them() -> None:
    check = check_timing_with_grace(rule_input([make_run(grace=10)]))
    assert check.status is Status.FAIL and "the embedded code has no untimed grace steps" in check.detail
    unseen = check_timing_with_grace(rule_input([make_run(grace=10, source=None)]))
    assert unseen.status is Status.FAIL and "no embedded code shows the grace steps" in unseen.detail


def test_after_record_21_the_grace_steps_fail_timing() -> None:
    check = check_timing(rule_input([make_run(grace=10)]))
    assert check.status is Status.FAIL and "untimed grace steps, dropped on 2025-02-01" in check.detail
    assert check_timing(rule_input([make_run()])).status is Status.PASS


def test_timing_fails_when_step_avg_disagrees() -> None:
    run = make_run()
    steps = list(run.steps)
    last = steps[-1]
    steps[-1] = edit_step(last, step_avg_ms=(last.step_avg_ms or 0) * 0.9)
    check = check_timing(rule_input([replace(run, steps=tuple(steps))]))
    assert check.status is Status.FAIL
    assert f"a.txt:{last.line}" in check.detail


def test_timing_fails_when_time_goes_backwards() -> None:
    run = make_run()
    steps = list(run.steps)
    steps[5] = edit_step(steps[5], train_time_ms=1.0)
    check = check_timing(rule_input([replace(run, steps=tuple(steps))]))
    assert check.status is Status.FAIL
    assert "backwards" in check.detail and f"a.txt:{steps[5].line}" in check.detail


def test_a_run_that_ends_before_its_final_val_line_is_listed_and_asks_for_review() -> None:
    run = make_run("cut.txt", steps=1500)
    cut = tuple(s for s in run.steps if s.step <= 1450)
    cut = (*cut[:-1], edit_step(cut[-1], val_loss=None))
    whole = [make_run(f"r{i}.txt") for i in range(3)]
    check = check_complete_runs(rule_input(whole, incomplete=(replace(run, steps=cut),)))
    assert check.status is Status.WARN
    assert "1 of 4 runs" in check.detail and "last val loss at step 1000" in check.detail
    assert f"cut.txt:{cut[-1].line}" in check.detail
    assert check_complete_runs(rule_input(whole)).status is Status.PASS


def test_timing_unchecked_without_train_time() -> None:
    run = make_run()
    run = replace(run, steps=tuple(edit_step(s, train_time_ms=None, step_avg_ms=None) for s in run.steps))
    assert check_timing(rule_input([run])).status is Status.UNCHECKED


# --- speed -----------------------------------------------------------------------------------------------------


def test_speed_against_a_baseline_reports_welch_speedup_and_normalised_time() -> None:
    candidate = [make_run(f"c{i}.txt", time_ms=t) for i, t in enumerate([84_000, 84_100, 84_200, 84_050])]
    baseline = [make_run(f"b{i}.txt", time_ms=t) for i, t in enumerate([85_300, 85_400, 85_500, 85_350])]
    prior = PriorRecord(number=82, time_seconds=81.18, label="record 82", code_sha256=(SOURCE_SHA256,))
    check = check_speed(rule_input(candidate, baseline=tuple(baseline), prior=prior))
    assert check.status is Status.PASS, check.detail
    assert check.figures["speedup"] == pytest.approx(85.3875 / 84.0875)
    assert check.figures["normalised_time_s"] == pytest.approx(81.18 * 84.0875 / 85.3875)
    assert check.figures["time_welch_p"] < 0.01


def test_speed_fails_when_slower_than_the_baseline() -> None:
    candidate = [make_run(f"c{i}.txt", time_ms=t) for i, t in enumerate([86_000, 86_100])]
    baseline = [make_run(f"b{i}.txt", time_ms=t) for i, t in enumerate([85_300, 85_400])]
    assert check_speed(rule_input(candidate, baseline=tuple(baseline))).status is Status.FAIL


def test_speed_warns_when_faster_but_not_significantly() -> None:
    candidate = [make_run(f"c{i}.txt", time_ms=t) for i, t in enumerate([85_000, 86_000])]
    baseline = [make_run(f"b{i}.txt", time_ms=t) for i, t in enumerate([84_900, 86_300])]
    assert check_speed(rule_input(candidate, baseline=tuple(baseline))).status is Status.WARN


def test_speed_without_baseline_compares_with_the_prior_record() -> None:
    runs = [make_run(time_ms=80_000)]
    assert check_speed(rule_input(runs, prior=PriorRecord(83, 81.0, "record 83"))).status is Status.PASS
    slower = check_speed(rule_input(runs, prior=PriorRecord(83, 79.0, "record 83")))
    assert slower.status is Status.WARN and "--baseline" in slower.detail
    assert check_speed(rule_input(runs, prior_note="no store")).status is Status.UNCHECKED
    assert check_speed(rule_input(runs, first_of_track=True)).status is Status.NOT_APPLICABLE
    retiming = check_speed(rule_input(runs, retimes=21, prior=PriorRecord(21, 70.0, "record 21")))
    assert retiming.status is Status.NOT_APPLICABLE and "re-timing of record 21" in retiming.detail


def test_speed_with_one_baseline_run_falls_back_on_the_published_time() -> None:
    candidate = [make_run(f"c{i}.txt", time_ms=t) for i, t in enumerate([84_000, 84_100])]
    baseline = (make_run("b.txt", time_ms=85_300),)
    prior = PriorRecord(82, 84.5, "record 82", code_sha256=(SOURCE_SHA256,))
    assert check_speed(rule_input(candidate, baseline=baseline, prior=prior)).status is Status.PASS
    slow_prior = PriorRecord(82, 83.0, "record 82", code_sha256=(SOURCE_SHA256,))
    assert check_speed(rule_input(candidate, baseline=baseline, prior=slow_prior)).status is Status.WARN


# --- compile flags ---------------------------------------------------------------------------------------------


def test_compile_flags_clean_source_passes() -> None:
    assert check_compile_flags(rule_input([make_run()])).status is Status.PASS


@pytest.mark.parametrize(
    ("snippet", "flag"),
    [
        (
            "import torch._inductor.config as config\nconfig.coordinate_descent_tuning = True\n",
            "coordinate_descent_tuning",
        ),
        ("torch._inductor.config.max_autotune = True\n", "max_autotune"),
        ("from torch._inductor import config as ic\nic.triton.cudagraphs = True\n", "triton"),
        ("model = torch.compile(model, mode='max-autotune')\n", "mode=max-autotune"),
        ("model = torch.compile(model, options={'shape_padding': True})\n", "shape_padding"),
        ("@torch.compile(mode='reduce-overhead', fullgraph=True)\ndef f(x):\n    return x\n", "mode=reduce-overhead"),
        ("def setup():\n    setattr(torch._inductor.config, 'epilogue_fusion', False)\n", "epilogue_fusion"),
        ("with torch._inductor.config.patch(force_fuse_int_mm_with_mul=True):\n    pass\n", "force_fuse_int_mm"),
    ],
)
def test_compile_flags_found_with_ast(snippet: str, flag: str) -> None:
    source = "import torch\n" + snippet
    found = find_compile_flags(source)
    assert any(f.name.startswith(flag) for f in found), found
    assert found == whole_source_flags(source)
    check = check_compile_flags(rule_input([make_run(source=source)]))
    assert check.status is Status.FAIL
    assert f"a.txt:{found[0].line}" in check.detail


def test_comments_and_strings_do_not_count() -> None:
    source = (
        "import torch\n"
        "# torch._inductor.config.coordinate_descent_tuning = True\n"
        'NOTE = "torch._inductor.config.max_autotune = True"\n'
        "def f():\n"
        '    """model = torch.compile(model, mode=\'max-autotune\')"""\n'
        "    return torch.compile(f, dynamic=False)\n"
    )
    assert find_compile_flags(source) == ()


def test_coordinate_descent_tuning_is_allowed_on_medium_only() -> None:
    source = "import torch\nimport torch._inductor.config as config\nconfig.coordinate_descent_tuning = True\n"
    run = make_run(source=source)
    assert check_compile_flags(rule_input([run], MEDIUM)).status is Status.PASS
    assert check_compile_flags(rule_input([run], SMALL)).status is Status.FAIL


def test_our_trainer_sections_report_lines_of_the_log() -> None:
    source = (
        "# >>> speedrun/trainer/model.py\nimport torch\nx = 1\n"
        "# >>> speedrun/trainer/train.py\nimport torch\ntorch._inductor.config.max_autotune = True\n"
    )
    (flag,) = find_compile_flags(source)
    assert flag.line == 6 and source.splitlines()[flag.line - 1].startswith("torch._inductor")


def test_a_block_seen_before_is_read_again_at_its_own_lines_and_with_its_own_imports() -> None:
    block = "config.max_autotune = True\n"
    flagged = "import torch._inductor.config as config\n" + block
    assert [(f.name, f.line) for f in find_compile_flags(flagged)] == [("max_autotune", 2)]
    shifted = "import torch._inductor.config as config\n\nx = 1\n\n" + block
    assert [(f.name, f.line) for f in find_compile_flags(shifted)] == [("max_autotune", 5)]
    other_module = "import torch\nimport mylib.config as config\n" + block
    assert find_compile_flags(other_module) == ()


# --- data pipeline ---------------------------------------------------------------------------------------------


def test_pipeline_hash_ignores_layout_comments_and_docstrings_but_not_code() -> None:
    base = data_pipeline_hash(SOURCE)
    assert base is not None
    reformatted = SOURCE.replace('    """Read one shard."""\n', "    # read one shard\n").replace(
        "(str(file), ", "(str(file),"
    )
    assert data_pipeline_hash(reformatted) == base
    assert data_pipeline_hash(SOURCE + "\nprint('unrelated code')\n") == base
    changed = SOURCE.replace("256", "512")
    assert data_pipeline_hash(changed) != base
    assert data_pipeline_hash("import torch\nx = 1\n") is None


def test_pipeline_hash_of_trainer_logs_is_the_data_section() -> None:
    data = "import numpy\n\ndef load(path):\n    return numpy.fromfile(path)\n"
    source = f"# >>> speedrun/trainer/model.py\nimport torch\n# >>> speedrun/trainer/data.py\n{data}"
    assert data_pipeline_hash(source) == source_hash(data)
    assert data_pipeline_hash(source.replace("model.py\nimport torch", "model.py\nimport os")) == source_hash(data)


def test_data_pipeline_rule_for_trainer_logs() -> None:
    data = "def load(path):\n    return open(path).read()\n"
    source = f"# >>> speedrun/trainer/data.py\n{data}"
    pinned = replace(SMALL, data_pipeline_sha256=source_hash(data) or "")

    def trainer_run(source: str) -> RunLog:
        return ours(replace(make_run(source=source), sectioned=True))

    printed_wrong = replace(trainer_run(source), data_pipeline_sha256="0" * 64)
    check = check_data_pipeline(rule_input([printed_wrong], pinned))
    assert check.status is Status.PASS and "does not trust" in check.detail
    check = check_data_pipeline(rule_input([trainer_run(source.replace("read()", "read(10)"))], pinned))
    assert check.status is Status.FAIL
    unpinned = replace(SMALL, data_pipeline_sha256="")
    assert check_data_pipeline(rule_input([trainer_run(source)], unpinned)).status is Status.WARN
    # The same source in a log that is not our trainer's: the `# >>>` line is a comment, the file one script
    # without upstream loader code, so nothing can be compared.
    assert check_data_pipeline(rule_input([make_run(source=source)], pinned)).status is Status.UNCHECKED


def test_the_2026_recipe_s_document_loader_is_held_to_its_own_pin() -> None:
    data = "def load(path):\n    return open(path).read()\n"
    documents = "def cut(tokens, cap):\n    return tokens[:cap]\n"
    pinned = replace(
        SMALL, data_pipeline_sha256=source_hash(data) or "", document_loader_sha256=source_hash(documents) or ""
    )

    def run_2026(documents_text: str | None) -> RunLog:
        source = f"# >>> speedrun/trainer/data.py\n{data}"
        if documents_text is not None:
            source += f"# >>> speedrun/trainer/documents.py\n{documents_text}"
        return ours(replace(make_run(source=source), sectioned=True), recipe="2026-05")

    assert check_data_pipeline(rule_input([run_2026(documents)], pinned)).status is Status.PASS
    # a loader that skips a token of every document is another token stream
    skipping = check_data_pipeline(rule_input([run_2026(documents.replace("tokens[:cap]", "tokens[1:cap]"))], pinned))
    assert skipping.status is Status.FAIL and "documents.py hashes to" in skipping.detail
    assert skipping.evidence[0].line > 0
    left_out = check_data_pipeline(rule_input([run_2026(None)], pinned))
    assert left_out.status is Status.UNCHECKED and "do not embed it" in left_out.detail
    unpinned = replace(pinned, document_loader_sha256="")
    assert check_data_pipeline(rule_input([run_2026(documents)], unpinned)).status is Status.WARN


def test_the_pinned_document_loader_is_the_trainer_s() -> None:
    documents = (ROOT / "speedrun" / "trainer" / "documents.py").read_text(encoding="utf-8")
    assert SMALL.document_loader_sha256 == source_hash(documents), (
        "records/track_1_short/track.toml's document_loader_sha256 is not speedrun/trainer/documents.py's hash: "
        "a change to the document loader must be deliberate; update the pin if it is"
    )


def test_data_pipeline_rule_for_upstream_logs_compares_with_the_prior_record() -> None:
    digest = data_pipeline_hash(SOURCE)
    same = PriorRecord(10, 100.0, "record 10", pipeline_hash=digest)
    assert check_data_pipeline(rule_input([make_run()], prior=same)).status is Status.PASS
    other = PriorRecord(10, 100.0, "record 10", pipeline_hash="f" * 64)
    changed = check_data_pipeline(rule_input([make_run()], prior=other))
    assert changed.status is Status.WARN and "changed since record 10" in changed.detail
    assert check_data_pipeline(rule_input([make_run()])).status is Status.UNCHECKED
    assert check_data_pipeline(rule_input([make_run()], first_of_track=True)).status is Status.NOT_APPLICABLE
    assert check_data_pipeline(rule_input([make_run(source=None)])).status is Status.UNCHECKED
    renamed = SOURCE.replace("distributed_data_generator", "my_own_loader").replace("_load_data_shard", "read")
    unknown = check_data_pipeline(rule_input([make_run(source=renamed)], prior=same))
    assert unknown.status is Status.UNCHECKED and "no data-loading code" in unknown.detail


def test_canonical_pipeline_hash_matches_the_trainer() -> None:
    data = ROOT / "speedrun" / "trainer" / "data.py"
    if not data.is_file():
        pytest.skip("speedrun/trainer/data.py does not exist yet: nothing to pin")
    digest = source_hash(data.read_text(encoding="utf-8"))
    for track in (SMALL, MEDIUM):
        assert track.data_pipeline_sha256 == digest, (
            f"{track.path} pins {track.data_pipeline_sha256!r} but speedrun/trainer/data.py hashes to {digest}: "
            "a change to the data pipeline must be deliberate; update data_pipeline_sha256 if it is"
        )


# --- hardware --------------------------------------------------------------------------------------------------


def test_hardware() -> None:
    assert check_hardware(rule_input([make_run()])).status is Status.PASS
    a100 = GpuInfo(names=("NVIDIA A100-SXM4-80GB",) * 8, line=7)
    check = check_hardware(rule_input([make_run(gpus=a100)]))
    assert check.status is Status.WARN and "8x NVIDIA A100-SXM4-80GB" in check.detail
    four = GpuInfo(names=("NVIDIA H100 80GB HBM3",) * 4, line=7)
    assert check_hardware(rule_input([make_run(gpus=four)])).status is Status.WARN
    unknown = check_hardware(rule_input([make_run(gpus=None)]))
    assert unknown.status is Status.UNCHECKED and "no nvidia-smi block" in unknown.detail


def test_hardware_counts_the_processes_that_trained_not_the_machines_gpus() -> None:
    one_of_eight = replace(make_run(), world_size=1)
    check = check_hardware(rule_input([one_of_eight]))
    assert check.status is Status.WARN and "1x NVIDIA H100" in check.detail
    assert check_hardware(rule_input([replace(make_run(), world_size=8)])).status is Status.PASS


# --- independence ----------------------------------------------------------------------------------------------


def test_independent_runs_pass() -> None:
    runs = [make_run(f"r{i}.txt", 3.275 + i / 1e4, wobble=i / 1e3) for i in range(3)]
    assert check_independence(rule_input(runs)).status is Status.PASS


def test_byte_identical_logs_fail_and_count_once() -> None:
    a = make_run("a.txt")
    copy = replace(a, path=Path("copy_of_a.txt"))
    b = make_run("b.txt", 3.277, wobble=0.01)
    ri = rule_input([a, copy, b])
    check = check_independence(ri)
    assert check.status is Status.FAIL
    assert "byte-identical" in check.detail and "copy_of_a.txt" in check.detail
    assert len(ri.independent) == 2
    assert check_loss(ri).figures["n"] == 2


def test_identical_trajectories_fail() -> None:
    a = make_run("a.txt", time_ms=90_000, wobble=0.0)
    b = make_run("b.txt", time_ms=90_500, wobble=0.0)  # other bytes, same val losses at every val step
    check = check_independence(rule_input([a, b]))
    assert check.status is Status.FAIL and "val-loss curves equal within 0.0003" in check.detail


def test_repeated_seed_warns() -> None:
    runs = [make_run(f"r{i}.txt", 3.275 + i / 1e4, wobble=i / 1e3, seed=1234) for i in range(2)]
    check = check_independence(rule_input(runs))
    assert check.status is Status.WARN and "seed 1234" in check.detail
    assert "r0.txt:60" in [str(e) for e in check.evidence]


def test_near_copies_are_one_run_nan_agreeing_with_anything() -> None:
    a = make_run("a.txt", val_every=250, wobble=0.0)
    nudged = replace(
        a,
        path=Path("nudged.txt"),
        sha256="1" * 64,
        steps=tuple(edit_step(s, val_loss=s.val_loss + 0.0002) if s.val_loss and s.step else s for s in a.steps),
    )
    with_nan = replace(
        a,
        path=Path("nan.txt"),
        sha256="2" * 64,
        steps=tuple(edit_step(s, val_loss=math.nan) if s.step == 500 else s for s in a.steps),
    )
    other = make_run("b.txt", val_every=250, wobble=0.004)
    ri = rule_input([a, nudged, with_nan, other])
    check = check_independence(ri)
    assert check.status is Status.FAIL
    assert "a.txt, nudged.txt, nan.txt" in check.detail and "n=2 of 4" in check.detail
    assert [r.path.name for r in ri.independent] == ["a.txt", "b.txt"]


def test_curves_apart_by_more_than_the_tolerance_anywhere_are_two_runs() -> None:
    a = make_run("a.txt", wobble=0.0)
    b = replace(
        a,
        path=Path("b.txt"),
        sha256="3" * 64,
        steps=tuple(edit_step(s, val_loss=s.val_loss + 0.0004) if s.step == 1000 else s for s in a.steps),
    )
    assert check_independence(rule_input([a, b])).status is Status.PASS
    # Too few val points after step 0 to tell a copy from a close run: only the bytes would.
    short = [make_run(f"s{i}.txt", 3.275, val_every=10_000, wobble=0.0) for i in range(2)]
    assert check_independence(rule_input(short)).status is Status.PASS


# --- zero spread, baselines, other tokens ----------------------------------------------------------------------


def test_runs_printing_one_final_loss_get_the_sign_test_not_p_zero() -> None:
    two = [make_run(f"r{i}.txt", 3.2700) for i in range(2)]
    check = check_loss(rule_input(two))
    assert check.status is Status.FAIL and check.figures["p_value"] == 0.25
    assert check.figures["test"] == "sign test" and "7 runs all below the target needed" in check.detail
    seven = [make_run(f"r{i}.txt", 3.2700) for i in range(7)]
    assert check_loss(rule_input(seven)).figures["p_value"] == pytest.approx(0.5**7)
    assert check_loss(rule_input(seven)).status is Status.PASS  # all 7 below: what the runs alone support


def test_a_baseline_needs_only_its_mean_at_the_target() -> None:
    runs = [make_run(f"b{i}.txt", v) for i, v in enumerate([3.2790, 3.2801, 3.2795])]
    assert check_loss(rule_input(runs)).status is Status.FAIL
    check = check_loss(rule_input(runs, is_baseline=True))
    assert check.status is Status.PASS and "a baseline re-runs the prior record" in check.detail
    above = [make_run(f"b{i}.txt", 3.35 + i / 1e3) for i in range(3)]
    assert check_loss(rule_input(above, is_baseline=True)).status is Status.FAIL


def test_losses_and_times_on_synthetic_shards_are_not_compared() -> None:
    runs = [ours(make_run(f"r{i}.txt", v), synthetic="zipf") for i, v in enumerate(spread(8, 2.07))]
    for check in (check_loss(rule_input(runs)), check_mean_loss(rule_input(runs))):
        assert check.status is Status.UNCHECKED and "synthetic shards (zipf)" in check.detail
        assert "would be pass" in check.detail and check.figures["would_be"] == "pass"
    speed = check_speed(rule_input(runs, prior=PriorRecord(84, 200.0, "record 84")))
    assert speed.status is Status.UNCHECKED and "not measured on FineWeb" in speed.detail
    fineweb = [ours(make_run(f"r{i}.txt", v)) for i, v in enumerate(spread(8, 3.277))]
    assert check_loss(rule_input(fineweb)).status is Status.PASS


# --- timing: a clock ------------------------------------------------------------------------------------------


def test_timing_fails_on_step_lines_without_train_time_or_a_clock_standing_still() -> None:
    run = make_run()
    untimed = tuple(edit_step(s, train_time_ms=None, step_avg_ms=None) if s.step < 300 else s for s in run.steps)
    check = check_timing(rule_input([replace(run, steps=untimed)]))
    assert check.status is Status.FAIL and "a step line without train_time" in check.detail
    zero = tuple(edit_step(s, train_time_ms=0.0, step_avg_ms=0.0) for s in run.steps)
    check = check_timing(rule_input([replace(run, steps=zero)]))
    assert check.status is Status.FAIL and "stands still from step 0 to step 50" in check.detail


def dense_run(times: list[float]) -> RunLog:
    """A run with a step line at every step, train_time as given, and val lines at the start and the end."""
    total = len(times) - 1
    steps = [StepLine(0, total, 10, val_loss=10.8, train_time_ms=0.0, step_avg_ms=math.nan)]
    steps += [StepLine(i, total, 10 + i, train_time_ms=t, step_avg_ms=t / i) for i, t in enumerate(times) if i]
    end = times[-1] + 5
    steps.append(StepLine(total, total, 11 + total, val_loss=3.27, train_time_ms=end, step_avg_ms=end / total))
    return replace(make_run(), steps=tuple(steps))


def clock(durations: list[float]) -> list[float]:
    """train_time at each step from the time each step took."""
    times = [0.0]
    for d in durations:
        times.append(times[-1] + d)
    return times


def test_a_clock_that_crawls_for_a_stretch_of_steps_asks_for_a_review() -> None:
    steady = [60.0] * 400
    assert check_timing(rule_input([dense_run(clock(steady))])).status is Status.PASS
    # 3 fast steps in a row happen (the archive has them); 20 at 1 ms each do not.
    blip = [10.0 if 100 <= i < 103 else 60.0 for i in range(400)]
    assert check_timing(rule_input([dense_run(clock(blip))])).status is Status.PASS
    crawl = [1.0 if 100 <= i < 120 else 60.0 for i in range(400)]
    check = check_timing(rule_input([dense_run(clock(crawl))]))
    assert check.status is Status.WARN and "nearly stands still for 20 steps" in check.detail, check.detail
    # the bound: 10 steps in a row under a quarter of the mean step time is a stretch, 9 are not
    for length, status in ((9, Status.PASS), (10, Status.WARN)):
        crawl = [14.0 if 200 <= i < 200 + length else 60.0 for i in range(400)]
        assert check_timing(rule_input([dense_run(clock(crawl))])).status is status, length


def test_a_zero_time_never_divides() -> None:
    zero = [replace(make_run("c.txt"), steps=tuple(edit_step(s, train_time_ms=0.0) for s in make_run().steps))]
    baseline = tuple(make_run(f"b{i}.txt", time_ms=85_000 + i) for i in range(2))
    check = check_speed(rule_input(zero, baseline=baseline, prior=PriorRecord(1, 80.0, "record 1")))
    assert check.status is Status.UNCHECKED and "no time was measured" in check.detail
    candidate = [make_run(f"c{i}.txt", time_ms=80_000 + i) for i in range(2)]
    zero_base = tuple(replace(r, steps=tuple(edit_step(s, train_time_ms=0.0) for s in r.steps)) for r in baseline)
    assert check_speed(rule_input(candidate, baseline=zero_base)).status is Status.UNCHECKED


# --- the baseline ----------------------------------------------------------------------------------------------


def baseline_input(baseline: list[RunLog], **kwargs: Any) -> RuleInput:
    candidate = [make_run(f"c{i}.txt", time_ms=t) for i, t in enumerate([84_000, 84_100, 84_200, 84_050])]
    prior = kwargs.pop("prior", PriorRecord(82, 85.0, "record 82", code_sha256=(SOURCE_SHA256,)))
    return rule_input(candidate, baseline=tuple(baseline), prior=prior, **kwargs)


BASELINE = [make_run(f"b{i}.txt", time_ms=t) for i, t in enumerate([85_300, 85_400, 85_500, 85_350])]


def test_a_baseline_is_evidence_only_as_the_prior_record_re_run() -> None:
    assert check_speed(baseline_input(BASELINE)).status is Status.PASS
    failing = Check("timing", Status.FAIL, "train_time goes backwards", rule_id="SR007")
    check = check_speed(baseline_input(BASELINE, baseline_checks=(failing,)))
    assert check.status is Status.WARN and "it fails its own checks (SR007 timing: train_time goes" in check.detail
    unsure = Check("hardware", Status.WARN, "8x H200", rule_id="SR008")
    check = check_speed(baseline_input(BASELINE, baseline_checks=(unsure,)))
    assert check.status is Status.WARN and "its own checks need a review (SR008 hardware)" in check.detail
    other_code = [replace(r, source=SOURCE + "x = 1\n") for r in BASELINE]
    check = check_speed(
        baseline_input(other_code, known_code={hashlib.sha256((SOURCE + "x = 1\n").encode()).hexdigest(): "record 81"})
    )
    assert check.status is Status.WARN and "does not run record 82's code (it runs record 81's code)" in check.detail
    unpinned = PriorRecord(82, 85.0, "record 82")
    assert "pins no code_sha256" in check_speed(baseline_input(BASELINE, prior=unpinned)).detail
    alone = check_speed(baseline_input(BASELINE, prior=None))
    assert alone.status is Status.WARN and "no prior record whose pinned code it should run" in alone.detail
    slowed = PriorRecord(82, 70.0, "record 82", code_sha256=(SOURCE_SHA256,))
    check = check_speed(baseline_input(BASELINE, prior=slowed))
    assert check.status is Status.WARN and "+22.0% off record 82's published 70.000s" in check.detail


# --- one final result, one experiment ---------------------------------------------------------------------------


def with_steps(run: RunLog, steps: list[StepLine]) -> RunLog:
    return replace(run, steps=tuple(steps))


def test_one_final_result_per_run() -> None:
    run = make_run()
    final = run.steps[-1]
    second = edit_step(final, val_loss=3.2001, line=final.line + 1)
    check = check_complete_runs(rule_input([with_steps(run, [*run.steps, second])]))
    assert check.status is Status.FAIL and "2 val lines at the final step 1500" in check.detail
    untotalled = edit_step(second, total_steps=None)
    check = check_complete_runs(rule_input([with_steps(run, [*run.steps, untotalled])]))
    assert check.status is Status.FAIL and "with no /total, where the run's total is 1500" in check.detail
    steps = list(run.steps)
    steps[10] = steps[10]._replace(step=steps[8].step)
    check = check_complete_runs(rule_input([with_steps(run, steps)]))
    assert check.status is Status.FAIL and "the step lines go back from step" in check.detail


def test_runs_of_several_totals_or_codes_pooled_in_one_group_ask_for_a_review() -> None:
    runs = [make_run(f"r{i}.txt") for i in range(3)]
    assert check_complete_runs(rule_input(runs)).status is Status.PASS
    longer = make_run("long.txt", steps=1600)
    check = check_complete_runs(rule_input([*runs, longer]))
    assert check.status is Status.WARN and "2 step counts" in check.detail
    commented = replace(runs[0], source=SOURCE.replace("import torch", "import torch  # the same code"))
    assert check_complete_runs(rule_input([commented, *runs[1:]])).status is Status.PASS  # comments do not count
    changed = replace(runs[0], source=SOURCE.replace("dynamic=False", "dynamic=True"))
    check = check_complete_runs(rule_input([changed, *runs[1:]]))
    assert check.status is Status.WARN and "2 versions of the code" in check.detail
    assert "dynamic=True" in check.detail


def test_the_total_a_log_prints_is_what_its_code_schedules() -> None:
    scheduled = (
        SOURCE + "class Hyperparameters:\n    num_iterations: int = 1460  # steps\n    iteration_extension = 40\n"
    )
    assert check_complete_runs(rule_input([make_run(source=scheduled)])).status is Status.PASS
    more = scheduled.replace("1460", "1560")
    check = check_complete_runs(rule_input([make_run(source=more)]))
    assert check.status is Status.WARN and "its code schedules 1600 steps" in check.detail
    ours_run = ours(replace(make_run(), sectioned=True), num_iterations=1695)
    check = check_complete_runs(rule_input([ours_run]))
    assert check.status is Status.FAIL and "its config schedules 1695 steps" in check.detail


# --- hardware, recipe -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        ("NVIDIA H100 NVL",) * 8,
        ("NVIDIA H100 PCIe",) * 8,
        ("NVIDIA GeForce H100ish",) * 8,
        ("NVIDIA H100 80GB HBM3",) * 7 + ("NVIDIA A100-SXM4-80GB",),
    ],
)
def test_hardware_wants_the_exact_name(names: tuple[str, ...]) -> None:
    check = check_hardware(rule_input([make_run(gpus=GpuInfo(names=names, line=7))]))
    assert check.status is Status.WARN and "expected 8x NVIDIA H100 80GB HBM3" in check.detail


def test_a_cpu_run_is_not_8x_h100() -> None:
    check = check_hardware(rule_input([make_run(gpus=GpuInfo(names=(), line=9))]))
    assert check.status is Status.WARN and "no GPU (nvidia-smi not available)" in check.detail


def test_our_trainer_runs_the_record_recipe_in_full() -> None:
    assert check_recipe(rule_input([make_run()])).status is Status.NOT_APPLICABLE
    assert check_recipe(rule_input([ours(make_run())])).status is Status.PASS
    tiny = check_recipe(rule_input([ours(make_run(), preset="tiny", num_iterations=30)]))
    assert tiny.status is Status.WARN and "preset 'tiny'" in tiny.detail
    short = check_recipe(rule_input([ours(make_run(), num_iterations=120)]))
    assert (
        short.status is Status.WARN and "num_iterations 120, where the default recipe trains 1695 steps" in short.detail
    )
    unknown = check_recipe(rule_input([ours(make_run(), recipe="record99")]))
    assert unknown.status is Status.WARN and "'record99' has no step count pinned" in unknown.detail
    other_track = check_recipe(rule_input([ours(make_run(), track="track_2_medium")]))
    assert other_track.status is Status.WARN and "names track 'track_2_medium'" in other_track.detail


def test_the_config_lines_the_trainer_writes_now_are_judged_by_their_recipe() -> None:
    """The config line names its recipe (and nests everything but track, recipe, preset and num_iterations)."""
    from speedrun.trainer.config import get_config  # pure Python: no torch

    for recipe in ("2025-08", "2026-05"):
        logged = json.loads(get_config("small", recipe=recipe).to_json())
        run = replace(ours(make_run()), config=logged)
        check = check_recipe(rule_input([run]))
        assert check.status is Status.PASS, check.detail
        tiny = replace(run, config=json.loads(get_config("small", "tiny", recipe).to_json()))
        check = check_recipe(rule_input([tiny]))
        assert check.status is Status.WARN and "preset 'tiny'" in check.detail
    cut = replace(run, config={**logged, "num_iterations": 1000})
    check = check_recipe(rule_input([cut]))
    assert check.status is Status.WARN and "num_iterations 1000, where the 2026-05 recipe trains 1485" in check.detail


def test_the_pinned_recipe_steps_are_the_trainers() -> None:
    from speedrun.trainer.config import RECIPES, get_config, recipe_names  # pure Python: no torch

    for track in (SMALL, MEDIUM):
        pinned = dict(track.terms("SR011", datetime.date.today()).parameters["recipe_steps"])  # type: ignore[union-attr]
        names = recipe_names(track.name)
        # a new recipe needs its step count pinned; a preset is no recipe
        assert set(pinned) == {"default", *names} and set(names) == {n for t, n in RECIPES if t == track.name}
        for name in names:
            config = get_config(track.name, recipe=name)
            assert config.recipe == name and pinned[name] == config.num_iterations, (track.path, name)
        # a config line older than the recipe key ran the track's first recipe, the only one there was
        assert pinned["default"] == pinned[names[0]], track.path


# --- the history of the rules ----------------------------------------------------------------------------------

DAY = datetime.date


def in_force(track: Track, day: datetime.date) -> dict[str, str]:
    """{rule id: status} of every rule apply_rules reports on `day` (n/a for those not yet in force)."""
    runs = [make_run(f"r{i}.txt", v, grace=10, source=SOURCE + GRACE_CODE) for i, v in enumerate(spread(8, 3.2770))]
    return {c.rule_id: c.status.value for c in apply_rules(rule_input(runs, track, as_of=day))}


def test_every_rule_has_a_history_on_both_tracks_and_every_entry_names_a_rule() -> None:
    ids = {rule.id for rule in REGISTRY}
    assert len(ids) == len(REGISTRY)
    for track in (SMALL, MEDIUM):
        assert {t.id for t in track.rules} == ids, track.path
        for terms in track.rules:
            assert terms.quote and terms.source, terms.id


@pytest.mark.parametrize(
    ("rule_id", "boundary"),
    [
        ("SR003", DAY(2024, 12, 4)),  # p < 0.01 entered the README on 2024-12-04
        ("SR004", DAY(2025, 2, 1)),  # compile flags: "introduced after the 21st record", from its re-timing
        ("SR007", DAY(2025, 2, 1)),  # every step timed from record 21's re-timing
    ],
)
def test_a_rule_comes_into_force_on_its_day(rule_id: str, boundary: datetime.date) -> None:
    before = in_force(SMALL, boundary - datetime.timedelta(days=1))
    on = in_force(SMALL, boundary)
    assert before[rule_id] == "n/a" and on[rule_id] != "n/a"
    assert SMALL.terms(rule_id, boundary) is not None and SMALL.terms(rule_id, boundary - datetime.timedelta(1)) is None


@pytest.mark.parametrize(("rule_id", "boundary"), [("SR002", DAY(2024, 12, 4)), ("SR006", DAY(2025, 2, 1))])
def test_a_superseded_rule_applies_until_its_day_and_is_gone_after(rule_id: str, boundary: datetime.date) -> None:
    assert rule_id in in_force(SMALL, boundary - datetime.timedelta(days=1))
    assert rule_id not in in_force(SMALL, boundary)


def test_a_rule_not_yet_in_force_says_when_it_will_be_and_what_it_would_say() -> None:
    flagged = SOURCE + "torch._inductor.config.coordinate_descent_tuning = True\n"
    runs = [make_run(f"r{i}.txt", v, source=flagged) for i, v in enumerate(spread(8, 3.2770))]
    (check,) = [c for c in apply_rules(rule_input(runs, as_of=DAY(2024, 11, 10))) if c.rule_id == "SR004"]
    assert check.status is Status.NOT_APPLICABLE
    assert "only from 2025-02-01; would be fail: not allowed" in check.detail
    assert check.figures["would_be"] == "fail"


def test_the_readme_rule_table_is_generated_from_the_registry() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- rules:start -->", "<!-- rules:end -->"
    assert start in readme and end in readme, "the README's judge section must embed the rule table"
    embedded = readme.split(start)[1].split(end)[0]
    expected = "\n\n" + rule_table([SMALL, MEDIUM]).strip("\n") + "\n\n"
    assert embedded == expected, "regenerate it: python scripts/rule_table.py"

"""Compare the val-loss curves and throughput of runs in two log folders (e.g. 1 GPU against N GPUs).

    python benchmarks/compare_runs.py LOGS_A LOGS_B

Reads the logs with the judge's parser; prints each val step side by side, the largest difference, and each
run's step time and tokens/s per GPU (tokens per step from the logged config).
"""

from __future__ import annotations

import sys
from pathlib import Path

from speedrun.judge.discover import find_run_logs
from speedrun.judge.parse import parse_log
from speedrun.judge.runlog import RunLog


def first_run(folder: Path) -> RunLog:
    return parse_log(find_run_logs(folder)[0])


def tokens_per_step(run: RunLog) -> int:
    config = run.config or {}
    return int(config["micro_batch_tokens"]) * int(config["micro_steps_per_step"])


def main(argv: list[str]) -> int:
    a, b = (first_run(Path(p)) for p in argv[:2])
    curve_a = {s.step: s.val_loss for s in a.val_steps}
    curve_b = {s.step: s.val_loss for s in b.val_steps}
    print(f"{'step':>6} {'val_loss A':>11} {'val_loss B':>11} {'B - A':>9}")
    worst = 0.0
    for step in sorted(curve_a.keys() & curve_b.keys()):
        diff = curve_b[step] - curve_a[step]
        worst = max(worst, abs(diff))
        print(f"{step:>6} {curve_a[step]:>11.4f} {curve_b[step]:>11.4f} {diff:>+9.4f}")
    print(f"largest |B - A| = {worst:.4f}")
    for name, run in (("A", a), ("B", b)):
        final = run.final
        world = run.world_size or 1
        if final is None or not final.train_time_ms or final.step == 0:
            print(f"{name}: {run.path}: no timed steps")
            continue
        step_ms = final.train_time_ms / final.step
        per_gpu = tokens_per_step(run) / (step_ms / 1000) / world
        print(
            f"{name}: {run.path.name}: {world} GPU(s), {final.step} steps in {final.train_time_ms / 1000:.1f} s, "
            f"{step_ms:.1f} ms/step, {per_gpu / 1000:.0f}k tokens/s per GPU, peak {run.peak_memory_mib} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

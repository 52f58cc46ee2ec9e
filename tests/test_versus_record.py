"""benchmarks/versus_record.py's table, from logs already written (the GPU runs themselves are the lead's):
checkpoints both programs reached, side by side, with the differences and step times of the real logs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT


def write_log(
    path: Path, losses: dict[int, float], step_ms: float | Callable[[int], float], total: int = 120,
    config: dict | None = None,
) -> None:  # fmt: skip
    """A run log in the upstream shape: a script, the environment, step lines every step, val lines at `losses`;
    `step_ms`: each step's time, or a function of the step; `config`: a config line as our trainer writes."""
    lines = ["import torch", "=" * 100, "Running Python 3.12.0", "=" * 100]
    if config is not None:
        lines.append(f"config: {json.dumps(config)}")
    ms_of = step_ms if callable(step_ms) else lambda _: step_ms
    elapsed = 0.0
    for step in range(total + 1):
        if step:
            elapsed += ms_of(step)
            lines.append(f"step:{step}/{total} train_time:{elapsed:.0f}ms step_avg:{elapsed / step:.2f}ms")
        if step in losses:
            avg = f"{elapsed / step:.2f}" if step else "nan"
            lines.append(f"step:{step}/{total} val_loss:{losses[step]:.4f} train_time:{elapsed:.0f}ms step_avg:{avg}ms")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def tables(out: Path) -> str:
    """What `versus_record.py --only table` prints for the logs under `out`; it must succeed."""
    proc = subprocess.run(
        [sys.executable, "benchmarks/versus_record.py", "--only", "table", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_table_compares_every_checkpoint_both_reached(tmp_path: Path) -> None:
    out = tmp_path / "versus"
    write_log(out / "record" / "r.txt", {0: 10.8258, 40: 5.1000, 80: 4.5000, 120: 4.2000}, step_ms=662.0)
    # ours was stopped by the deadline after step 80: its set-aside partial log still counts
    write_log(out / "ours" / "o.txt.interrupted", {0: 10.8258, 40: 5.1050, 80: 4.4950}, step_ms=650.0, total=120)
    stdout = tables(out)
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in stdout.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    }
    assert sorted(rows, key=int) == ["0", "40", "80"]
    assert rows["40"][:6] == ["5.1000", "5.1050", "+0.0050", "662.0", "650.0", "0.982"]
    assert rows["80"][6:] == ["662.0", "650.0"]  # ms per step between the checkpoints
    assert (out / "table.md").read_text(encoding="utf-8").count("\n| ") == 5  # the header, its rule, three rows


def test_a_staged_recipe_gets_each_batch_stages_throughput_on_both_sides(tmp_path: Path) -> None:
    out = tmp_path / "versus"
    losses = {0: 10.8, 100: 2.75, 200: 2.13, 300: 2.06}
    write_log(out / "record" / "r.txt", losses, step_ms=500.0, total=300)
    # 2026-05 cut to 300 steps: batches of 131,072 tokens for steps 1-97, 262,144 for 98-195, 393,216 after
    # (the extension's 8 steps keep the last batch); ours takes 200, 400 and 600 ms a step there
    config = {"track": "track_1_short", "recipe": "2026-05", "preset": None, "num_iterations": 300}
    config["schedule"] = {"stages": []}
    write_log(
        out / "ours" / "o.txt", losses, step_ms=lambda step: 200.0 if step <= 97 else 400.0 if step <= 195 else 600.0,
        total=300, config=config,
    )  # fmt: skip
    stdout = tables(out)
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in stdout.splitlines() if line.startswith("| ")]
    stages = {row[0]: row[1:] for row in rows if row[0] in ("1", "2", "3", "all")}
    assert stages["1"] == ["1-97", "131,072", "500.0", "262.1k", "200.0", "655.4k"]
    assert stages["2"] == ["98-195", "262,144", "500.0", "524.3k", "400.0", "655.4k"]
    assert stages["3"] == ["196-300", "393,216", "500.0", "786.4k", "600.0", "655.4k"]
    # 97 x 131,072 + 98 x 262,144 + 105 x 393,216 tokens; ours 97 x 0.2 + 98 x 0.4 + 105 x 0.6 = 121.6 s
    assert stages["all"] == ["1-300", "79,691,776 in all", "150.0 s", "531.3k", "121.6 s", "655.4k"]

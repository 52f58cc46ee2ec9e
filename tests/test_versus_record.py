"""benchmarks/versus_record.py's table, from logs already written (the GPU runs themselves are the lead's):
checkpoints both programs reached, side by side, with the differences and step times of the real logs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def write_log(path: Path, losses: dict[int, float], step_ms: float, total: int = 120) -> None:
    """A run log in the upstream shape: a script, the environment, step lines every step, val lines at `losses`."""
    lines = ["import torch", "=" * 100, "Running Python 3.12.0", "=" * 100]
    for step in range(total + 1):
        if step:
            lines.append(f"step:{step}/{total} train_time:{step * step_ms:.0f}ms step_avg:{step_ms:.2f}ms")
        if step in losses:
            avg = f"{step_ms:.2f}" if step else "nan"
            lines.append(
                f"step:{step}/{total} val_loss:{losses[step]:.4f} train_time:{step * step_ms:.0f}ms step_avg:{avg}ms"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_table_compares_every_checkpoint_both_reached(tmp_path: Path) -> None:
    out = tmp_path / "versus"
    write_log(out / "record" / "r.txt", {0: 10.8258, 40: 5.1000, 80: 4.5000, 120: 4.2000}, step_ms=662.0)
    # ours was stopped by the deadline after step 80: its set-aside partial log still counts
    write_log(out / "ours" / "o.txt.interrupted", {0: 10.8258, 40: 5.1050, 80: 4.4950}, step_ms=650.0, total=120)
    proc = subprocess.run(
        [sys.executable, "benchmarks/versus_record.py", "--only", "table", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    }
    assert sorted(rows, key=int) == ["0", "40", "80"]
    assert rows["40"][:6] == ["5.1000", "5.1050", "+0.0050", "662.0", "650.0", "0.982"]
    assert rows["80"][6:] == ["662.0", "650.0"]  # ms per step between the checkpoints
    assert (out / "table.md").read_text(encoding="utf-8").count("\n| ") == 5  # the header, its rule, three rows

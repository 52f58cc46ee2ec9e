"""The Quickstart's first command judges the example runs in records/examples/: it must keep working."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXAMPLES = sorted(p for p in (ROOT / "records" / "examples").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_are_judged_from_their_own_lines(folder: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "speedrun", "judge", str(folder), "--json"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode in (0, 1, 4), proc.stderr  # a verdict, never bad input
    (judgement,) = json.loads(proc.stdout)
    assert judgement["track"] == "track_1_short"
    logs = sorted(folder.glob("*.txt"))
    assert judgement["summary"]["n"] == len(logs) >= 2
    for run in judgement["runs"]:
        path = Path(run["file"]) if Path(run["file"]).is_absolute() else ROOT / run["file"]
        text = path.read_text(encoding="utf-8")
        last_val = re.findall(r"^step:(\d+)/\d+ val_loss:([\d.]+) train_time:(\d+)ms", text, re.M)[-1]
        assert (run["steps"], run["final_val_loss"], run["train_time_ms"]) == (
            int(last_val[0]),
            float(last_val[1]),
            float(last_val[2]),
        )
    rules = {c["rule"]: c["status"] for c in judgement["checks"]}
    details = {c["rule"]: c["detail"] for c in judgement["checks"]}
    assert rules["compile flags"] == "pass"
    assert rules["hardware"] == "warn" and "NVIDIA H200" in details["hardware"]  # H200s, not 8x H100
    # Synthetic shards, 120 steps of a 1695-step recipe: an example of the log, no record, and the judge says why.
    assert rules["data pipeline"] == "warn" and "synthetic shards (zipf)" in details["data pipeline"]
    assert rules["recipe"] == "warn" and "num_iterations 120" in details["recipe"]
    assert rules["loss"] == "unchecked" and "not measured on FineWeb" in details["loss"]
    assert judgement["verdict"] == "review" and proc.returncode == 4  # never pass

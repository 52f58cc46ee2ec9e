"""Runs of our own trainer that are no record: two 30-step CPU runs of the `tiny` preset on synthetic shards
(tests/data/tiny-cpu, as `speedrun train --preset tiny --device cpu --steps 30` wrote them). The judge never
passes them and says why, `speedrun records new` scaffolds them only stating that review, and `speedrun ci`
does not accept them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.test_ci import open_pr, project_origin, run_ci_in, speedrun  # noqa: F401 (project_origin: a fixture)

TINY = ROOT / "tests" / "data" / "tiny-cpu"


def judge_json(path: Path) -> tuple[int, dict[str, object]]:
    proc = subprocess.run(
        [sys.executable, "-m", "speedrun", "judge", str(path), "--json"], capture_output=True, text=True, cwd=ROOT
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    (doc,) = json.loads(proc.stdout)
    return proc.returncode, doc


def test_two_tiny_cpu_runs_are_judged_review_and_the_judge_says_why() -> None:
    code, doc = judge_json(TINY)
    assert code == 4 and doc["verdict"] == "review"
    details = {c["rule_id"]: (c["status"], c["detail"]) for c in doc["checks"]}  # type: ignore[union-attr]
    assert details["SR011"][0] == "warn" and "preset 'tiny'" in details["SR011"][1]
    assert details["SR001"][0] == "warn" and "synthetic shards (order2)" in details["SR001"][1]
    assert details["SR008"][0] == "warn" and "no GPU" in details["SR008"][1]
    assert details["SR003"][0] == "unchecked"  # a loss on synthetic tokens is no FineWeb loss


def test_tiny_runs_whose_data_line_claims_fineweb_still_fail(tmp_path: Path) -> None:
    """The data line rewritten to FineWeb's facts, the config to FineWeb's validation size: the loss is then held
    against the target, and misses it."""
    folder = tmp_path / "claims-fineweb"
    folder.mkdir()
    for log in TINY.glob("*.txt"):
        text = log.read_text(encoding="utf-8").replace('"synthetic":"order2"', '"synthetic":null')
        text = re.sub(r'"tokens":\d+', '"tokens":100000000', text).replace('"val_tokens":4096', '"val_tokens":10485760')
        (folder / log.name).write_text(text, encoding="utf-8")
    code, doc = judge_json(folder)
    assert code == 1 and doc["verdict"] == "fail"
    loss = next(c for c in doc["checks"] if c["rule_id"] == "SR003")  # type: ignore[union-attr]
    assert loss["status"] == "fail"


def test_records_new_states_the_review_and_ci_does_not_accept_them(project_origin: Path, tmp_path: Path) -> None:  # noqa: F811
    said: list[str] = []

    def scaffold(repo: Path) -> None:
        args = ("records", "new", TINY, "--track", "small", "--name", "TinyCpu", "--description", "a trial")
        proc = speedrun(repo, *map(str, args), "--date", "2026-07-02", "--contributor", "@me")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        said.append(" ".join(proc.stdout.split()))

    pr = open_pr(project_origin, tmp_path, scaffold)
    assert "judge verdict: review, not a record until a maintainer confirms:" in said[0]
    assert "preset 'tiny'" in said[0] and "synthetic shards (order2)" in said[0]
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 4, report + stderr
    assert "## speedrun ci: review" in report and "TinyCpu: review" in report

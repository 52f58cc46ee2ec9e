"""The three outputs of the judge: stable JSON, pasteable Markdown, and a readable terminal table."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from speedrun.judge.judging import judge_path, judge_runs
from speedrun.judge.pipeline import data_pipeline_hash
from speedrun.judge.report import JSON_VERSION, print_table, to_json, to_markdown
from speedrun.judge.rules import PriorRecord
from speedrun.judge.verdict import Judgement, Role
from speedrun.store import Waiver
from speedrun.tracks import load_track
from tests.conftest import ROOT
from tests.test_rules import SOURCE, edit_step, make_run

SMALL = load_track("small")
LOSSES = [3.2770, 3.2775, 3.2768, 3.2781, 3.2772]
# The record the runs are measured against; its pinned code is the runs' own, so a baseline of them runs it.
PRIOR = PriorRecord(
    84, 100.0, "record 84", data_pipeline_hash(SOURCE), code_sha256=(hashlib.sha256(SOURCE.encode()).hexdigest(),)
)


def judgement(
    losses: list[float] = LOSSES, start_ms: int = 90_000, baseline: Judgement | None = None, **kwargs: object
) -> Judgement:
    runs = tuple(make_run(f"run{i}.txt", v, time_ms=start_ms + 100 * i) for i, v in enumerate(losses))
    return judge_runs(Path("records/x"), runs, SMALL, "--track", baseline=baseline, prior=PRIOR, **kwargs)  # type: ignore[arg-type]


def test_json_is_strict_and_has_the_documented_layout() -> None:
    j = judgement()
    (doc,) = to_json([j])
    text = json.dumps([doc], allow_nan=False)  # raises on NaN: the document must be strict JSON
    assert json.loads(text)[0] == doc
    assert doc["json_version"] == JSON_VERSION
    assert doc["verdict"] == "pass" and doc["track"] == "track_1_short" and doc["track_reason"] == "--track"
    assert [r["file"] for r in doc["runs"]] == [f"run{i}.txt" for i in range(5)]
    assert doc["runs"][0]["evidence"].startswith("run0.txt:")
    assert doc["summary"]["n"] == 5
    assert math.isclose(doc["summary"]["mean_val_loss"], sum(LOSSES) / 5)
    assert [(c["rule_id"], c["rule"]) for c in doc["checks"]] == [
        ("SR003", "loss"),
        ("SR007", "timing"),
        ("SR005", "speed"),
        ("SR004", "compile flags"),
        ("SR001", "data pipeline"),
        ("SR008", "hardware"),
        ("SR009", "independence"),
        ("SR010", "complete runs"),
        ("SR011", "recipe"),
    ]
    assert all(c["waived"] is None for c in doc["checks"])
    assert doc["baseline"] is None and doc["role"] == "candidate" and doc["incomplete"] == []


def test_json_turns_undefined_figures_into_null() -> None:
    j = judgement([3.27])
    (doc,) = to_json([j])
    assert doc["summary"]["p_value"] is None
    json.dumps(doc, allow_nan=False)
    nan_run = replace(make_run("nan.txt"), steps=tuple(edit_step(s, val_loss=math.nan) for s in make_run().steps))
    j = judge_runs(Path("x"), (nan_run,), SMALL, "path")
    (doc,) = to_json([j])
    assert doc["runs"][0]["final_val_loss"] is None
    json.dumps(doc, allow_nan=False)


def test_copies_are_marked_not_counted() -> None:
    a = make_run("a.txt", 3.27)
    runs = (a, replace(a, path=Path("a_copy.txt")), make_run("b.txt", 3.271))
    (doc,) = to_json([judge_runs(Path("x"), runs, SMALL, "path")])
    assert [r["counted"] for r in doc["runs"]] == [True, False, True]
    assert doc["summary"]["n"] == 2
    assert doc["verdict"] == "fail"


def test_a_waiver_shows_in_the_verdict_the_check_and_the_json() -> None:
    waiver = Waiver("SR003", "a re-timing, not a new record", "https://example.org/pr/1")
    j = judgement(LOSSES[:1], waivers=(waiver,))
    assert j.verdict.value == "pass"
    (doc,) = to_json([j])
    loss = next(c for c in doc["checks"] if c["rule_id"] == "SR003")
    assert loss["status"] == "unchecked" and loss["waived"]["reason"] == "a re-timing, not a new record"
    text = to_markdown([j])
    assert text.startswith("# records/x: PASS (waived: a re-timing, not a new record)")
    assert "| SR003 loss | unchecked, waived |" in text


def test_other_groups_are_reported_apart() -> None:
    other = judgement([3.29, 3.291], role=Role.OTHER, role_reason="an earlier version (v1) than v2")
    text = to_markdown([judgement(), other])
    assert text.count("# records/x:") == 1
    assert "# Not the submission" in text and "an earlier version (v1) than v2" in text


def test_markdown_has_runs_summary_p_value_and_checks() -> None:
    baseline = judgement([3.2776, 3.2780, 3.2771], start_ms=95_000)
    text = to_markdown([judgement(baseline=baseline)])
    assert text.startswith("# records/x: PASS")
    assert "| run0.txt | 1500 | 3.2770 | 90000ms |" in text
    assert "p(val_loss < 3.28) = **" in text
    assert "## vs baseline" in text and "## Checks" in text
    assert "| SR003 loss | pass |" in text


def test_table_names_verdict_runs_and_every_rule() -> None:
    buffer = io.StringIO()
    print_table([judgement(LOSSES[:1])], Console(file=buffer, width=200, color_system=None))
    text = buffer.getvalue()
    assert text.startswith("REVIEW")  # one run below the target: no p-value
    assert "run0.txt:" in text
    for rule in ("loss", "timing", "speed", "compile flags", "data pipeline", "hardware", "independence"):
        assert rule in text


# --- file:line whole at any width -------------------------------------------------------------------------------

EXAMPLE = ROOT / "records" / "examples" / "2026-11-30_synthetic-h200"
# A baseline (record 83), an incomplete run (64), groups that are not the submission (81), and compile-flag
# failures whose details name long paths (the 2024-10-20 1.5B run).
ARCHIVE_FOLDERS = (
    "2026-05-20_BigramsSignTrick",
    "2026-01-30_MimeticValueOutput",
    "2026-04-22_MuddFormer",
    "2024-10-20_ScaleUp1B",
)


def cited(docs: list[dict[str, Any]]) -> list[str]:
    """Every file:line a --json document cites for a group that decides: its runs, incomplete runs and checks,
    and its baseline's runs; the groups that are not the submission by their folder."""
    found: list[str] = []
    for doc in docs:
        if doc["role"] != "candidate":
            found.append(doc["path"])
            continue
        found += [r["evidence"] for r in doc["runs"]] + [r["evidence"] for r in doc["incomplete"]]
        found += [e for c in doc["checks"] for e in c["evidence"]]
        if doc["baseline"]:
            found += [r["evidence"] for r in doc["baseline"]["runs"] + doc["baseline"]["incomplete"]]
    return found


def judge_text_and_json(paths: list[str], cwd: Path, columns: int) -> tuple[str, list[dict[str, Any]]]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "speedrun", "judge", *paths]
    text = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True).stdout
    docs = json.loads(subprocess.run([*command, "--json"], cwd=cwd, env=env, capture_output=True, text=True).stdout)
    return text, docs


def printed_at_80_columns(judgements: list[Judgement]) -> str:
    buffer = io.StringIO()
    print_table(judgements, Console(file=buffer, width=80, color_system=None))
    return buffer.getvalue()


def assert_whole(cites: list[str], text: str) -> None:
    lines = text.splitlines()
    broken = [c for c in cites if not any(c in line for line in lines)]
    assert len(cites) > 5 and broken == [], f"not on one line: {broken}\n{text}"


def test_every_cited_line_of_the_example_is_printed_whole_at_80_columns() -> None:
    text, docs = judge_text_and_json([str(EXAMPLE.relative_to(ROOT))], ROOT, 80)
    assert_whole(cited(docs), text)
    assert_whole([str(ROOT / c) for c in cited(docs)], printed_at_80_columns(judge_path(EXAMPLE)))
    # the rest is wrapped: past 80 columns only a cited line, or a run's file name alone on its line (no space
    # to break it at, and the detail column starts at 33 when a check is "unchecked")
    too_wide = [line for line in text.splitlines() if len(line) > 80 and ".txt:" not in line]
    assert [line for line in too_wide if len(line.split()) > 1 or ".txt" not in line] == [], too_wide


@pytest.mark.archive
def test_every_cited_line_of_real_records_is_printed_whole_at_80_columns(upstream_records: Path) -> None:
    paths = [f"records/track_1_short/{name}" for name in ARCHIVE_FOLDERS]
    text, docs = judge_text_and_json(paths, upstream_records.parent, 80)
    assert {d["path"].split("/")[2] for d in docs} == set(ARCHIVE_FOLDERS)
    cites = cited(docs)
    assert any("README.md" not in c and ".txt:" in c and len(c) > 80 for c in cites)
    assert_whole(cites, text)
    judgements = [j for name in ARCHIVE_FOLDERS for j in judge_path(upstream_records / "track_1_short" / name)]
    assert_whole(cited(to_json(judgements)), printed_at_80_columns(judgements))

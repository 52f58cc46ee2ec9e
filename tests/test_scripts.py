"""The maintainers' scripts: the pinned hashes agree with the archive's logs, pins are written in place, and the
README's sample output is what its commands print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from pin_record_hashes import pinned_text
from readme_samples import Places, Sample, fit, regenerate, select

RECORD = """number = 3
time = "1.000 minutes"
logs = []
data_pipeline_sha256 = "old"

[[waivers]]
rule = "SR003"
"""


def test_pins_are_set_before_the_first_table_and_replace_old_ones() -> None:
    text = pinned_text(RECORD, "a" * 64, ["b" * 64])
    assert text.count("data_pipeline_sha256") == 1 and '"old"' not in text
    head, _ = text.split("\n\n[[waivers]]")
    assert head.endswith(f'data_pipeline_sha256 = "{"a" * 64}"\ncode_sha256 = ["{"b" * 64}"]')
    assert pinned_text(text, "a" * 64, ["b" * 64]) == text


@pytest.mark.archive
def test_the_pinned_hashes_are_those_of_the_archives_logs(upstream_records: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "pin_record_hashes.py"), "--logs", str(upstream_records), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


# --- the README's sample output --------------------------------------------------------------------------------


def samples_check(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "scripts" / "readme_samples.py"), "--check", *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_sample_keeps_the_lines_asked_for_and_marks_what_it_leaves_out() -> None:
    output = ["PASS  x", "  continued", "steps", " 1  a", " 2  b", " 3  c", "n=3", "SR003 loss  pass", "   more"]
    sample = Sample.parse("speedrun judge x\nkeep ^PASS\nkeep ^steps 2\nkeep ^SR003")
    assert select(output, sample) == ["PASS  x", "  continued", "steps", " 1  a", "...", "SR003 loss  pass", "   more"]
    path = "records/track_1_short/2026-05-20_BigramsSignTrick/pr299/0cf91274-eda8-49cd-9a97-9369f730f271.txt:4601"
    line = fit(f" 1480    3.2763     84.237s  {path}")
    assert len(line) == 96 and line.endswith("f271.txt:4601") and "records/track_1_short/2026" in line


def test_a_sample_that_is_not_what_the_command_prints_is_found() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stale = readme.replace("rules of 2026-11-30 (folder name)", "rules of 2026-11-29 (folder name)", 1)
    assert stale != readme
    fresh, skipped = regenerate(stale, Places(None), skip_upstream=True)
    assert fresh == readme and skipped


def test_the_readme_samples_are_what_the_commands_print() -> None:
    proc = samples_check("--no-upstream")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.archive
def test_the_readme_samples_over_the_upstream_records_are_what_the_commands_print(upstream_records: Path) -> None:
    proc = samples_check("--upstream", str(upstream_records))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "left as it is" not in proc.stderr

"""The maintainers' scripts: the pinned hashes agree with the archive's logs, and pins are written in place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from pin_record_hashes import pinned_text

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

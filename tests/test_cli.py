"""The CLI shell: help everywhere, a version, and fast start-up without heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = [[], ["judge"], ["leaderboard"], ["records"], ["data"], ["train"], ["ci"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_everywhere(cmd: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "speedrun", *cmd, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "speedrun", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("speedrun ")


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, speedrun.cli; "
        "heavy = [m for m in ('torch', 'scipy', 'pandas', 'numpy', 'huggingface_hub', 'jinja2') if m in sys.modules]; "
        "print(heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"

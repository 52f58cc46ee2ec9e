"""`speedrun judge`: placeholder until the judge lands."""

from __future__ import annotations

from pathlib import Path

import typer


def judge(paths: list[Path] = typer.Argument(..., help="Folders of run logs, or single log files.")) -> None:
    """Judge a record submission from its logs."""
    raise NotImplementedError

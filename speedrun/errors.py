"""Errors that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

from pathlib import Path


class BadInput(Exception):
    """Input the user must fix: a missing file, a malformed log, a bad TOML field.

    The message is always one line that names the file first, so the CLI can print it as is.
    """

    def __init__(self, path: Path | str | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = " ".join(problem.split())  # one line, whatever the caller passed
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)

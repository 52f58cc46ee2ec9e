"""Errors that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

from pathlib import Path

from speedrun.console import printable


class BadInput(Exception):
    """Input the user must fix: a missing file, a malformed log, a bad TOML field.

    The message is always one line that names the file first, so the CLI can print it as is. File names and
    problems quoting a submission's text are escaped here, once, for every caller: a file name may carry
    terminal escapes or line breaks.
    """

    def __init__(self, path: Path | str | None, problem: str) -> None:
        self.path = None if path is None else printable(str(path))
        self.problem = printable(" ".join(problem.split()))  # one line, whatever the caller passed
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)

"""The README as GitHub shows it: code that fits the column, and the test command CI runs.

`docs/render_readme.py` renders the README and the chart in Chromium and measures them; these are the
parts of that which need no browser, so they hold on every run of the suite.
"""

from __future__ import annotations

import re

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
# GitHub shows code at 85 % of 16 px in an 880 px column less 2 x 16 px padding: about 100 monospace
# characters before a scroll bar hides the rest of the line (and with it, the comment at its end).
CODE_COLUMNS = 96


def code_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(info string, lines) of every fenced code block."""
    return [(m[1], m[2].splitlines()) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)]


def test_commands_usage_and_sample_output_fit_the_column() -> None:
    blocks = code_blocks(README)  # sample output too: scripts/readme_samples.py fits it to the column
    assert len(blocks) > 10 and any(info == "console" for info, _ in blocks)
    too_wide = [line for _, lines in blocks for line in lines if len(line) > CODE_COLUMNS]
    assert too_wide == [], f"wider than {CODE_COLUMNS} characters (put a comment on its own line): {too_wide}"


def test_the_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = next(line for line in ci.splitlines() if line.startswith("pip install"))
    quickstart = README[README.index("## Quickstart") : README.index("## Judging")]
    assert command in [line for _, lines in code_blocks(quickstart) for line in lines]

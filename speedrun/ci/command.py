"""`speedrun ci`: the check a pull request runs. The logic lives in `speedrun.ci.check`; this is the typer layer."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def ci(
    base: str | None = typer.Option(
        None,
        "--base",
        metavar="REF",
        help="Compare HEAD with its merge base with REF. Default: the default branch "
        "(origin/$GITHUB_BASE_REF in GitHub Actions, else origin/HEAD, origin/main, main, ...).",
    ),
    summary: Path | None = typer.Option(
        None,
        "--summary",
        metavar="FILE",
        help="Also append the Markdown report to FILE (CI passes $GITHUB_STEP_SUMMARY). Never truncates it.",
    ),
    repo: Path = typer.Option(Path("."), "--repo", metavar="DIR", help="A folder inside the git repository to check."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of the Markdown report."),
) -> None:
    """Judge the record folders a pull request adds or changes, and check the README leaderboard.

    Finds the folders under records/<track>/ changed between the merge base and HEAD, judges each (its
    baseline/ sub-folder as the baseline), checks that the README tables match records/, and prints one
    Markdown report. Logs and code from the submission are read as text, never run. A record the judge
    can only send for review does not pass unless a waiver in its record.toml covers it; waivers a change
    adds are listed for the maintainers.

    Exit codes: 0 all pass; 1 a rule fails or the README is stale; 2 bad input; 3 an internal error;
    4 a record needs a maintainer's review.
    """
    from speedrun.ci import check as pr_check
    from speedrun.console import error, printable

    report = pr_check.run_ci(repo, base)
    markdown = pr_check.to_markdown(report)
    if summary is not None:
        pr_check.append_summary(summary, markdown)
    if as_json:
        sys.stdout.write(pr_check.dumps(report) + "\n")
    else:
        # The Markdown as it is, on a terminal too: rendered, its tables and paragraphs would be folded at the
        # terminal's width, cutting the file:line of each check in two.
        sys.stdout.write(printable(markdown, newlines=True))
    for problem in report.problems:
        error(problem)
    raise typer.Exit(report.exit_code)

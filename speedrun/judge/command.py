"""`speedrun judge`: say pass, fail or review on a submission's logs, with the figures and the lines behind them."""

from __future__ import annotations

import datetime
from pathlib import Path

import typer

from speedrun.errors import BadInput


def _day(value: str | None) -> datetime.date | None:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise BadInput(None, f"--as-of {value!r}: expected a date such as 2025-02-01") from None


def judge(
    paths: list[Path] = typer.Argument(
        ...,
        help="Folders of run logs (a record folder, or one of its sub-folders such as this_pr/) or single log "
        "files. Each path is judged on its own; a record folder is judged per sub-folder.",
        show_default=False,
        metavar="PATH",
    ),
    track: str | None = typer.Option(
        None,
        "--track",
        help="small or medium (or track_1_short / track_2_medium). Default: from the path, else the run's config "
        "line, else the model size; the output says which.",
    ),
    baseline: Path | None = typer.Option(
        None,
        "--baseline",
        help="Logs of the prior record re-run on the same hardware. Default: a baseline* sub-folder, if any.",
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        metavar="DATE",
        help="Judge by the rules in force on DATE (e.g. 2025-02-01). Default: the record's date, from its "
        "record.toml, else its folder name (2025-07-13_Name), else today.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document (a list, one object per group)."),
    markdown: Path | None = typer.Option(
        None, "--markdown", help="Also write a statistics.md-style summary to this file, to paste into a PR."
    ),
    force: bool = typer.Option(False, "--force", help="Let --markdown overwrite an existing file."),
    records: Path | None = typer.Option(
        None,
        "--records",
        help="The records/ folder holding track.toml and record.toml files. Default: ./records, else the project's.",
    ),
) -> None:
    """Judge a record submission from its logs: pass, fail, or review.

    Checks the rules in force on the record's date: the loss (one-sided t-test, p < 0.01), the timing lines,
    the speed against a baseline or the prior record, the compiler flags, the data pipeline, the hardware,
    the independence and completeness of the runs. Review means no rule fails but something could not be
    confirmed; waivers in the record's record.toml are applied and shown. Groups that are not the submission
    (other baselines, ablations, earlier versions) are reported apart and never decide. Every figure cites
    its log line as file:line. Nothing in the logs is ever executed.

    Exit codes: 0 pass; 1 a rule fails; 2 bad input; 3 an internal error; 4 review. With several paths:
    2 if any path is bad input, else 1 if any fails, else 4 if any needs review, else 0.
    """
    import json
    import sys

    from speedrun.console import error, out
    from speedrun.judge.judging import judge_path
    from speedrun.judge.report import bad_input_dict, print_table, to_json, to_markdown
    from speedrun.judge.verdict import BAD_INPUT_EXIT, EXIT_CODES, verdict_of

    if markdown is not None and markdown.exists() and not force:
        raise BadInput(markdown, "already exists: pass --force to overwrite it")
    if markdown is not None and not markdown.parent.is_dir():
        raise BadInput(markdown, "its folder does not exist")
    if baseline is not None and not baseline.exists():
        raise BadInput(baseline, "no such file or folder (--baseline)")
    if records is not None and not records.is_dir():
        raise BadInput(records, "no such folder (--records): pass the folder that holds <track>/track.toml")
    day = _day(as_of)
    judgements = []
    documents: list[dict[str, object]] = []
    problems: list[BadInput] = []
    for path in paths:
        try:
            found = judge_path(path, track=track, baseline=baseline, records_dir=records, as_of=day)
        except BadInput as e:
            if len(paths) == 1:
                raise
            problems.append(e)
            documents.append(bad_input_dict(path, str(e)))
            continue
        judgements.extend(found)
        documents.extend(to_json(found))

    if as_json:
        sys.stdout.write(json.dumps(documents, indent=2, allow_nan=False) + "\n")
    else:
        print_table(judgements, out)
    for problem in problems:
        error(str(problem))
    if markdown is not None:
        text = to_markdown(judgements, records)
        try:
            with markdown.open("w" if force else "x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            raise BadInput(markdown, "already exists: pass --force to overwrite it") from None
        except OSError as e:
            raise BadInput(markdown, f"cannot write: {e.strerror or e}") from None
    code = BAD_INPUT_EXIT if problems else EXIT_CODES[verdict_of(judgements)]
    if code:
        raise typer.Exit(code)

"""`speedrun judge`: say pass or fail on a submission's logs, with the figures and the lines behind them."""

from __future__ import annotations

from pathlib import Path

import typer

from speedrun.errors import BadInput


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
    """Judge a record submission from its logs: exit 0 when every path passes, 1 when a rule fails, 2 on bad input.

    Checks the loss (one-sided t-test, p < 0.01), the timing lines, the speed against a baseline or the
    current record, the compiler flags, the data pipeline, the hardware and the independence of the runs.
    Every figure and failure cites its log line as file:line. Nothing in the logs is ever executed.
    """
    import json
    import sys

    from speedrun.console import out
    from speedrun.judge.judging import judge_path
    from speedrun.judge.report import print_table, to_json, to_markdown

    if markdown is not None and markdown.exists() and not force:
        raise BadInput(markdown, "already exists: pass --force to overwrite it")
    if markdown is not None and not markdown.parent.is_dir():
        raise BadInput(markdown, "its folder does not exist")
    if baseline is not None and not baseline.exists():
        raise BadInput(baseline, "no such file or folder (--baseline)")
    if records is not None and not records.is_dir():
        raise BadInput(records, "no such folder (--records): pass the folder that holds <track>/track.toml")
    judgements = []
    for path in paths:
        judgements.extend(judge_path(path, track=track, baseline=baseline, records_dir=records))

    if as_json:
        sys.stdout.write(json.dumps(to_json(judgements), indent=2, allow_nan=False) + "\n")
    else:
        print_table(judgements, out)
    if markdown is not None:
        text = to_markdown(judgements, records)
        try:
            with markdown.open("w" if force else "x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            raise BadInput(markdown, "already exists: pass --force to overwrite it") from None
        except OSError as e:
            raise BadInput(markdown, f"cannot write: {e.strerror or e}") from None
    if any(j.verdict != "pass" for j in judgements):
        raise typer.Exit(1)

"""`speedrun leaderboard` and `speedrun records new`. Heavy modules load inside the commands."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import typer
from rich.markup import escape

records_app = typer.Typer(
    help="Manage the records/ store: one folder per record, with its record.toml and run logs.",
    no_args_is_help=True,
)

_RECORDS_HELP = "The records/ folder: records/<track>/<YYYY-MM-DD>_<Name>/record.toml (default: ./records)."


def leaderboard(
    records: Path | None = typer.Option(None, "--records", help=_RECORDS_HELP, show_default=False),
    logs: Path | None = typer.Option(
        None,
        "--logs",
        help="A local copy of the upstream repository's records/ folder: log links that are upstream URLs "
        "resolve there, and the judge verifies those rows and records its figures in their record.toml. "
        "Without it only logs inside record folders are judged; the other rows show their recorded figures.",
        show_default=False,
    ),
    readme: Path = typer.Option(Path("README.md"), "--readme", help="The README whose marked tables are regenerated."),
    chart: Path | None = typer.Option(
        None,
        "--chart",
        help="The chart SVG to write (default: docs/record-history.svg beside the README).",
        show_default=False,
    ),
    templates: Path | None = typer.Option(
        None,
        "--templates",
        help="A folder of templates overriding the packaged table.md.j2, chart.md.j2, chart.svg.j2.",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Write nothing; exit 1 with a short diff when the README, the chart or a record's [verified] "
        "figures are out of date.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the rows, their verification and the stale files as JSON."
    ),
) -> None:
    """Regenerate the record tables in the README and the record-history chart from records/.

    Rows whose logs are on this machine (in their record folder, or under --logs) are judged: the figures
    (runs, mean loss, p-value, the time the logs give and whether it is the published one, each log's
    sha256) go into the [verified] block of their record.toml, which nothing else in the file changes.
    The README shows each row's recorded figures; rows without any say 'unverified'. A log whose sha256
    differs from the recorded one is reported.

    Exit 0 up to date or written, 1 out of date with --check, 2 bad input.
    """
    from speedrun.console import err, out, printable, say
    from speedrun.leaderboard.generate import diff, generate, to_json, write

    board = generate(records, readme, chart=chart, logs_dir=logs, templates=templates)
    stale = board.stale
    for change in board.log_changes:
        err.print(f"[yellow]changed:[/] {escape(printable(change))}", soft_wrap=True)
    if as_json:
        typer.echo(json.dumps({**to_json(board), "check": check, "written": [] if check else [str(p) for p in stale]}))
        if not check:
            write(board)
        raise typer.Exit(1 if check and stale else 0)
    summary = (
        f"{len(board.records)} records: {len(board.figures)} with the judge's figures, "
        f"{len(board.verifications)} of them read from their logs now"
    )
    if check and stale:
        out.print(printable(diff(board), newlines=True), markup=False, highlight=False, soft_wrap=True)
        say(out, f"out of date: {_files(stale)} ({summary}); run `speedrun leaderboard` to regenerate")
        raise typer.Exit(1)
    written = [] if check else write(board)
    if written:
        say(out, f"wrote {_files(written)} ({summary})")
    else:
        say(out, f"up to date: {_files([board.readme, board.chart])} ({summary})")


def _files(paths: list[Path]) -> str:
    """The files by name, the record.toml files by count: a regeneration can touch a hundred of them."""
    from speedrun.console import shown_path

    tomls = [p for p in paths if p.name == "record.toml"]
    named = [shown_path(p) for p in paths if p.name != "record.toml"]
    if len(tomls) == 1:
        named.append(shown_path(tomls[0]))
    elif tomls:
        named.append(f"{len(tomls)} record.toml files")
    return ", ".join(named)


@records_app.command()
def new(
    logs: list[Path] = typer.Argument(..., help="Run logs, or folders of them (sub-folders such as baseline/ kept)."),
    name: str = typer.Option(
        ..., "--name", help="The folder's name after the date, e.g. BatchSize (letters, digits, -)."
    ),
    track: str = typer.Option(..., "--track", help="small, medium, or a full track name."),
    description: str = typer.Option(..., "--description", help="One line: what the record changes."),
    contributor: list[str] = typer.Option([], "--contributor", help="A contributor, e.g. @handle; repeat for several."),
    pull_request: list[str] = typer.Option([], "--pr", help="The pull request URL; repeat for several."),
    date: str | None = typer.Option(
        None, "--date", help="The record's date, YYYY-MM-DD (default: today).", show_default=False
    ),
    records: Path | None = typer.Option(None, "--records", help=_RECORDS_HELP, show_default=False),
    force: bool = typer.Option(False, "--force", help="Write the folder even when the judge fails the logs."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the new record's fields and the judge's figures as JSON."
    ),
) -> None:
    """Scaffold a record folder from a set of logs: the judge fills the number, time and figures.

    The logs are copied into records/<track>/<date>_<name>/ beside a record.toml. Nothing is overwritten.
    Exit 0 written, 1 the judge fails the logs (nothing written without --force), 2 bad input.
    """
    from speedrun.console import out, say
    from speedrun.errors import BadInput
    from speedrun.leaderboard.scaffold import scaffold

    try:
        day = datetime.date.today() if date is None else datetime.date.fromisoformat(date)
    except ValueError:
        raise BadInput(None, f"--date {date!r} is not YYYY-MM-DD") from None
    result = scaffold(
        logs,
        track=track,
        name=name,
        description=description,
        contributors=contributor,
        pull_requests=pull_request,
        day=day,
        records_dir=records,
        force=force,
    )
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        say(out, result.summary(), hang=4)
    raise typer.Exit(0 if result.written else 1)

"""The `speedrun` command. Thin: each command lives beside the code it drives and imports heavy
modules (scipy, pandas, torch) only when it runs, so `speedrun --help` stays fast."""

from __future__ import annotations

import os
import sys

import typer

from speedrun import __version__
from speedrun.ci.command import ci
from speedrun.errors import BadInput
from speedrun.judge.command import judge
from speedrun.leaderboard.command import leaderboard, records_app
from speedrun.trainer.command import data_app, train
from speedrun.trainer.reproduce import reproduce

app = typer.Typer(
    name="speedrun",
    help="Run and referee the NanoGPT speedrun: train, judge a record's logs, regenerate the leaderboard.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
app.command(no_args_is_help=True)(judge)
app.command()(leaderboard)
app.add_typer(records_app, name="records")
app.add_typer(data_app, name="data")
app.command()(train)
app.command(no_args_is_help=True)(reproduce)
app.command()(ci)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"speedrun {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Run and referee the NanoGPT speedrun."""


def main() -> None:
    """Entry point: exit 0 pass, 1 rule failure, 2 bad input; never a traceback for bad input."""
    from speedrun.console import error

    try:
        app()
    except BadInput as e:
        error(str(e))
        sys.exit(2)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)
    except Exception as e:  # a bug of ours, not the user's input: still one line unless asked
        if os.environ.get("SPEEDRUN_DEBUG"):
            raise
        error(f"internal error: {type(e).__name__}: {e} (set SPEEDRUN_DEBUG=1 for the traceback)")
        sys.exit(3)


if __name__ == "__main__":
    main()

"""The `speedrun` command. Thin: each command lives beside the code it drives and imports heavy
modules (scipy, jinja2, torch) only when it runs, so `speedrun --help` stays fast."""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

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


def unwrap_paragraphs(text: str) -> str:
    """Docstring text with each paragraph on one line, so the terminal wraps it at its own width.

    typer keeps a docstring's line breaks, which then break sentences in the middle on any terminal wider
    or narrower than the source. Indented lines (examples) keep their own lines.
    """
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines = paragraph.splitlines()
        literal = any(line.startswith((" ", "\t")) for line in lines)
        paragraphs.append(paragraph if literal else " ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


def _readable_help(typer_app: typer.Typer) -> None:
    """Give every command of `typer_app` (sub-apps included) its docstring with unwrapped paragraphs."""
    for info in typer_app.registered_commands:
        if info.help is None and info.callback is not None:
            info.help = unwrap_paragraphs(inspect.getdoc(info.callback) or "")
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _readable_help(group.typer_instance)


def _no_value_label_on_flags() -> None:
    """Keep typer from labelling flags with a value type (`--json <bool>`), as if they took an argument.

    Recent typer versions print every option's type beside it in the help; a flag takes no value, so its
    label only misleads. Older versions print none for flags and lack this method: nothing to do there.
    """
    option_class = getattr(typer.core, "TyperOption", None)
    labelled = getattr(option_class, "display_type_rich", None)
    if option_class is None or labelled is None or getattr(labelled, "_flags_unlabelled", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else labelled(self, ctx)

    display_type_rich._flags_unlabelled = True  # type: ignore[attr-defined]
    option_class.display_type_rich = display_type_rich


_readable_help(app)
_no_value_label_on_flags()


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
    """Entry point: exit 0 pass, 1 rule failure, 2 bad input, 3 internal error, 4 review; no traceback for bad
    input."""
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

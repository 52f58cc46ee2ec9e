"""`speedrun leaderboard` and `speedrun records`: placeholder until the leaderboard lands."""

from __future__ import annotations

import typer

records_app = typer.Typer(help="Manage the records/ store.", no_args_is_help=True)


def leaderboard() -> None:
    """Regenerate the README record tables."""
    raise NotImplementedError


@records_app.command()
def new() -> None:
    """Scaffold a new record folder."""
    raise NotImplementedError

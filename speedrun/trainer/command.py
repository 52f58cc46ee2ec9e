"""`speedrun train` and `speedrun data`: placeholder until the trainer lands."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Fetch or make training data shards.", no_args_is_help=True)


def train() -> None:
    """Train the reference model."""
    raise NotImplementedError


@data_app.command()
def synthetic() -> None:
    """Write synthetic shards."""
    raise NotImplementedError

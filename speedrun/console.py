"""Shared rich consoles. Rich colours only on a TTY and honours NO_COLOR, as the CLI promises."""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """Print a one-line error (the message names the file first) to stderr."""
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)

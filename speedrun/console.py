"""Shared rich consoles. Rich colours only on a TTY and honours NO_COLOR, as the CLI promises."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """Print a one-line error (the message names the file first) to stderr, brackets in it kept as typed."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)

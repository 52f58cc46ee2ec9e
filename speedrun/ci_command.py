"""`speedrun ci`: placeholder until the pull-request check lands."""

from __future__ import annotations


def ci() -> None:
    """Judge the records a pull request adds or changes."""
    raise NotImplementedError

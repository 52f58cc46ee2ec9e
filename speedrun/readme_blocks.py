"""Generated blocks of README.md: the text between a begin marker and an end marker, rewritten by the command
that owns it (`speedrun leaderboard`, the technique table, the rule table)."""

from __future__ import annotations

from pathlib import Path

from speedrun.errors import BadInput


def replace_block(text: str, begin: str, end: str, content: str, path: Path) -> str:
    """`text` with what lies between `begin` and `end` replaced by `content`, a blank line either side, in the
    text's own line endings. BadInput naming `path` when a marker is missing or doubled, or the end comes first."""
    if text.count(begin) != 1 or text.count(end) != 1:
        found = f"found {text.count(begin)} and {text.count(end)}"
        raise BadInput(path, f"needs exactly one {begin} line and one {end} line ({found})")
    start, stop = text.index(begin) + len(begin), text.index(end)
    if stop < start:
        raise BadInput(path, f"{end} comes before {begin}")
    newline = "\r\n" if text[start:].startswith("\r\n") else "\n"
    body = content.strip("\n").replace("\n", newline)
    return text[:start] + newline + newline + body + newline + newline + text[stop:]

"""Shared rich consoles, and `printable`, which every string from a log or a file name passes through before it
reaches the terminal. Rich colours only on a TTY and honours NO_COLOR, as the CLI promises."""

from __future__ import annotations

import textwrap
import unicodedata
from pathlib import Path

from rich.console import Console
from rich.text import Text

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with every character the terminal would act on shown as an escape instead: control characters
    (`ESC [31m` becomes `\\x1b[31m`), bidirectional overrides and other invisible formatting (`\\u202e`).

    A submission controls its file names, GPU names and log lines; printed raw, they could recolour the screen,
    move the cursor, hide text or rewrite an earlier line. With `newlines`, line breaks and tabs are kept
    (multi-line reports, diffs); otherwise the result is one line. Rich markup (`[red]`) is a separate matter:
    print the result as a `rich.text.Text` (or with `markup=False`) so that brackets are shown, not interpreted.
    """
    if text.isprintable():  # the common case, in C
        return text
    return "".join(_escape(c, newlines) for c in text)


# What a terminal acts on rather than shows: control characters (C0, DEL, C1), invisible formatting such as
# bidirectional overrides, line and paragraph separators, and code points with no character. Spaces other than
# ASCII's (a no-break space in a table) are shown as spaces.
_ACTED_ON = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(c: str, newlines: bool) -> str:
    if c.isprintable() or (newlines and c in "\n\t") or unicodedata.category(c) not in _ACTED_ON:
        return c
    if c in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def error(message: str) -> None:
    """Print a one-line error (the message names the file first) to stderr, escaped, never read as markup."""
    err.print(Text.assemble(("error:", "bold red"), " ", printable(message)), soft_wrap=True)


MIN_WRAP = 40  # never wrap into a column narrower than this, however narrow the terminal


def wrap(text: str, width: int, indent: int = 0, hang: int = 2) -> list[str]:
    """`text` in lines of at most `width` characters where it can be, broken at spaces only, never inside a word:
    a path (`records/.../run.txt:4601`) stays whole on one line, to be grepped or clicked, however narrow the
    terminal. The first line is indented by `indent` spaces, the lines continuing it by `indent + hang`."""
    first, rest = " " * indent, " " * (indent + hang)
    return textwrap.wrap(
        text,
        width=max(width, len(rest) + MIN_WRAP),
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first]


def say(console: Console, text: str, hang: int = 2) -> None:
    """Print `text` (escaped, never read as markup) wrapped to the console's width by `wrap`: each of its lines
    keeps its own indentation, and the lines continuing it hang `hang` spaces further in."""
    for line in printable(text, newlines=True).replace("\t", " ").splitlines():
        indent = len(line) - len(line.lstrip(" "))
        for part in wrap(line.strip(), console.width, indent, hang):
            console.print(Text(part), soft_wrap=True)


def shown_path(path: Path) -> str:
    """`path` as a message names it: relative to the working folder when it lies inside it (shorter, and the
    same on every machine), else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (OSError, ValueError):
        return str(path)

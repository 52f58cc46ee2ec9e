"""What reaches the terminal: control characters shown as escapes, rich markup shown as text."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from speedrun import console
from speedrun.console import printable
from speedrun.errors import BadInput
from speedrun.judge.report import print_table
from tests.test_report import judgement


def test_printable_shows_what_the_terminal_would_act_on() -> None:
    assert printable("plain text, ü and 漢字") == "plain text, ü and 漢字"
    assert printable("a\x1b[31mred\x07") == "a\\x1b[31mred\\x07"
    assert printable("line\nbreak\ttab\r") == "line\\nbreak\\ttab\\r"
    assert printable("line\nbreak\ttab\x1b", newlines=True) == "line\nbreak\ttab\\x1b"
    assert printable("evil\u202etxt.exe\u200b") == "evil\\u202etxt.exe\\u200b"
    assert printable("\x9b31m") == "\\x9b31m"  # the one-byte CSI of C1
    assert printable("\U000e0041") == "\\U000e0041"


def test_bad_input_escapes_its_file_and_problem() -> None:
    error = BadInput(Path("/tmp/run\x1b[2J.txt"), "line 3: 'step:\x1b]0;title\x07'\nsecond line")
    assert str(error) == "/tmp/run\\x1b[2J.txt: line 3: 'step:\\x1b]0;title\\x07' second line"


def test_an_error_with_markup_prints_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=buffer, width=200))
    console.error("runs/[/][bold red]x.txt: problem")
    assert buffer.getvalue() == "error: runs/[/][bold red]x.txt: problem\n"


def test_the_table_shows_hostile_names_as_text() -> None:
    hostile = replace(judgement(), path=Path("/r/[/bold red]x\x1b[2J"))
    buffer = io.StringIO()
    print_table([hostile], Console(file=buffer, width=300))
    shown = buffer.getvalue()
    assert "[/bold red]x\\x1b[2J" in shown and "\x1b" not in shown


def test_printable_keeps_spaces_it_need_not_escape() -> None:
    assert printable("45\xa0minutes 2024\u201105\u201128") == "45\xa0minutes 2024\u201105\u201128"
    assert printable("a\u2028b") == "a\\u2028b"  # a line separator is acted on

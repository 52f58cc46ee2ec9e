"""Statistics a record folder's notes state: the p-values its README or statistics.md claims.

Some accepted records state p < 0.01 over runs whose logs are not in the folder (a README listing 80 losses
beside the one log it keeps). The loss rule cannot confirm such a claim, so it does not fail on it either:
it asks for a review and cites the line. The notes are read as text, bounded, and never trusted further.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from speedrun.judge.runlog import Evidence

NOTE_NAMES = ("readme.md", "statistics.md")
MAX_NOTE_BYTES = 256 * 1024  # a README larger than this is read up to here
# `p=0.0025`, `p = 0.0000`, `p(val_loss < 3.28) = **0.0024**`, `p<0.001`, `p-value: 0.003`
_STATED_P = re.compile(
    r"(?<![\w.])p(?:-value)?(?:\([^)\n]{0,20}\))?\s*(?P<relation>=|<|:)\s*\**\s*`?(?P<value>[0-9]*\.[0-9]+(?:e-?\d+)?)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class StatedStatistic:
    """A p-value stated in a note, with the line that states it."""

    p: float
    relation: str  # "=" or "<"
    evidence: Evidence

    def __str__(self) -> str:
        return f"p{self.relation}{self.p:g} ({self.evidence})"


def stated_p_values(folders: list[Path]) -> tuple[StatedStatistic, ...]:
    """Every p-value stated in the README.md / statistics.md of the given folders (each read once)."""
    found: list[StatedStatistic] = []
    for folder in dict.fromkeys(f.resolve() for f in folders):
        try:
            notes = sorted(p for p in folder.iterdir() if p.name.lower() in NOTE_NAMES and p.is_file())
        except OSError:
            continue
        for note in notes:
            found.extend(_read(note))
    return tuple(found)


def _read(note: Path) -> list[StatedStatistic]:
    try:
        with note.open("rb") as f:
            text = f.read(MAX_NOTE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _STATED_P.finditer(line):
            try:
                value = float(match["value"])
            except ValueError:
                continue
            relation = "<" if match["relation"] == "<" else "="
            found.append(StatedStatistic(value, relation, Evidence(note, number)))
    return found

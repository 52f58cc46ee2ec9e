"""What a parsed run log holds. Produced by `parse.py`, consumed by the rules and the reports.

Every figure keeps the 1-based line number it was read from, so any check can cite `file:line`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import compress, count, repeat
from operator import is_, is_not, itemgetter
from pathlib import Path
from typing import Any, NamedTuple, overload


@dataclass(frozen=True)
class Evidence:
    """Where a figure came from: a file and a 1-based line number (0 when it is the whole file)."""

    file: Path
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else str(self.file)


class StepLine(NamedTuple):
    """One `step:N/M ...` (or llm.c `s:N tel:X`) line of a log.

    A NamedTuple rather than a frozen dataclass: a log holds thousands of these (the upstream archive about
    two million), and a NamedTuple is built five times faster. Fields read the same; use `_replace` and
    `_asdict` where a dataclass would use `dataclasses.replace` and `asdict`.
    """

    step: int
    total_steps: int | None
    line: int
    val_loss: float | None = None
    train_loss: float | None = None
    train_time_ms: float | None = None
    step_avg_ms: float | None = None


# Columns of steps, read with itemgetter: faster than attrgetter over thousands of StepLines.
_STEP = itemgetter(StepLine._fields.index("step"))
_TOTAL = itemgetter(StepLine._fields.index("total_steps"))
_VAL_LOSS = itemgetter(StepLine._fields.index("val_loss"))
_TRAIN_TIME = itemgetter(StepLine._fields.index("train_time_ms"))
_NEW_STEP = tuple.__new__  # builds a StepLine straight from its fields: StepLine's own __new__ is slower


class StepLines(Sequence[StepLine]):
    """A run's step lines kept as columns, one tuple per field, each StepLine made when it is asked for.

    Logs hold thousands of step lines (the archive a million and a half), and after parsing the rules read them
    as columns, and only a few lines whole (the val lines, the final one, a line they cite): making a StepLine
    for every line cost as much as reading them. It reads as a tuple of StepLines: indexes, slices (tuples),
    iteration, equality and repr are a tuple's.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: tuple[Sequence[Any], ...]) -> None:
        self.fields = fields  # StepLine's fields, in its order, one tuple each

    def __len__(self) -> int:
        return len(self.fields[0])

    @overload
    def __getitem__(self, index: int) -> StepLine: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[StepLine, ...]: ...

    def __getitem__(self, index: int | slice) -> StepLine | tuple[StepLine, ...]:
        step, total, line, val_loss, train_loss, train_time, step_avg = self.fields
        if isinstance(index, slice):
            return tuple(map(_NEW_STEP, repeat(StepLine), zip(*(f[index] for f in self.fields), strict=True)))
        i = index
        return _NEW_STEP(StepLine, (step[i], total[i], line[i], val_loss[i], train_loss[i], train_time[i], step_avg[i]))

    def __iter__(self) -> Iterator[StepLine]:
        return map(_NEW_STEP, repeat(StepLine), zip(*self.fields, strict=True))

    def __reversed__(self) -> Iterator[StepLine]:
        return map(_NEW_STEP, repeat(StepLine), zip(*(reversed(f) for f in self.fields), strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StepLines):  # a column may be a range or a tuple: compared by value
            return all(tuple(a) == tuple(b) for a, b in zip(self.fields, other.fields, strict=True))
        if isinstance(other, (tuple, list)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


class FloatTexts(Sequence[float]):
    """A column of numbers kept as the texts a regex matched (each a plain decimal or `nan`, so each converts),
    converted when read: the rules read step_avg at the val lines only, so most of a log's step_avg texts are
    never converted."""

    __slots__ = ("texts",)

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, index: int) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[float, ...]: ...

    def __getitem__(self, index: int | slice) -> float | tuple[float, ...]:
        if isinstance(index, slice):
            return tuple(map(float, self.texts[index]))
        return float(self.texts[index])

    def __iter__(self) -> Iterator[float]:
        return map(float, self.texts)

    def __reversed__(self) -> Iterator[float]:
        return map(float, reversed(self.texts))


class StepColumns(NamedTuple):
    """A run's step lines as columns, in line order, and which of them carry a val loss."""

    step: tuple[int, ...]
    total_steps: tuple[int | None, ...]
    val_loss: tuple[float | None, ...]
    train_time_ms: tuple[float | None, ...]
    val_rows: tuple[int, ...]  # the indexes of the lines with a val loss: a few among thousands
    untimed: int  # how many lines carry no train_time (counted once: comparing floats with None is slow)

    def train(self, column: tuple[Any, ...]) -> list[Any]:
        """A column without the val lines: the training steps'. The few val lines are cut out and the pieces
        between them copied whole, far faster than testing every line."""
        kept: list[Any] = []
        start = 0
        for row in self.val_rows:
            kept += column[start:row]
            start = row + 1
        kept += column[start:]
        return kept


@dataclass(frozen=True)
class GpuInfo:
    """The GPUs listed in a log's nvidia-smi block."""

    names: tuple[str, ...]
    line: int
    driver: str | None = None
    cuda: str | None = None

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def model(self) -> str:
        """The GPU model, or the distinct models joined with ' + ' when they differ."""
        return " + ".join(dict.fromkeys(self.names)) if self.names else "unknown"


@dataclass(frozen=True)
class RunLog:
    """One run log, parsed. `source` is the embedded training code (text only, never executed)."""

    path: Path
    format: str  # "llmc", "step-lines" (2024 plain), "speedrun" (code + `=` line + env + steps)
    sha256: str
    steps: Sequence[StepLine]  # a tuple, or StepLines (the same, kept as columns)
    source: str | None = None
    source_lines: int = 0  # the embedded source is lines 1..source_lines of the file
    versions: dict[str, str] = field(default_factory=dict)  # python, torch, triton, cuda -> version
    version_lines: dict[str, int] = field(default_factory=dict)
    gpus: GpuInfo | None = None
    peak_memory_mib: float | None = None
    peak_memory_line: int = 0
    seed: int | None = None
    seed_line: int = 0
    # Lines only our own trainer writes (None / 0 in upstream logs): the resolved run config as parsed JSON,
    # the hash of the data pipeline source, the token shards it read (names, and the facts of their headers),
    # and how many processes trained.
    config: dict[str, Any] | None = None
    config_line: int = 0
    data_pipeline_sha256: str | None = None
    train_files: str | None = None
    train_files_line: int = 0
    val_files: str | None = None
    val_files_line: int = 0
    # The `data:` line: what the shards' headers said (names, token counts, a synthetic language or null).
    data: dict[str, Any] | None = None
    data_line: int = 0
    world_size: int | None = None
    world_size_line: int = 0
    # Why the embedded source is not Python as a whole (None when it is, or when there is none), and the line of
    # the log the problem is on (0: the whole source). Nothing read from such a source can be confirmed.
    source_problem: str | None = None
    source_problem_line: int = 0
    # Our trainer's own log: its source is the trainer's files, each under a `# >>> speedrun/trainer/<file>` line.
    sectioned: bool = False

    @property
    def is_ours(self) -> bool:
        """Written by our own trainer: its source sections, its config line or its data line say so."""
        return self.sectioned or self.config is not None or self.data is not None

    def keep_columns(self, columns: StepColumns) -> None:
        """Keep the columns of `steps` the parser built on the way, so that `columns` need not build them."""
        self.__dict__["columns"] = columns  # where cached_property keeps its value

    @cached_property
    def columns(self) -> StepColumns:
        """The step lines column by column, kept: the rules scan thousands of steps per run several times, and a
        column is scanned with `map` far faster than the lines one by one. The parser hands over the columns it
        built (`keep_columns`); otherwise they are built here."""
        steps = self.steps
        val_loss = tuple(map(_VAL_LOSS, steps))
        times = tuple(map(_TRAIN_TIME, steps))
        return StepColumns(
            tuple(map(_STEP, steps)),
            tuple(map(_TOTAL, steps)),
            val_loss,
            times,
            tuple(compress(count(), map(is_not, val_loss, repeat(None)))),
            sum(map(is_, times, repeat(None))),
        )

    @cached_property
    def train_columns(self) -> tuple[list[int], list[float | None]]:
        """(step numbers, train_time) of the training steps' lines: the step lines without a val loss."""
        columns = self.columns
        return columns.train(columns.step), columns.train(columns.train_time_ms)

    @cached_property
    def val_steps(self) -> tuple[StepLine, ...]:
        # Cached: the rules ask for it several times per run. A frozen dataclass without slots keeps an instance
        # __dict__, where cached_property stores the tuple.
        steps = self.steps
        return tuple(steps[row] for row in self.columns.val_rows)

    def train_step(self, index: int) -> StepLine:
        """The `index`-th training step's line (the step lines without a val loss, in order)."""
        rows = self.columns.val_rows
        row = index
        for val_row in rows:  # each val line before it shifts it by one
            if val_row <= row:
                row += 1
            else:
                break
        return self.steps[row]

    @cached_property
    def final(self) -> StepLine | None:
        """The last line that carries a val loss: the run's result."""
        rows = self.columns.val_rows
        return self.steps[rows[-1]] if rows else None

    @property
    def final_val_loss(self) -> float | None:
        f = self.final
        return None if f is None else f.val_loss

    @property
    def train_time_ms(self) -> float | None:
        f = self.final
        return None if f is None else f.train_time_ms

    def at(self, line: int) -> Evidence:
        return Evidence(self.path, line)

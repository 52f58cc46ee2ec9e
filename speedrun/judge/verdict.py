"""Checks and verdicts: what the rules return and what the reports format."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from speedrun.judge.runlog import Evidence, RunLog


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    NOT_APPLICABLE = "n/a"


@dataclass(frozen=True)
class Check:
    """The outcome of one rule: a status, a one-line reason, and the lines that back it."""

    rule: str
    status: Status
    detail: str
    evidence: tuple[Evidence, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)  # machine-readable numbers for --json


@dataclass(frozen=True)
class Summary:
    n: int
    mean_val_loss: float
    std_val_loss: float
    p_value: float | None
    mean_train_time_s: float | None
    median_train_time_s: float | None
    std_train_time_s: float | None = None
    min_train_time_s: float | None = None
    max_train_time_s: float | None = None
    runs_needed: int | None = None  # runs for p < 0.01 at the observed mean and std


@dataclass(frozen=True)
class Judgement:
    """The verdict on one judged path (a folder of runs, a sub-folder, or one file)."""

    path: Path
    track: str
    track_reason: str  # how the track was chosen: "--track", "path", "model size"
    runs: tuple[RunLog, ...]
    summary: Summary
    checks: tuple[Check, ...]
    baseline: Judgement | None = None

    @property
    def verdict(self) -> str:
        return "fail" if any(c.status is Status.FAIL for c in self.checks) else "pass"

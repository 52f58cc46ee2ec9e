"""Checks and verdicts: what the rules return, how they become pass / fail / review, and what the reports format.

`decide` is the one place where checks become a verdict:

- FAIL when a rule in force fails and no waiver covers it;
- REVIEW when nothing fails but something in force could not be confirmed: a warning, a rule that could not
  be checked, statistics stated outside the logs, a run that ended before its final val line, or a
  systems-only waiver whose evidence disagrees with it; a maintainer must look;
- PASS otherwise. A waived check counts as passed, and the reports say which waiver covered it.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from speedrun.judge.runlog import Evidence, RunLog
from speedrun.store import Waiver

SIGNIFICANCE = 0.01  # the level of every test the rules make on losses: rule 2's p < 0.01


class Status(str, Enum):
    """The outcome of one rule on one group of runs."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"  # something looks wrong, but only a maintainer can tell
    UNCHECKED = "unchecked"  # the rule is in force but the logs lack what it needs
    NOT_APPLICABLE = "n/a"  # the rule does not apply here (not in force on the record's date, a baseline...)


class Verdict(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    REVIEW = "review"


class Role(str, Enum):
    """What a group of runs in a record folder is: the submission, the prior record re-run beside it, or else."""

    CANDIDATE = "candidate"
    BASELINE = "baseline"
    OTHER = "other"  # other baselines, ablations, earlier versions, single-GPU tests, logs of another kind


# The exit code of `speedrun judge` and `speedrun ci` for each verdict; bad input is 2, an internal error 3.
EXIT_CODES = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.REVIEW: 4}
BAD_INPUT_EXIT = 2


@dataclass(frozen=True)
class Check:
    """The outcome of one rule: a status, a one-line reason, and the lines that back it."""

    rule: str  # the rule's name, e.g. "loss"
    status: Status
    detail: str
    evidence: tuple[Evidence, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)  # machine-readable numbers for --json
    rule_id: str = ""  # the rule's stable id, e.g. "SR003": what waivers and CI key on


@dataclass(frozen=True)
class WaiverUse:
    """A waiver applied to one check, and whether the logs bear it out."""

    waiver: Waiver
    holds: bool  # False when a systems-only waiver's evidence shows the losses changed
    evidence: str = ""  # the one-line figures behind it ("losses match the baseline's: ...")


def waiver_use(check: Check, waivers: Iterable[Waiver]) -> WaiverUse | None:
    """The waiver that covers `check`, if any: one whose rule id is the check's and whose check did not pass.

    A systems-only waiver of the loss requirement is held against the baseline when there is one: the
    candidate's losses must not differ from the baseline's (Welch p >= 0.01), else it does not hold.
    """
    if check.status in (Status.PASS, Status.NOT_APPLICABLE):
        return None
    waiver = next((w for w in waivers if w.rule_id == check.rule_id), None)
    if waiver is None:
        return None
    if not waiver.systems_only:
        return WaiverUse(waiver, True)
    p = check.figures.get("baseline_loss_welch_p")
    difference = check.figures.get("baseline_loss_difference")
    if not isinstance(p, (int, float)) or not isinstance(difference, (int, float)) or not math.isfinite(p):
        return WaiverUse(waiver, True, "no baseline with two runs or more to compare the losses with")
    same = p >= SIGNIFICANCE
    verb = "do not differ from" if same else "differ from"
    return WaiverUse(waiver, same, f"losses {verb} the baseline's (mean Δ {difference:+.4f}, Welch p={p:.4f})")


def decide(checks: Sequence[Check], waivers: Sequence[Waiver] = ()) -> Verdict:
    """The verdict on one group of runs: the only function that turns checks into pass, fail or review."""
    review = False
    for check in checks:
        used = waiver_use(check, waivers)
        if used is not None:
            review |= not used.holds
        elif check.status is Status.FAIL:
            return Verdict.FAIL
        elif check.status in (Status.WARN, Status.UNCHECKED):
            review = True
    return Verdict.REVIEW if review else Verdict.PASS


def overall(verdicts: Iterable[Verdict]) -> Verdict:
    """Many verdicts as one: fail if any fails, else review if any needs review, else pass."""
    found = set(verdicts)
    return Verdict.FAIL if Verdict.FAIL in found else Verdict.REVIEW if Verdict.REVIEW in found else Verdict.PASS


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
class RulesDate:
    """The day whose rules a record is judged by, and how it was found."""

    day: datetime.date
    source: str  # "--as-of", "record.toml", "folder name", "today"

    def __str__(self) -> str:
        return f"{self.day} ({self.source})"


@dataclass(frozen=True)
class Judgement:
    """The verdict on one judged group of runs (a folder of runs, a sub-folder, or one file)."""

    path: Path
    track: str
    track_reason: str  # how the track was chosen: "--track", "path", "model size"
    runs: tuple[RunLog, ...]  # the complete runs: those with their final val line
    summary: Summary
    checks: tuple[Check, ...]
    baseline: Judgement | None = None
    role: Role = Role.CANDIDATE
    role_reason: str = ""  # how the role was recognised: "the name", "record.toml", "a log of another format"
    incomplete: tuple[RunLog, ...] = ()  # runs that end before their final val line: listed, never counted
    waivers: tuple[Waiver, ...] = ()
    rules_date: RulesDate | None = None

    @property
    def verdict(self) -> Verdict:
        return decide(self.checks, self.waivers)

    @property
    def decides(self) -> bool:
        """Whether this group's verdict is the submission's: only candidates decide."""
        return self.role is Role.CANDIDATE

    def waiver_of(self, check: Check) -> WaiverUse | None:
        return waiver_use(check, self.waivers)


def verdict_of(judgements: Iterable[Judgement]) -> Verdict:
    """The verdict on a judged path: its candidates' verdicts together (others never decide)."""
    return overall(j.verdict for j in judgements if j.decides)

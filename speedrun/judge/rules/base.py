"""What every rule shares: the `Rule` record of the registry, what a rule sees (`RuleInput`), and the helpers
that turn runs into figures and log lines into citations."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from speedrun.judge.fineweb import data_facts
from speedrun.judge.notes import StatedStatistic
from speedrun.judge.runlog import Evidence, RunLog
from speedrun.judge.verdict import Check, Status
from speedrun.tracks import Track

MAX_CITED = 5  # failing checks name at most this many lines in their detail (all are in `evidence`)


@dataclass(frozen=True)
class Rule:
    """One rule of the registry. Its history (when it is in force, the sentence it enforces, its parameters)
    is data in each track's track.toml, keyed by `id`."""

    id: str  # stable: JSON, waivers and CI key on it ("SR003")
    name: str  # what the reports show ("loss")
    check: Callable[[RuleInput], Check]
    summary: str  # one line for the README's rule table

    @property
    def doc(self) -> str:
        return (self.check.__doc__ or "").strip()


@dataclass(frozen=True)
class PriorRecord:
    """The record a submission is measured against, and the hashes its record.toml pins (its data pipeline,
    its code: what a baseline must run)."""

    number: int
    time_seconds: float
    label: str  # e.g. "record 83 (2026-05-20)"
    pipeline_hash: str | None = None  # only ever from the record.toml pin
    pipeline_evidence: Evidence | None = None
    pipeline_source: str = ""  # "pinned in its record.toml"
    code_sha256: tuple[str, ...] = ()  # sha256 of its embedded code, pinned in its record.toml


@dataclass(frozen=True)
class RuleInput:
    """What the rules see: the runs of one judged group, the track, and what they are compared with."""

    track: Track
    runs: tuple[RunLog, ...]  # the group's complete runs (each with its final val line)
    independent: tuple[RunLog, ...]  # the same runs with copies counted once
    baseline: tuple[RunLog, ...] | None = None  # the prior record re-run on the same hardware
    prior: PriorRecord | None = None
    prior_note: str = ""  # why there is no prior record, when there is none
    is_baseline: bool = False  # the group being judged is itself a baseline
    as_of: datetime.date | None = None  # the day whose rules apply (None: today)
    incomplete: tuple[RunLog, ...] = ()  # runs that end before their final val line
    stated: tuple[StatedStatistic, ...] = ()  # p-values the record's notes state
    retimes: int | None = None  # the record re-times this record number: not a new record
    first_of_track: bool = False  # the record is the track's first: there is nothing to be faster than
    baseline_checks: tuple[Check, ...] = ()  # the baseline's own checks: it must pass them to be evidence
    known_code: Mapping[str, str] = field(default_factory=dict)  # sha256 of other records' pinned code -> "record N"

    @property
    def day(self) -> datetime.date:
        return self.as_of or datetime.date.today()

    def parameter(self, rule_id: str, name: str, default: Any) -> Any:
        """A parameter of a rule's terms in force on the record's date (the default when there are none)."""
        terms = self.track.terms(rule_id, self.day)
        return terms.parameters.get(name, default) if terms else default


# From the most to the least serious: the status of a check made of several findings is the worst of theirs.
_SEVERITY = (Status.FAIL, Status.WARN, Status.UNCHECKED, Status.PASS, Status.NOT_APPLICABLE)


def worst(*statuses: Status) -> Status:
    """The most serious of statuses: fail, then warn, unchecked, pass, n/a."""
    return min(statuses, key=_SEVERITY.index)


def format_p(p: float | None) -> str:
    """A p-value as every report prints it: 4 decimals, tiny ones as 1.2e-05, n/a when undefined."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def cite(evidence: Iterable[Evidence]) -> str:
    cited = list(evidence)
    shown = ", ".join(map(str, cited[:MAX_CITED]))
    return shown + (f" and {len(cited) - MAX_CITED} more" if len(cited) > MAX_CITED else "")


def source_evidence(run: RunLog, source_line: int) -> Evidence:
    """A line of the embedded source as a line of the log file (late-2024 logs open with a `=` line first)."""
    if not run.source or source_line <= 0:
        return Evidence(run.path)
    first_file_line = run.source_lines - run.source.count("\n") + 1
    return run.at(source_line + first_file_line - 1)


def final_evidence(run: RunLog) -> Evidence:
    final = run.final
    return run.at(final.line) if final else Evidence(run.path)


def finite_losses(runs: Iterable[RunLog]) -> list[tuple[RunLog, float]]:
    pairs = [(r, r.final_val_loss) for r in runs]
    return [(r, v) for r, v in pairs if v is not None and math.isfinite(v)]


def timed_runs(runs: Iterable[RunLog]) -> list[tuple[RunLog, float]]:
    pairs = [(r, r.train_time_ms) for r in runs]
    return [(r, ms) for r, ms in pairs if ms is not None and math.isfinite(ms)]


def seconds(ms: float) -> float:
    return ms / 1000.0


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def not_fineweb(ri: RuleInput) -> str | None:
    """Why the group's runs did not train and validate on FineWeb, when their own logs say so (our trainer's
    synthetic or other shards), else None."""
    for run in ri.runs:
        facts = data_facts(run)
        if facts is not None and facts.known_elsewhere:
            return f"{run.path.name}: {facts.problems[0]}"
    return None


def on_other_tokens(check: Check, why: str) -> Check:
    """A loss or time measured on other tokens than FineWeb's says nothing of the target: unchecked, with what
    the check would have said."""
    detail = f"not measured on FineWeb ({why}): not compared; would be {check.status.value}: {check.detail}"
    figures = {**check.figures, "would_be": check.status.value}
    return replace(check, status=Status.UNCHECKED, detail=detail, figures=figures)

"""The rules of the speedrun: one registry of small named functions, each `(RuleInput) -> Check`.

Every rule has a stable id ("SR003"), a name and a check function (one file per rule, or per pair of eras of
one rule). When it is in force, the README sentence it enforces and its parameters are data in each track's
`track.toml`, so the history of the rules lives beside the targets. A record is judged by the rules in force
on its date; a rule that comes into force later is reported as n/a with what it would have said. The rules
only read parsed logs: nothing from a submission is run.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import replace

from speedrun.errors import BadInput
from speedrun.judge.rules.base import (
    PriorRecord,
    Rule,
    RuleInput,
    final_evidence,
    finite_losses,
    format_p,
    source_evidence,
    timed_runs,
)
from speedrun.judge.rules.compiler import COMPILE_FLAGS, check_compile_flags
from speedrun.judge.rules.complete_runs import COMPLETE_RUNS, check_complete_runs, why_incomplete
from speedrun.judge.rules.data_pipeline import DATA_PIPELINE, check_data_pipeline
from speedrun.judge.rules.hardware import HARDWARE, check_hardware
from speedrun.judge.rules.independence import INDEPENDENCE, check_independence, copies, independent_runs
from speedrun.judge.rules.loss import LOSS, MEAN_LOSS, check_loss, check_mean_loss
from speedrun.judge.rules.recipe import RECIPE, check_recipe
from speedrun.judge.rules.speed import SPEED, check_speed
from speedrun.judge.rules.timing import (
    GRACE_STEPS,
    TIMING,
    TIMING_WITH_GRACE,
    check_timing,
    check_timing_with_grace,
    timing_problems,
)
from speedrun.judge.verdict import Check, Status
from speedrun.tracks import RuleTerms, Track

# In the order the reports list them.
REGISTRY: tuple[Rule, ...] = (
    MEAN_LOSS,
    LOSS,
    TIMING_WITH_GRACE,
    TIMING,
    SPEED,
    COMPILE_FLAGS,
    DATA_PIPELINE,
    HARDWARE,
    INDEPENDENCE,
    COMPLETE_RUNS,
    RECIPE,
)
RULES_BY_ID = {rule.id: rule for rule in REGISTRY}

__all__ = [
    "GRACE_STEPS",
    "REGISTRY",
    "RULES_BY_ID",
    "PriorRecord",
    "Rule",
    "RuleInput",
    "apply_rules",
    "check_compile_flags",
    "check_complete_runs",
    "check_data_pipeline",
    "check_hardware",
    "check_independence",
    "check_loss",
    "check_mean_loss",
    "check_recipe",
    "check_speed",
    "check_timing",
    "check_timing_with_grace",
    "check_track_rules",
    "copies",
    "final_evidence",
    "finite_losses",
    "format_p",
    "independent_runs",
    "rule_table",
    "source_evidence",
    "timed_runs",
    "timing_problems",
    "why_incomplete",
]


def check_track_rules(track: Track) -> None:
    """Every `[[rules]]` entry of a track file names a rule of the registry: BadInput naming the file if not."""
    for terms in track.rules:
        if terms.id not in RULES_BY_ID:
            known = ", ".join(RULES_BY_ID)
            raise BadInput(track.path, f"rules: unknown rule id {terms.id!r} (the judge knows {known})")


def apply_rules(ri: RuleInput) -> tuple[Check, ...]:
    """Every rule in force on the record's date, in registry order; rules that come into force later are n/a,
    with what they would have said; rules no longer in force are left out."""
    day = ri.day
    checks = []
    for rule in REGISTRY:
        if ri.track.terms(rule.id, day) is not None:
            checks.append(rule.check(ri))
            continue
        later = [t.since for t in ri.track.rules if t.id == rule.id and t.since is not None and t.since > day]
        if later:
            checks.append(_not_yet_in_force(rule, ri, min(later)))
    return tuple(checks)


def _not_yet_in_force(rule: Rule, ri: RuleInput, since: datetime.date) -> Check:
    would = rule.check(ri)
    detail = f"not in force on {ri.day}, only from {since}; would be {would.status.value}: {would.detail}"
    figures = {**would.figures, "in_force_from": since.isoformat(), "would_be": would.status.value}
    return replace(would, status=Status.NOT_APPLICABLE, detail=detail, figures=figures)


# --- the README's rule table, generated from the registry and the track files ------------------------------------


def _period(terms: Sequence[RuleTerms]) -> str:
    parts = []
    for t in terms:
        if t.since and t.until:
            parts.append(f"{t.since} to {t.until}")
        elif t.since:
            parts.append(f"from {t.since}")
        elif t.until:
            parts.append(f"until {t.until}")
        else:
            parts.append("always")
    return "; ".join(parts) or "never"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rule_table(tracks: Sequence[Track]) -> str:
    """The Markdown table of every rule: id, name, when it is in force on each track, what it checks, and the
    README sentence it enforces. The README embeds it; a test keeps the two equal."""
    lines = [
        "| id | rule | in force | what it checks | the README sentence it enforces |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rule in sorted(REGISTRY, key=lambda r: r.id):
        periods = {track.alias: _period([t for t in track.rules if t.id == rule.id]) for track in tracks}
        if len(set(periods.values())) == 1:
            when = next(iter(periods.values()))
        else:
            when = "; ".join(f"{alias}: {period}" for alias, period in periods.items())
        first = next((t for track in tracks for t in track.rules if t.id == rule.id), None)
        quote = f"“{first.quote}” ({first.source})" if first else ""
        lines.append(f"| {rule.id} | {rule.name} | {when} | {_cell(rule.summary)} | {_cell(quote)} |")
    return "\n".join(lines) + "\n"

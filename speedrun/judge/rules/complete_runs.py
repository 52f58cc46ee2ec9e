"""A run's result is its val loss at its final step, and a group's runs are one experiment (SR010).

A log that ends before its final val line is not a result: it is listed and left out of every statistic, and
the verdict asks for a review rather than quietly reading the run at an earlier step. A group with no complete
run at all cannot be judged (bad input).

The final result must be one line: the val line at the step the run's total names, the only val line at that
step, with steps rising from line to line; a second final line, or one without the total, is a log that says
two things, and fails. The runs of a group are pooled into one statistic, so they must be one experiment: one
total number of steps and one code (comments, docstrings and layout aside), and the total the log prints must
be what the code schedules. Where they are not, the pooling cannot be confirmed: a review.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from itertools import islice
from operator import itemgetter, le, lt
from typing import NamedTuple

from speedrun.judge.discover import code_hash
from speedrun.judge.embedded import Block, code_difference
from speedrun.judge.rules.base import Rule, RuleInput, cite, source_evidence, worst
from speedrun.judge.runlog import Evidence, RunLog, StepLine
from speedrun.judge.verdict import Check, Status

ID = "SR010"
# The names the upstream scripts schedule their steps with, across the history: `num_iterations` (plus
# `iteration_extension` from 2025-09-21), then `num_scheduled_iterations` + `num_extension_iterations`.
_SCHEDULE_NAMES = ("num_iterations", "iteration_extension", "num_scheduled_iterations", "num_extension_iterations")
_SCHEDULE = re.compile(
    rf"[ \t]*({'|'.join(_SCHEDULE_NAMES)})[ \t]*(?::[ \t]*int[ \t]*)?=[ \t]*(\d{{1,9}})[ \t]*(?:#[^\n]*)?$",
    re.MULTILINE,
)
_STEP = itemgetter(StepLine._fields.index("step"))


def why_incomplete(run: RunLog) -> str | None:
    """Why a run is not a result, or None when its last val loss is at its final step."""
    final = run.final
    last = run.steps[-1] if run.steps else None
    if final is None:
        where = f" (last step line {last.step}/{last.total_steps})" if last else ""
        return f"no val loss line{where}"
    total = final.total_steps or (last.total_steps if last else None)
    if last is not None and last.step > final.step:
        return f"last val loss at step {final.step}, but the log goes on to step {last.step}/{total}"
    if total and final.step < total:
        return f"last val loss at step {final.step} of {total}: the log ends there"
    return None


def incomplete_evidence(run: RunLog) -> Evidence:
    last = run.steps[-1] if run.steps else None
    return run.at(last.line) if last else Evidence(run.path)


def final_result_problems(run: RunLog) -> Iterator[tuple[Evidence, str]]:
    """How a complete run's log fails to give one final result: step lines that go back, two val lines or two
    step lines at one step, lines without the run's total or with another, or a final val line that is not at
    the total."""
    final = run.final
    if final is None or run.format == "llmc":  # llm.c lines carry no total
        return
    vals = run.val_steps
    totals = run.columns.total_steps
    if totals.count(totals[0]) == len(totals):  # every line names one total, the usual case
        if totals[0] is None:
            return  # a log of one shape with no totals at all: nothing to hold a line against
        total, mixed = totals[0], False
    else:
        named = [t for t in dict.fromkeys(totals) if t is not None]
        if not named:
            return
        total, mixed = max(named, key=totals.count), True  # the total most of its step lines name
    if mixed:
        at = next(i for i, t in enumerate(totals) if t != total)
        line = run.steps[at]
        shown = f"/{line.total_steps}" if line.total_steps is not None else "no /total"
        kind = "val line" if line.val_loss is not None else "step line"
        yield run.at(line.line), f"a {kind} at step {line.step} with {shown}, where the run's total is {total}"
    at_final = [s for s in vals if s.step == final.step]
    if len(at_final) > 1:
        lines = ", ".join(str(s.line) for s in at_final)
        yield run.at(at_final[-1].line), f"{len(at_final)} val lines at the final step {final.step} (lines {lines})"
    if final.step != total:
        yield run.at(final.line), f"the final val line is at step {final.step}, not at the run's total {total}"
    everything = run.columns.step
    if not all(map(le, everything, islice(everything, 1, None))):
        at = next(i for i in range(1, len(everything)) if everything[i] < everything[i - 1])
        step_line = run.steps[at]
        yield run.at(step_line.line), f"the step lines go back from step {everything[at - 1]} to step {step_line.step}"
        return
    for kind, steps in (("val", list(map(_STEP, vals))), ("step", run.train_columns[0])):
        if not all(map(lt, steps, islice(steps, 1, None))):
            at = next(i for i in range(1, len(steps)) if not steps[i - 1] < steps[i])
            line = vals[at] if kind == "val" else run.train_step(at)
            yield run.at(line.line), f"two {kind} lines at step {steps[at]}"


class Schedule(NamedTuple):
    """The steps a run's code schedules, and where it says so."""

    steps: int
    line: int  # of the embedded source (upstream scripts) or of the log (our trainer's config line)
    how: str  # "num_iterations = 2290 + iteration_extension = 40"
    in_config: bool  # our trainer's config line, which every step line repeats


def scheduled_steps(run: RunLog) -> Schedule | None:
    """The steps a run's code schedules: the upstream scripts' literal settings, or our trainer's config; None
    when the code does not say in a way read without running it."""
    if run.is_ours:
        value = (run.config or {}).get("num_iterations")
        if isinstance(value, int) and not isinstance(value, bool):
            return Schedule(value, run.config_line, f"num_iterations {value} in the config line", True)
        return None
    found = _upstream_schedule(run.source) if run.source else None
    return None if found is None else Schedule(*found, False)


@lru_cache(maxsize=512)
def _upstream_schedule(source: str) -> tuple[int, int, str] | None:
    found: dict[str, tuple[int, int]] = {}
    for name in _SCHEDULE_NAMES:  # found with str.find, then matched where it stands: a regex would try every line
        at = source.find(name)
        while at != -1 and name not in found:
            start = source.rfind("\n", 0, at) + 1
            match = _SCHEDULE.match(source, start) if not source[start:at].strip() else None
            if match is not None and match[1] == name:
                found[name] = (int(match[2]), source.count("\n", 0, start) + 1)
            at = source.find(name, at + 1)
    pairs = (("num_scheduled_iterations", "num_extension_iterations"), ("num_iterations", "iteration_extension"))
    for first, second in pairs:
        if first in found and second in found:
            (a, line), (b, _) = found[first], found[second]
            return a + b, line, f"{first} = {a} + {second} = {b}"
    if "num_iterations" in found and "num_scheduled_iterations" not in found:
        value, line = found["num_iterations"]
        return value, line, f"num_iterations = {value}"
    return None


def _schedule_problem(run: RunLog) -> tuple[Status, Evidence, str] | None:
    """A run whose printed total is not what its code schedules."""
    final = run.final
    total = final.total_steps if final else None
    scheduled = scheduled_steps(run)
    if total is None or scheduled is None or scheduled.steps == total:
        return None
    if (
        scheduled.in_config
    ):  # our trainer prints its config's count in every step line: a log that disagrees is no log of it
        why = f"the log prints /{total}, its config schedules {scheduled.steps} steps ({scheduled.how})"
        return Status.FAIL, run.at(scheduled.line), why
    why = f"the log prints /{total}, but its code schedules {scheduled.steps} steps ({scheduled.how})"
    return Status.WARN, source_evidence(run, scheduled.line), why


def _group_problems(ri: RuleInput) -> list[tuple[Status, tuple[Evidence, ...], str]]:
    """Runs of one group that are not one experiment: several totals, or several codes."""
    problems: list[tuple[Status, tuple[Evidence, ...], str]] = []
    totals: dict[int | None, list[RunLog]] = {}
    for run in ri.runs:
        totals.setdefault(run.final.total_steps if run.final else None, []).append(run)
    if len(totals) > 1:
        parts = ", ".join(f"/{t} in {len(rs)} run(s) (e.g. {rs[0].path.name})" for t, rs in totals.items())
        cited = tuple(rs[0].at(rs[0].final.line) for rs in totals.values() if rs[0].final)
        problems.append((Status.WARN, cited, f"the runs are of {len(totals)} step counts, pooled as one: {parts}"))
    versions: list[list[RunLog]] = []
    for run in ri.runs:
        if not run.source:
            continue
        for version in versions:
            first = version[0]
            if code_hash(first) == code_hash(run) or code_difference(first.source or "", run.source) is None:
                version.append(run)
                break
        else:
            versions.append([run])
    if len(versions) > 1:
        first = versions[0][0]
        shown = []
        cited: list[Evidence] = []
        for version in versions[1:]:
            other = version[0]
            where = code_difference(first.source or "", other.source or "")
            if where is None:
                continue
            (line_a, text_a), (line_b, text_b) = _first_differing_lines(*where)
            name = f"{other.path.name} and {len(version) - 1} more" if len(version) > 1 else other.path.name
            cited.append(source_evidence(first, line_a))
            if line_b:
                cited.append(source_evidence(other, line_b))
            shown.append(f"{name} (first difference: {text_a!r} against {text_b!r})")
        detail = (
            f"the runs embed {len(versions)} versions of the code, pooled as one: {first.path.name} "
            f"({len(versions[0])} run(s)) against {'; '.join(shown)}"
        )
        problems.append((Status.WARN, tuple(cited), detail))
    return problems


def _first_differing_lines(a: Block, b: Block | None) -> tuple[tuple[int, str], tuple[int, str]]:
    """((line, text) in a, (line, text) in b) of the first code line where two statements differ; blank and
    comment lines are passed over. A statement with no counterpart is shown by its first line against none."""

    def code_lines(block: Block) -> list[tuple[int, str]]:
        lines = enumerate(block.text.split("\n"), start=block.first_line)
        return [(n, t.strip()[:80]) for n, t in lines if t.strip() and not t.lstrip().startswith("#")]

    lines_a = code_lines(a) or [(a.first_line, "")]
    if b is None:
        return lines_a[0], (0, "nothing in its place")
    lines_b = code_lines(b) or [(b.first_line, "")]
    for (na, ta), (nb, tb) in zip(lines_a, lines_b, strict=False):
        if ta != tb:
            return (na, ta), (nb, tb)
    shorter = min(len(lines_a), len(lines_b))
    end_a = lines_a[shorter] if shorter < len(lines_a) else (lines_a[-1][0], "(end of statement)")
    end_b = lines_b[shorter] if shorter < len(lines_b) else (lines_b[-1][0], "(end of statement)")
    return end_a, end_b


def check_complete_runs(ri: RuleInput) -> Check:
    """Every run ends with one final val line at its total step, and the group's runs are one experiment: one
    total, one code, the total the code schedules. An incomplete run is listed, left out of the statistics,
    and reviewed; a log with two final results fails."""
    findings: list[tuple[Status, tuple[Evidence, ...], str]] = []
    for run in ri.runs:
        for evidence, why in final_result_problems(run):
            findings.append((Status.FAIL, (evidence,), f"{run.path.name}: {why}"))
        scheduled = _schedule_problem(run)
        if scheduled is not None:
            findings.append((scheduled[0], (scheduled[1],), f"{run.path.name}: {scheduled[2]}"))
    findings += _group_problems(ri)
    if ri.incomplete:
        cited = tuple(incomplete_evidence(r) for r in ri.incomplete)
        first = ri.incomplete[0]
        findings.append(
            (
                Status.WARN,
                cited,
                f"{len(ri.incomplete)} of {len(ri.runs) + len(ri.incomplete)} runs are not results and are left out: "
                f"{first.path.name}: {why_incomplete(first)}"
                + (f" (+{len(ri.incomplete) - 1} more)" if len(ri.incomplete) > 1 else "")
                + f"; at {cite(cited)}",
            )
        )
    if not findings:
        n = len(ri.runs)
        detail = f"all {n} runs end with their final val line" if n != 1 else "the run ends with its final val line"
        return Check("complete runs", Status.PASS, detail, rule_id=ID)
    status = worst(*(f[0] for f in findings))
    findings.sort(key=lambda f: f[0] is not status)
    shown = "; ".join(f[2] for f in findings[:3]) + (f" (+{len(findings) - 3} more)" if len(findings) > 3 else "")
    evidence = tuple(ev for f in findings for ev in f[1])
    figures = {"incomplete": [str(r.path) for r in ri.incomplete], "problems": [f[2] for f in findings]}
    return Check("complete runs", status, shown, evidence, figures, ID)


COMPLETE_RUNS = Rule(
    ID,
    "complete runs",
    check_complete_runs,
    "each run's log reaches its final val line, one only, at the step its total names, with steps rising "
    "(else it fails); one that ends early is listed, left out of the statistics, and asks for a review, and so "
    "do runs of several step counts or codes (comments and layout aside) pooled in one group, and a total "
    "other than the code schedules (`num_iterations` and its extension, or our trainer's config)",
)

"""The timing lines agree with themselves, in the two conventions of the history.

Until record 21's re-timing (2025-02-01) the first 10 steps were an untimed grace period, and step_avg
divided train_time by step - 10 (SR006). From then on every step is timed and step_avg divides by the
step (SR007). The convention a log uses is read off its own lines, so it stays tied to the code that wrote
it; the date only decides which conventions are allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import compress, count, islice, repeat
from operator import ge, is_not, itemgetter, lt

from speedrun.judge import stats
from speedrun.judge.rules.base import Rule, RuleInput, final_evidence, seconds, timed_runs
from speedrun.judge.runlog import Evidence, RunLog, StepLine
from speedrun.judge.verdict import Check, Status

GRACE_ID, TIMED_ID = "SR006", "SR007"
GRACE_STEPS = 10  # before record 21's re-timing the first 10 steps were untimed

# Columns of a run's steps, read with itemgetter (faster than attrgetter over thousands of StepLines).
_STEP = itemgetter(StepLine._fields.index("step"))
_TRAIN_TIME = itemgetter(StepLine._fields.index("train_time_ms"))


def step_avg_offset(run: RunLog, offsets: Sequence[int] = (0, GRACE_STEPS)) -> int | None:
    """Which convention a run uses, read off its final val line: step_avg = train_time / (step - offset)."""
    final = run.final
    if final is None or final.train_time_ms is None or final.step_avg_ms is None:
        return None
    for offset in offsets:
        k = final.step - offset
        if k > 0 and math.isfinite(final.step_avg_ms) and abs(final.train_time_ms / k - final.step_avg_ms) <= _tol(k):
            return offset
    return None


def _tol(k: int) -> float:
    # step_avg is printed to 0.01 ms and train_time to 1 ms: allow both roundings.
    return 0.0051 + 0.51 / k + 1e-9


def timing_problems(run: RunLog, grace_steps: int = GRACE_STEPS) -> list[tuple[Evidence, str]]:
    """Every way a run's timing lines disagree with themselves; empty when they are consistent.

    `grace_steps` is the untimed grace period allowed (0 once it was dropped). Whether a run reaches its
    final val line is the complete-runs rule's question, not this one's.
    """
    problems: list[tuple[Evidence, str]] = []
    final = run.final
    if final is None:
        return [(Evidence(run.path), "no val loss in the log")]
    offset = step_avg_offset(run, (0, grace_steps) if grace_steps else (0,))
    # With the grace steps, the clock restarts once they are over: it only has to grow from there.
    first_timed = grace_steps + 1 if offset else 0
    backwards = _first_time_backwards(run.steps, first_timed)
    if backwards is not None:
        problems.append((run.at(backwards), "train_time goes backwards"))
    if final.train_time_ms is not None and final.step_avg_ms is not None and offset is None:
        if not grace_steps and step_avg_offset(run, (GRACE_STEPS,)) is not None:
            why = f"step_avg divides train_time by step - {GRACE_STEPS}: untimed grace steps, dropped on 2025-02-01"
        else:
            why = "step_avg does not equal train_time / steps"
        problems.append((run.at(final.line), why))
    elif offset is not None:
        for s in run.val_steps:
            k = s.step - offset
            if k <= 0 or s.train_time_ms is None or s.step_avg_ms is None or s.train_time_ms == 0:
                continue
            if not math.isfinite(s.step_avg_ms) or abs(s.train_time_ms / k - s.step_avg_ms) > _tol(k):
                problems.append((run.at(s.line), "step_avg does not equal train_time / steps"))
                break
    return problems


def _first_time_backwards(steps: tuple[StepLine, ...], first_timed: int) -> int | None:
    """The line of the first step (from step `first_timed` on) whose train_time is below the one before, if any.

    Column by column with `map` and `compress`, so that the loops over a run's thousands of steps stay in C.
    """
    timed: Sequence[StepLine] = steps
    if first_timed > 0:  # step numbers are never negative, so 0 keeps every step
        timed = list(compress(steps, map(ge, map(_STEP, steps), repeat(first_timed))))
    times = list(map(_TRAIN_TIME, timed))
    has_time = list(map(is_not, times, repeat(None)))
    if not all(has_time):
        timed, times = list(compress(timed, has_time)), list(compress(times, has_time))
    goes_back = map(lt, islice(times, 1, None), times)
    first = next(compress(count(1), goes_back), None)
    return None if first is None else timed[first].line


def _check(ri: RuleInput, name: str, rule_id: str, grace_steps: int) -> Check:
    timed = timed_runs(ri.independent)
    problems = [(ev, why) for run in ri.runs for ev, why in timing_problems(run, grace_steps)]
    if not timed and not problems:
        return Check(name, Status.UNCHECKED, "the logs carry no train_time (llm.c format)", rule_id=rule_id)
    figures: dict[str, float | int] = {}
    summary = ""
    if timed:
        d = stats.describe([seconds(ms) for _, ms in timed])
        figures = {"n": d.n, "mean_s": d.mean, "median_s": d.median, "std_s": d.std, "min_s": d.min, "max_s": d.max}
        summary = f"time mean {d.mean:.3f}s median {d.median:.3f}s std {d.std:.3f}s range {d.min:.3f}-{d.max:.3f}s"
    evidence = tuple(final_evidence(r) for r, _ in timed)
    if problems:
        cited = tuple(ev for ev, _ in problems)
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        detail = f"{problems[0][1]} at {problems[0][0]}{more}"
        return Check(name, Status.FAIL, f"{detail}; {summary}".rstrip("; "), cited, figures, rule_id)
    return Check(name, Status.PASS, f"{summary}; step_avg and train_time consistent", evidence, figures, rule_id)


def check_timing_with_grace(ri: RuleInput) -> Check:
    """train_time never goes backwards and step_avg = train_time / steps, or / (steps - 10) for the grace steps."""
    return _check(ri, "timing", GRACE_ID, int(ri.parameter(GRACE_ID, "grace_steps", GRACE_STEPS)))


def check_timing(ri: RuleInput) -> Check:
    """train_time never goes backwards and step_avg = train_time / steps: every step is timed."""
    return _check(ri, "timing", TIMED_ID, 0)


TIMING_WITH_GRACE = Rule(
    GRACE_ID,
    "timing",
    check_timing_with_grace,
    "train_time never goes backwards and step_avg equals train_time / steps, or / (steps - 10) for logs whose "
    "first 10 steps were an untimed grace period",
)
TIMING = Rule(
    TIMED_ID,
    "timing",
    check_timing,
    "train_time never goes backwards and step_avg equals train_time / steps (a log dividing by steps - 10 "
    "fails: the grace steps were dropped); mean, median, std and range of the time",
)

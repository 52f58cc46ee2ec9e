"""The timing lines agree with themselves, in the two conventions of the history.

Until record 21's re-timing (2025-02-01) the first 10 steps were an untimed grace period, and step_avg
divided train_time by step - 10 (SR006). From then on every step is timed and step_avg divides by the
step (SR007). The convention a log uses is read off its own lines, and the grace period is accepted only
from code that has it (the pre-record-21 scripts reset their clock with `if step == 10: training_time_ms = 0`),
so it stays tied to the code that wrote it; the date only decides which conventions are allowed.

Whatever the convention, the clock must be a clock: train_time on every step line, growing from one step to
the next, and never standing still for a stretch of steps while the run trains (the archive's runs have at
most 3 steps in a row below a quarter of their mean step time; a frozen clock has hundreds).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import compress, count, groupby, islice, repeat
from operator import eq, gt, is_not, le, lt, sub, truediv

from speedrun.judge import stats
from speedrun.judge.rules.base import Rule, RuleInput, final_evidence, seconds, timed_runs
from speedrun.judge.runlog import Evidence, RunLog
from speedrun.judge.verdict import Check, Status

GRACE_ID, TIMED_ID = "SR006", "SR007"
GRACE_STEPS = 10  # before record 21's re-timing the first 10 steps were untimed
# A step is "frozen" below this fraction of the run's mean time per step; this many frozen steps in a row is no
# clock. The archive's runs, 970 of them, reach 3 in a row at most.
FROZEN_FRACTION = 0.25
FROZEN_STEPS = 10
# The pre-record-21 scripts' grace period: the clock restarts once step 10 is reached.
_GRACE_RESET = re.compile(r"\bif\s+step\s*==\s*10\s*:[^\n]*\n(?:[^\n]*\n){0,3}?[^\n]*_time\w*\s*=\s*0\b")


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


def has_grace_steps(source: str | None) -> bool:
    """Whether code restarts its clock at step 10, as the scripts with the untimed grace period did."""
    return bool(source) and _has_grace_reset(source or "")


@lru_cache(maxsize=256)
def _has_grace_reset(source: str) -> bool:
    # Cached: the runs of a record share their source, and a regex over 100 KB is not free.
    return "== 10" in source and _GRACE_RESET.search(source) is not None


def timing_problems(run: RunLog, grace_steps: int = GRACE_STEPS) -> list[tuple[Evidence, str]]:
    """Every way a run's timing lines disagree with themselves or with a clock; empty when they are consistent.

    `grace_steps` is the untimed grace period allowed (0 once it was dropped). Whether a run reaches its
    final val line is the complete-runs rule's question, not this one's.
    """
    problems: list[tuple[Evidence, str]] = []
    final = run.final
    if final is None:
        return [(Evidence(run.path), "no val loss in the log")]
    missing = _first_without_time(run)
    if missing is not None:
        problems.append((run.at(missing), "a step line without train_time, where others carry it"))
    offset = step_avg_offset(run, (0, grace_steps) if grace_steps else (0,))
    if offset and not has_grace_steps(run.source):
        why = (
            f"step_avg divides train_time by step - {offset}, but the embedded code has no untimed grace steps "
            f"(no clock reset at step {offset})"
            if run.source
            else f"step_avg divides train_time by step - {offset}, and no embedded code shows the grace steps"
        )
        problems.append((run.at(final.line), why))
    # With the grace steps, the clock restarts once they are over: it only has to grow from there.
    first_timed = grace_steps + 1 if offset else 0
    stalled = _first_time_not_growing(run, first_timed)
    if stalled is not None:
        problems.append((run.at(stalled[0]), stalled[1]))
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


def _first_without_time(run: RunLog) -> int | None:
    """The line of the first step line without train_time in a log whose other step lines carry it."""
    columns = run.columns
    if columns.untimed == 0 or columns.untimed == len(columns.step):  # all timed, or a format without timing
        return None
    return run.steps[columns.train_time_ms.index(None)].line


def _first_time_not_growing(run: RunLog, first_timed: int) -> tuple[int, str] | None:
    """(line, why) of the first step (from step `first_timed` on) whose train_time does not grow: below the line
    before it, or equal to it at a later step. A val line may repeat the time of the step line it follows.

    Column by column with `map` and `compress`, so that the loops over a run's thousands of steps stay in C.
    """
    numbers: Sequence[int] = run.columns.step
    times: Sequence[float | None] = run.columns.train_time_ms
    rows: Sequence[int] = range(len(numbers))  # where each time stands among the step lines, to cite it
    if first_timed > 0:  # the grace steps' clock restarts after them: from there on (the steps are in order)
        start = bisect_left(numbers, first_timed)
        rows, numbers, times = rows[start:], numbers[start:], times[start:]
    if run.columns.untimed:
        keep = list(map(is_not, times, repeat(None)))
        rows, numbers, times = list(compress(rows, keep)), list(compress(numbers, keep)), list(compress(times, keep))
    later = islice(times, 1, None)
    if all(map(lt, times, later)):
        return None  # strictly growing: the usual case, settled in C
    if all(map(le, times, islice(times, 1, None))):
        # Never back: only the lines repeating the time before them need a look (a val line after its step's).
        for i in compress(count(1), map(eq, times, islice(times, 1, None))):
            if numbers[i] != numbers[i - 1]:
                why = f"train_time stands still from step {numbers[i - 1]} to step {numbers[i]}"
                return run.steps[rows[i]].line, why
        return None
    i = next(compress(count(1), map(gt, times, islice(times, 1, None))))
    return run.steps[rows[i]].line, "train_time goes backwards"


def frozen_stretch(run: RunLog, grace_steps: int = 0) -> tuple[Evidence, str] | None:
    """Where the clock stands (nearly) still for FROZEN_STEPS steps in a row or more while the run trains: each
    step under FROZEN_FRACTION of the run's mean time per step. None when there is no such stretch."""
    offset = step_avg_offset(run, (0, grace_steps) if grace_steps else (0,)) or 0
    numbers, times = run.train_columns
    skipped = 0  # training steps left out at the start: the untimed grace steps
    if offset:
        skipped = sum(map(le, numbers, repeat(offset)))
        numbers, times = numbers[skipped:], times[skipped:]
    if len(numbers) <= FROZEN_STEPS or run.columns.untimed:
        return None  # too short to tell, or a step line without train_time (the timing check fails it)
    span = numbers[-1] - numbers[0]
    if span <= 0 or not times[-1] > times[0]:
        return None  # no time passes at all: the growth check says so
    threshold = FROZEN_FRACTION * (times[-1] - times[0]) / span

    def per_step() -> Iterator[float]:
        time_gaps = map(sub, islice(times, 1, None), times)
        if span == len(numbers) - 1:  # a line at every step, the usual case: a gap is a step's time
            return time_gaps
        return map(truediv, time_gaps, map(sub, islice(numbers, 1, None), numbers))

    if span != len(numbers) - 1 and not all(map(lt, numbers, islice(numbers, 1, None))):
        return None  # steps out of order: the complete-runs rule says so
    if span == len(numbers) - 1:
        # FROZEN_STEPS frozen steps in a row take under FROZEN_STEPS * threshold together: where no run of that
        # many steps is so quick, there is no stretch (one pass in C, the usual case settled)
        if min(map(sub, islice(times, FROZEN_STEPS, None), times)) >= FROZEN_STEPS * threshold:
            return None
    elif sum(map(lt, per_step(), repeat(threshold))) < FROZEN_STEPS:
        return None  # too few frozen steps in all for a stretch: settled without walking them
    frozen = list(map(lt, per_step(), repeat(threshold)))
    at, longest, where = 0, 0, 0
    for is_frozen, group in groupby(frozen):
        length = sum(1 for _ in group)
        if is_frozen and length > longest:
            longest, where = length, at
        at += length
    if longest < FROZEN_STEPS:
        return None
    first, last = run.train_step(skipped + where), run.train_step(skipped + where + longest)
    spent = (last.train_time_ms or 0.0) - (first.train_time_ms or 0.0)
    why = (
        f"the clock nearly stands still for {longest} steps ({first.step} to {last.step}: {spent:.0f} ms in all, "
        f"against the run's mean of {threshold / FROZEN_FRACTION:.1f} ms per step)"
    )
    return run.at(first.line), why


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
    frozen = [found for run in ri.runs if (found := frozen_stretch(run, grace_steps)) is not None]
    if frozen:
        cited = tuple(ev for ev, _ in frozen)
        more = f" (+{len(frozen) - 1} more run(s))" if len(frozen) > 1 else ""
        detail = f"{frozen[0][1]} at {frozen[0][0]}{more}: no clock does that; {summary}"
        return Check(name, Status.WARN, detail, cited, figures, rule_id)
    return Check(name, Status.PASS, f"{summary}; step_avg and train_time consistent", evidence, figures, rule_id)


def check_timing_with_grace(ri: RuleInput) -> Check:
    """train_time on every step line, growing, and step_avg = train_time / steps, or / (steps - 10) for code with
    the untimed grace steps; a clock that stands still for a stretch of steps asks for a review."""
    return _check(ri, "timing", GRACE_ID, int(ri.parameter(GRACE_ID, "grace_steps", GRACE_STEPS)))


def check_timing(ri: RuleInput) -> Check:
    """train_time on every step line, growing, and step_avg = train_time / steps: every step is timed; a clock
    that stands still for a stretch of steps asks for a review."""
    return _check(ri, "timing", TIMED_ID, 0)


_CLOCK = (
    "train_time on every step line, growing from step to step; a clock that nearly stands still for 10 steps or "
    "more (each under a quarter of the run's mean step time) asks for a review"
)
TIMING_WITH_GRACE = Rule(
    GRACE_ID,
    "timing",
    check_timing_with_grace,
    "step_avg equals train_time / steps, or / (steps - 10) for logs whose first 10 steps were an untimed grace "
    f"period and whose code restarts its clock at step 10; {_CLOCK}",
)
TIMING = Rule(
    TIMED_ID,
    "timing",
    check_timing,
    "step_avg equals train_time / steps (a log dividing by steps - 10 fails: the grace steps were dropped); "
    f"{_CLOCK}; mean, median, std and range of the time",
)

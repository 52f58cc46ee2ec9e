"""Rule 4, speed: faster than the prior record, against a same-hardware baseline when there is one (SR005).

A baseline is evidence only when it is the prior record re-run: it must pass its own checks (its timing, its
runs, its hardware; a mean loss at the target, as the prior record had), run the prior record's code (its
sha256 is one its record.toml pins), and take about the prior record's published time (a baseline slowed
down makes any candidate look fast). Anything less asks for a review."""

from __future__ import annotations

import math
from dataclasses import replace

from speedrun.judge import stats
from speedrun.judge.discover import code_hash
from speedrun.judge.rules.base import (
    Rule,
    RuleInput,
    final_evidence,
    finite_losses,
    finite_or_none,
    format_p,
    not_fineweb,
    on_other_tokens,
    seconds,
    timed_runs,
)
from speedrun.judge.runlog import Evidence
from speedrun.judge.verdict import Check, Status

ID = "SR005"
SPEED_ALPHA = 0.05  # below this, a faster mean than the baseline is called significant
# How far a baseline's mean time may be from the prior record's published time. The archive's baselines on the
# record's hardware are within -2% and +10% of it; a baseline further off ran on other hardware or another
# clock, and normalising against it would carry that over to the candidate.
BASELINE_TIME_TOLERANCE = 0.15


def check_speed(ri: RuleInput) -> Check:
    """Faster than the prior record: against a same-hardware baseline when given, else the published time.

    Slower than the published time without a baseline asks for a review: the hardware may differ.
    """
    if ri.is_baseline:
        return Check("speed", Status.NOT_APPLICABLE, "this group is the baseline", rule_id=ID)
    if ri.first_of_track:
        return Check("speed", Status.NOT_APPLICABLE, "the track's first record: nothing to be faster than", rule_id=ID)
    if ri.retimes is not None:
        return Check(
            "speed", Status.NOT_APPLICABLE, f"a re-timing of record {ri.retimes}, not a new record", rule_id=ID
        )
    check = _speed(ri)
    elsewhere = not_fineweb(ri)
    return on_other_tokens(check, elsewhere) if elsewhere else check


def _speed(ri: RuleInput) -> Check:
    timed = timed_runs(ri.independent)
    if not timed:
        return Check("speed", Status.UNCHECKED, "no train_time to compare", rule_id=ID)
    times = [seconds(ms) for _, ms in timed]
    mean = math.fsum(times) / len(times)
    evidence = tuple(final_evidence(r) for r, _ in timed)
    if not mean > 0:
        return Check(
            "speed", Status.UNCHECKED, f"mean train_time {mean:.3f}s: no time was measured", evidence, rule_id=ID
        )
    if ri.baseline:
        check = _against_baseline(ri, times, mean, evidence)
        doubts = baseline_doubts(ri)
        if doubts and check.status is Status.PASS:
            detail = f"{check.detail}; but the baseline is not evidence enough: {'; '.join(doubts)}"
            return replace(check, status=Status.WARN, detail=detail)
        if doubts:
            return replace(check, detail=f"{check.detail}; the baseline: {'; '.join(doubts)}")
        return check
    if ri.prior is None:
        note = f": {ri.prior_note}" if ri.prior_note else ""
        status = Status.NOT_APPLICABLE if ri.first_of_track else Status.UNCHECKED
        return Check("speed", status, f"no record to compare with{note}", rule_id=ID)
    figures = {"mean_s": mean, "prior_record": ri.prior.number, "prior_time_s": ri.prior.time_seconds}
    if mean < ri.prior.time_seconds:
        detail = (
            f"mean {mean:.3f}s beats {ri.prior.label} at {ri.prior.time_seconds:.3f}s (published time, not re-run here)"
        )
        return Check("speed", Status.PASS, detail, evidence, figures, ID)
    detail = (
        f"mean {mean:.3f}s is not below {ri.prior.label} at {ri.prior.time_seconds:.3f}s; "
        "if the hardware differs, re-run the prior record on it and pass --baseline"
    )
    return Check("speed", Status.WARN, detail, evidence, figures, ID)


def baseline_doubts(ri: RuleInput) -> list[str]:
    """Why the baseline may not be the prior record re-run on the candidate's hardware (empty: none)."""
    doubts = []
    failing = [c for c in ri.baseline_checks if c.status is Status.FAIL]
    unsure = [c for c in ri.baseline_checks if c.status in (Status.WARN, Status.UNCHECKED)]
    if failing:
        doubts.append(
            "it fails its own checks (" + "; ".join(f"{c.rule_id} {c.rule}: {c.detail}" for c in failing) + ")"
        )
    elif unsure:
        doubts.append("its own checks need a review (" + ", ".join(f"{c.rule_id} {c.rule}" for c in unsure) + ")")
    codes = {h for r in ri.baseline or () if (h := code_hash(r))}
    if ri.prior is None:
        doubts.append("there is no prior record whose pinned code it should run")
    else:
        if not ri.prior.code_sha256:
            doubts.append(f"{ri.prior.label} pins no code_sha256, so its code cannot be compared")
        elif not codes or not codes <= set(ri.prior.code_sha256):
            others = sorted({ri.known_code[h] for h in codes if h in ri.known_code})
            runs = f"it runs {' and '.join(others)}'s code" if others else "its sha256 is none its record.toml pins"
            doubts.append(f"it does not run {ri.prior.label}'s code ({runs})")
        base_times = [seconds(ms) for _, ms in timed_runs(ri.baseline or ())]
        if base_times and ri.prior.time_seconds > 0:
            ratio = math.fsum(base_times) / len(base_times) / ri.prior.time_seconds
            if abs(ratio - 1.0) > BASELINE_TIME_TOLERANCE:
                doubts.append(
                    f"its mean time is {ratio - 1.0:+.1%} off {ri.prior.label}'s published "
                    f"{ri.prior.time_seconds:.3f}s (more than {BASELINE_TIME_TOLERANCE:.0%}): other hardware or clock"
                )
    return doubts


def _against_baseline(ri: RuleInput, times: list[float], mean: float, evidence: tuple[Evidence, ...]) -> Check:
    base_times = [seconds(ms) for _, ms in timed_runs(ri.baseline or ())]
    if not base_times:
        return Check("speed", Status.UNCHECKED, "the baseline has no train_time", rule_id=ID)
    base_mean = math.fsum(base_times) / len(base_times)
    if not base_mean > 0:
        return Check("speed", Status.UNCHECKED, "the baseline's train_time is 0: nothing to compare", rule_id=ID)
    time_test = stats.welch(times, base_times)
    loss_test = stats.welch(
        [v for _, v in finite_losses(ri.independent)] or [math.nan],
        [v for _, v in finite_losses(ri.baseline or ())] or [math.nan],
    )
    speedup = base_mean / mean
    figures: dict[str, float | int | None] = {
        "mean_s": mean,
        "baseline_mean_s": base_mean,
        "speedup": speedup,
        "time_welch_p": finite_or_none(time_test.p),
        "loss_welch_p": finite_or_none(loss_test.p),
        "loss_difference": finite_or_none(loss_test.difference),
        "normalised_time_s": None,
    }
    normalised = ""
    if ri.prior is not None:
        value = stats.normalised_time(ri.prior.time_seconds, mean, base_mean)
        figures["normalised_time_s"] = value
        figures["prior_record"] = ri.prior.number
        normalised = f"; normalised to {ri.prior.label}: {value:.3f}s"
    head = (
        f"mean {mean:.3f}s vs baseline {base_mean:.3f}s "
        f"({speedup:.4f}x, Welch p={format_p(time_test.p)}); "
        f"loss Δ {loss_test.difference:+.4f} (Welch p={format_p(loss_test.p)}){normalised}"
    )
    if mean >= base_mean:
        return Check("speed", Status.FAIL, f"not faster than the baseline: {head}", evidence, figures, ID)
    if math.isnan(time_test.p) and ri.prior is not None and mean < ri.prior.time_seconds:
        # One run on a side gives no Welch test; faster than both the baseline and the published time will do.
        detail = f"faster than the baseline and {ri.prior.label} at {ri.prior.time_seconds:.3f}s: {head}"
        return Check("speed", Status.PASS, detail, evidence, figures, ID)
    if not (time_test.p < SPEED_ALPHA):
        return Check("speed", Status.WARN, f"faster, but not significantly: {head}", evidence, figures, ID)
    return Check("speed", Status.PASS, head, evidence, figures, ID)


SPEED = Rule(
    ID,
    "speed",
    check_speed,
    "with a baseline (the prior record re-run on the same hardware): Welch t-tests of time and loss, the "
    "speed-up, and the time normalised to the prior record's (prior x candidate mean / baseline mean); "
    "without one, the prior record's published time (slower asks for a review: the hardware may differ). A "
    "baseline must pass its own checks, run the prior record's pinned code and take within 15% of its published "
    "time, or the comparison asks for a review; times of runs on other tokens than FineWeb's are not compared",
)

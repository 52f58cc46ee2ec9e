"""Rule 2, the loss, in its two eras: the mean reaches the target (SR002), then, from 2024-12-04, with enough
runs that a one-sided t-test says so at p < 0.01 (SR003)."""

from __future__ import annotations

import math

from speedrun.judge import stats
from speedrun.judge.rules.base import (
    Rule,
    RuleInput,
    cite,
    final_evidence,
    finite_losses,
    finite_or_none,
    format_p,
    not_fineweb,
    on_other_tokens,
)
from speedrun.judge.verdict import SIGNIFICANCE, Check, Status

MEAN_ID, SIGNIFICANT_ID = "SR002", "SR003"


def _non_finite(ri: RuleInput, name: str, rule_id: str) -> Check | None:
    """The failed check of a run whose final loss is NaN or infinite, or of a group without a single loss. Every
    run counts here, a copy of another too: a NaN is a failed run whatever else it resembles."""
    bad = [r for r in ri.runs if (v := r.final_val_loss) is not None and not math.isfinite(v)]
    if bad:
        cited = [final_evidence(r) for r in bad]
        detail = f"final val loss is {bad[0].final_val_loss} at {cite(cited)}"
        return Check(name, Status.FAIL, detail, tuple(cited), rule_id=rule_id)
    if not finite_losses(ri.independent):
        return Check(name, Status.FAIL, "no run has a final val loss", rule_id=rule_id)
    return None


def check_mean_loss(ri: RuleInput) -> Check:
    """The mean final val loss of the runs reaches the track's target (at or below it).

    Before 2024-12-04 the README asked no test of significance: a record was most often one run.
    """
    check = _mean_loss(ri)
    elsewhere = not_fineweb(ri)
    return on_other_tokens(check, elsewhere) if elsewhere else check


def _mean_loss(ri: RuleInput) -> Check:
    failed = _non_finite(ri, "mean loss", MEAN_ID)
    if failed:
        return failed
    losses = finite_losses(ri.independent)
    target = ri.track.target_val_loss
    d = stats.describe([v for _, v in losses])
    evidence = tuple(final_evidence(r) for r, _ in losses)
    figures = {"n": d.n, "mean": d.mean, "target": target}
    head = f"n={d.n} mean={d.mean:.4f} vs target {target}"
    if d.mean <= target:
        return Check("mean loss", Status.PASS, f"{head}: reached", evidence, figures, MEAN_ID)
    return Check("mean loss", Status.FAIL, f"{head}: above the target", evidence, figures, MEAN_ID)


def check_loss(ri: RuleInput) -> Check:
    """One-sided one-sample t-test that the mean final val loss is below the target, at p < 0.01.

    One run cannot give a p-value: below the target it is unchecked, at or above it a failure. When the
    runs at hand do not reach p < 0.01 but the record's notes state they do over runs not in the folder,
    the check asks for a review and cites the note. With a baseline, the candidate's losses are also
    compared with it (Welch), the evidence a systems-only waiver of this rule needs.

    Losses whose spread is below the log's resolution (runs printing one final loss) get the sign test's
    p-value, which assumes nothing about the spread, not the t-test's, which would be 0. A baseline, the
    prior record re-run for its time, need only reach the target on average. Losses on other tokens than
    FineWeb's (our trainer's log says so) are not compared with the target.
    """
    check = _loss(ri)
    elsewhere = not_fineweb(ri)
    return on_other_tokens(check, elsewhere) if elsewhere else check


def _loss(ri: RuleInput) -> Check:
    failed = _non_finite(ri, "loss", SIGNIFICANT_ID)
    if failed:
        return failed
    alpha = float(ri.parameter(SIGNIFICANT_ID, "alpha", SIGNIFICANCE))
    target = ri.track.target_val_loss
    losses = finite_losses(ri.independent)
    values = [v for _, v in losses]
    evidence = tuple(final_evidence(r) for r, _ in losses)
    d = stats.describe(values)
    test = stats.loss_test(values, target, alpha)
    p, needed = test.p, test.runs_needed
    figures: dict[str, object] = {"n": d.n, "mean": d.mean, "std": d.std, "p_value": p, "target": target}
    figures.update(runs_needed=needed, test=test.method)
    figures.update(_against_baseline(ri, values))
    if test.method == stats.SIGN_TEST:
        needed_text = f"{needed} runs all below the target needed" if needed else "no number of runs will do"
        needed_text += f" (sign test: the spread is below the log's {stats.LOSS_RESOLUTION} resolution)"
    else:
        needed_text = (
            f"{needed} runs needed at this mean and std" if needed else f"no number of runs reaches p < {alpha}"
        )
    head = f"n={d.n} mean={d.mean:.4f} std={d.std:.4f} vs target {target}"
    if p is not None and p < alpha:
        detail = f"{head}: p={format_p(p)} < {alpha} ({needed_text})"
        return Check("loss", Status.PASS, detail, evidence, figures, SIGNIFICANT_ID)
    if ri.is_baseline and d.mean <= target:
        detail = f"{head}: a baseline re-runs the prior record for its time; its mean reaches the target"
        return Check("loss", Status.PASS, detail, evidence, figures, SIGNIFICANT_ID)
    if p is None and d.mean < target:
        status, detail = Status.UNCHECKED, f"{head}: one run cannot give a p-value; {needed_text}"
    elif p is None:
        status, detail = Status.FAIL, f"{head}: one run, not below the target"
    else:
        status, detail = Status.FAIL, f"{head}: p={format_p(p)} is not below {alpha}; {needed_text}"
    claims = [s for s in ri.stated if s.p < alpha]
    if claims:
        stated = ", ".join(map(str, claims[:3]))
        detail = f"the notes state {stated} over runs the judge cannot see; the logs here give {detail}"
        status = Status.WARN
        evidence += tuple(s.evidence for s in claims[:3])
    return Check("loss", status, detail, evidence, figures, SIGNIFICANT_ID)


def _against_baseline(ri: RuleInput, values: list[float]) -> dict[str, float | None]:
    """Welch's test of the candidate's losses against the baseline's: what a systems-only waiver rests on."""
    base = [v for _, v in finite_losses(ri.baseline or ())]
    if ri.is_baseline or len(base) < 2 or len(values) < 2:
        return {}
    test = stats.welch(values, base)
    return {"baseline_loss_welch_p": finite_or_none(test.p), "baseline_loss_difference": test.difference}


MEAN_LOSS = Rule(
    MEAN_ID,
    "mean loss",
    check_mean_loss,
    "the mean final val loss reaches the target (losses on other tokens than FineWeb's are not compared)",
)
LOSS = Rule(
    SIGNIFICANT_ID,
    "loss",
    check_loss,
    "one-sided one-sample t-test that the mean final val loss is below the target at p < 0.01; n, mean, std, p "
    "and the runs needed at this mean and std; final losses spread less than the 0.0001 they are printed to get "
    "the sign test's p (0.5^n for n runs all below), never the t-test's 0; one run below the target, or p "
    "stated only in the notes, asks for a review; a baseline needs only its mean at the target; losses on "
    "other tokens than FineWeb's (our trainer's data line says so) are not compared",
)

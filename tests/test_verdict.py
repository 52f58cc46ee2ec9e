"""`decide`: the one place where checks and waivers become pass, fail or review."""

from __future__ import annotations

import pytest

from speedrun.judge.verdict import EXIT_CODES, Check, Status, Verdict, decide, overall, waiver_use
from speedrun.store import Waiver

README = "https://github.com/KellerJordan/modded-nanogpt#rules"


def check(status: Status, rule_id: str = "SR003", **figures: float) -> Check:
    return Check("loss", status, "detail", rule_id=rule_id, figures=dict(figures))


@pytest.mark.parametrize(
    ("statuses", "verdict"),
    [
        ([Status.PASS, Status.NOT_APPLICABLE], Verdict.PASS),
        ([Status.PASS, Status.WARN], Verdict.REVIEW),
        ([Status.PASS, Status.UNCHECKED], Verdict.REVIEW),
        ([Status.WARN, Status.FAIL], Verdict.FAIL),
        ([Status.UNCHECKED, Status.FAIL, Status.PASS], Verdict.FAIL),
        ([], Verdict.PASS),
    ],
)
def test_fail_beats_review_beats_pass(statuses: list[Status], verdict: Verdict) -> None:
    checks = [check(s, f"SR{i:03d}") for i, s in enumerate(statuses)]
    assert decide(checks) is verdict


def test_a_waiver_covers_only_its_own_rule() -> None:
    waiver = Waiver("SR003", "a re-timing, not a new record", README)
    assert decide([check(Status.FAIL)], [waiver]) is Verdict.PASS
    assert decide([check(Status.UNCHECKED)], [waiver]) is Verdict.PASS
    assert decide([check(Status.FAIL, "SR004")], [waiver]) is Verdict.FAIL
    assert waiver_use(check(Status.PASS), [waiver]) is None  # nothing to waive


def test_a_systems_only_waiver_holds_when_the_losses_match_the_baseline() -> None:
    waiver = Waiver("SR003", "a faster kernel", README, systems_only=True)
    same = check(Status.FAIL, baseline_loss_welch_p=0.62, baseline_loss_difference=-0.0002)
    used = waiver_use(same, [waiver])
    assert used is not None and used.holds
    assert "do not differ from the baseline's (mean Δ -0.0002, Welch p=0.6200)" in used.evidence
    assert decide([same], [waiver]) is Verdict.PASS


def test_a_systems_only_waiver_is_disputed_when_the_losses_differ() -> None:
    waiver = Waiver("SR003", "a faster kernel", README, systems_only=True)
    differs = check(Status.FAIL, baseline_loss_welch_p=0.001, baseline_loss_difference=0.0031)
    used = waiver_use(differs, [waiver])
    assert used is not None and not used.holds and "differ from the baseline's" in used.evidence
    assert decide([differs], [waiver]) is Verdict.REVIEW


def test_a_systems_only_waiver_without_a_baseline_says_so() -> None:
    waiver = Waiver("SR003", "a faster kernel", README, systems_only=True)
    used = waiver_use(check(Status.FAIL), [waiver])
    assert used is not None and used.holds and "no baseline" in used.evidence


def test_many_verdicts_and_their_exit_codes() -> None:
    assert overall([Verdict.PASS, Verdict.REVIEW]) is Verdict.REVIEW
    assert overall([Verdict.REVIEW, Verdict.FAIL, Verdict.PASS]) is Verdict.FAIL
    assert EXIT_CODES == {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.REVIEW: 4}

"""The judge's statistics agree with scipy's reference implementations, and the runs-needed search is exact."""

from __future__ import annotations

import math

import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from speedrun.judge import stats

pytestmark = pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")

losses = st.lists(st.floats(min_value=3.0, max_value=3.5, allow_nan=False), min_size=2, max_size=40)


@settings(max_examples=200, deadline=None)
@given(values=losses, target=st.floats(min_value=3.0, max_value=3.5))
def test_one_sided_ttest_matches_scipy(values: list[float], target: float) -> None:
    expected = scipy.stats.ttest_1samp(values, target, alternative="less").pvalue
    got = stats.one_sided_ttest(values, target)
    assert got is not None
    if math.isnan(expected):  # zero spread: scipy gives up, the judge reports the limit
        assert got in (0.0, 0.5, 1.0)
    else:
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(a=losses, b=losses)
def test_welch_matches_scipy(a: list[float], b: list[float]) -> None:
    expected = scipy.stats.ttest_ind(a, b, equal_var=False)
    got = stats.welch(a, b)
    if math.isnan(expected.pvalue):
        return
    assert got.p == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)
    assert got.t == pytest.approx(expected.statistic, rel=1e-6, abs=1e-9)


def test_published_example() -> None:
    # Seven runs of a 2026 record, with the p-value its authors printed (0.0025).
    values = [3.2767, 3.2777, 3.2795, 3.2774, 3.2799, 3.2779, 3.2777]
    assert round(stats.one_sided_ttest(values, 3.28) or 1, 4) == 0.0025


def test_one_run_has_no_p_value() -> None:
    assert stats.one_sided_ttest([3.27], 3.28) is None


@settings(max_examples=100, deadline=None)
@given(
    mean=st.floats(min_value=3.270, max_value=3.2799),
    std=st.floats(min_value=1e-4, max_value=5e-3),
)
def test_runs_needed_is_the_smallest_sufficient_n(mean: float, std: float) -> None:
    n = stats.runs_needed(mean, std, 3.28)
    if n is None:
        return  # beyond MAX_RUNS_NEEDED
    t_crit = scipy.stats.t.ppf(0.99, df=n - 1)
    assert (3.28 - mean) / std * math.sqrt(n) > t_crit
    if n > 2:
        t_crit_before = scipy.stats.t.ppf(0.99, df=n - 2)
        assert (3.28 - mean) / std * math.sqrt(n - 1) <= t_crit_before + 1e-9


@pytest.mark.parametrize("effect", [1e-3, 5e-3, 7.4e-3, 7.5e-3, 8e-3, 0.05, 0.3, 1.0, 2.5, 10.0, 100.0])
def test_runs_needed_matches_a_plain_bisection(effect: float) -> None:
    """The search that starts from the normal approximation gives what a bisection over 2..MAX gives."""
    mean, std = 3.28 - effect * 0.01, 0.01
    effect = (3.28 - mean) / std  # as runs_needed computes it, to the last bit

    def enough(n: int) -> bool:
        return effect * math.sqrt(n) > scipy.stats.t.ppf(0.99, df=n - 1)

    low, high = 1, stats.MAX_RUNS_NEEDED
    if not enough(high):
        expected = None
    else:
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if enough(middle) else (middle, high)
        expected = high
    assert stats.runs_needed(mean, std, 3.28) == expected


def test_runs_needed_impossible_above_target() -> None:
    assert stats.runs_needed(3.2801, 0.001, 3.28) is None
    assert stats.runs_needed(3.28, 0.001, 3.28) is None
    assert stats.runs_needed(3.27, 0.0, 3.28) == 2


def test_normalised_time() -> None:
    # prior record 100 s; the candidate is 2% faster than the baseline re-run on slower hardware
    assert stats.normalised_time(100.0, 98.0, 100.0) == pytest.approx(98.0)
    assert stats.normalised_time(79.2, 84.4295, 85.3943) == pytest.approx(79.2 * 84.4295 / 85.3943)
    with pytest.raises(ValueError):
        stats.normalised_time(100.0, 1.0, 0.0)


def test_describe() -> None:
    d = stats.describe([3.0, 1.0, 2.0, 4.0])
    assert (d.n, d.mean, d.median, d.min, d.max) == (4, 2.5, 2.5, 1.0, 4.0)
    assert d.std == pytest.approx(math.sqrt(5 / 3))
    assert stats.describe([7.0]).std == 0.0
    with pytest.raises(ValueError):
        stats.describe([])


@pytest.mark.parametrize("df", [1, 1.5, 2, 3, 5, 9, 19, 30, 39.7, 99, 1000, 1e5])
def test_student_cdf_matches_scipy_over_both_tails(df: float) -> None:
    import scipy.special

    for tenth in range(-400, 401, 7):
        t = tenth / 10
        expected = float(scipy.special.stdtr(df, t))
        assert stats._student_cdf(df, t) == pytest.approx(expected, rel=1e-8, abs=1e-300)
    assert stats._student_cdf(df, math.inf) == 1.0 and stats._student_cdf(df, -math.inf) == 0.0
    assert math.isnan(stats._student_cdf(df, math.nan))


def test_sign_test_matches_scipy_binomtest() -> None:
    import scipy.stats

    for values in ([3.27] * 2, [3.27] * 5, [3.27, 3.29, 3.27, 3.26], [3.29] * 3, [3.27] * 7 + [3.281]):
        below = sum(v < 3.28 for v in values)
        expected = scipy.stats.binomtest(below, len(values), 0.5, alternative="greater").pvalue
        assert stats.sign_test(values, 3.28) == pytest.approx(expected)


def test_a_spread_below_the_print_resolution_gets_the_sign_test() -> None:
    same = stats.loss_test([3.27, 3.27], 3.28)
    assert (same.p, same.method, same.runs_needed) == (0.25, stats.SIGN_TEST, 7)
    assert stats.one_sided_ttest([3.27, 3.27], 3.28) == 0.0  # what the t-test alone would say
    spread = stats.loss_test([3.2770, 3.2775, 3.2768, 3.2781], 3.28)
    assert spread.method == stats.T_TEST and spread.p == stats.one_sided_ttest([3.2770, 3.2775, 3.2768, 3.2781], 3.28)
    assert stats.loss_test([3.27], 3.28).p is None
    assert stats.sign_test_runs_needed(0.01) == 7 and 0.5**7 < 0.01 <= 0.5**6

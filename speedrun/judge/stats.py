"""The statistics the judge reports: one-sample and Welch t-tests, runs needed, normalised times.

Means and deviations are computed in closed form, and so is the Student t distribution: its CDF is the
regularized incomplete beta function, evaluated by its continued fraction (tests/test_stats.py holds it
against scipy). Importing scipy for it cost half a second of every judge run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

MAX_RUNS_NEEDED = 100_000  # beyond this the answer is "not feasible", reported as None
# Final losses are printed to 4 decimals: a spread below one unit of the last digit is not measured by the log.
LOSS_RESOLUTION = 1e-4
T_TEST, SIGN_TEST = "t-test", "sign test"


@dataclass(frozen=True)
class Describe:
    """Plain summary figures of a sample. `std` is the sample (n - 1) standard deviation; 0.0 when n < 2."""

    n: int
    mean: float
    std: float
    median: float
    min: float
    max: float


@dataclass(frozen=True)
class WelchResult:
    """Welch's unequal-variance t-test of mean(a) - mean(b); `p` is two-sided. NaN where undefined."""

    t: float
    df: float
    p: float
    mean_a: float
    mean_b: float

    @property
    def difference(self) -> float:
        return self.mean_a - self.mean_b


def describe(values: Sequence[float]) -> Describe:
    """Mean, sample std, median, min and max of a non-empty sample."""
    if not values:
        raise ValueError("describe() needs at least one value")
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    ordered = sorted(values)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return Describe(n=n, mean=mean, std=std, median=median, min=ordered[0], max=ordered[-1])


def _student_cdf(df: float, t: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom (any real df > 0).

    With x = df / (df + t^2), the lower tail P(T <= -|t|) is I_x(df/2, 1/2) / 2, I the regularized
    incomplete beta function. The tail is computed directly, so small p-values keep their precision.
    """
    if math.isnan(df) or math.isnan(t) or df <= 0.0:
        return math.nan
    if math.isinf(t):
        return 0.0 if t < 0 else 1.0
    if math.isinf(df):
        return NormalDist().cdf(t)
    square = t * t
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + square), square / (df + square))
    return tail if t < 0 else 1.0 - tail


def _incomplete_beta(a: float, b: float, x: float, y: float) -> float:
    """I_x(a, b), with y = 1 - x given apart (computed without cancellation by the caller)."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log(y) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    if x < (a + 1.0) / (a + b + 2.0):  # where the continued fraction converges fast; else by symmetry
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return fraction


def one_sided_ttest(values: Sequence[float], target: float) -> float | None:
    """p-value of the one-sample t-test that the mean of `values` is below `target` (H1: mean < target).

    The same figure as `scipy.stats.ttest_1samp(values, target, alternative="less").pvalue`. None when
    n < 2. With zero spread the test degenerates; the limit is returned (0 below the target, 1 above).
    """
    if len(values) < 2:
        return None
    d = describe(values)
    if d.std == 0.0:
        return 0.0 if d.mean < target else 1.0 if d.mean > target else 0.5
    t = (d.mean - target) / (d.std / math.sqrt(d.n))
    return _student_cdf(d.n - 1, t)


@dataclass(frozen=True)
class LossTest:
    """The p-value that the mean final loss is below the target, the test that gave it, and the runs it would
    take at this mean and spread."""

    p: float | None  # None with fewer than two runs
    method: str  # T_TEST, or SIGN_TEST when the spread is below what the log can show
    runs_needed: int | None = None


def sign_test(values: Sequence[float], target: float) -> float:
    """One-sided sign test: the chance that at least as many of the runs as here fall below the target if each
    were as likely above it as below. It assumes nothing about the spread, so it stands where the spread cannot
    be measured: n runs all below give 0.5^n, whatever their values."""
    n = len(values)
    below = sum(1 for v in values if v < target)
    return math.fsum(math.comb(n, i) for i in range(below, n + 1)) / 2.0**n


def sign_test_runs_needed(alpha: float) -> int:
    """The fewest runs, all below the target, for which the sign test gives p < alpha."""
    n = 1
    while 0.5**n >= alpha:
        n += 1
    return n


def loss_test(values: Sequence[float], target: float, alpha: float = 0.01) -> LossTest:
    """The test of rule 2 on final losses: the one-sided t-test, unless the losses' spread is below the print
    resolution (two runs printing the same loss give std 0, and the t-test p = 0): such a spread is not
    measured, so no p-value below what the runs' count alone supports is given, and that is the sign test's."""
    if len(values) < 2:
        return LossTest(None, T_TEST)
    d = describe(values)
    if d.std < LOSS_RESOLUTION:
        needed = sign_test_runs_needed(alpha) if d.mean < target else None
        return LossTest(sign_test(values, target), SIGN_TEST, needed)
    return LossTest(one_sided_ttest(values, target), T_TEST, runs_needed(d.mean, d.std, target, alpha))


def welch(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Welch's t-test of a against b (two-sided), as `scipy.stats.ttest_ind(a, b, equal_var=False)`."""
    da, db = describe(a), describe(b)
    if da.n < 2 or db.n < 2:
        return WelchResult(t=math.nan, df=math.nan, p=math.nan, mean_a=da.mean, mean_b=db.mean)
    va, vb = da.std**2 / da.n, db.std**2 / db.n
    if va + vb == 0.0:
        p = 1.0 if da.mean == db.mean else 0.0
        t = 0.0 if da.mean == db.mean else math.copysign(math.inf, da.mean - db.mean)
        return WelchResult(t=t, df=math.nan, p=p, mean_a=da.mean, mean_b=db.mean)
    t = (da.mean - db.mean) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (da.n - 1) + vb**2 / (db.n - 1))
    p = 2.0 * _student_cdf(df, -abs(t))
    return WelchResult(t=t, df=df, p=min(1.0, p), mean_a=da.mean, mean_b=db.mean)


@lru_cache(maxsize=1024)
def runs_needed(mean: float, std: float, target: float, alpha: float = 0.01) -> int | None:
    """How many runs with this mean and sample std the one-sided t-test needs to reach p < alpha.

    None when the mean is not below the target (no number of runs will do) or more than
    MAX_RUNS_NEEDED would be needed.
    """
    if not (math.isfinite(mean) and math.isfinite(std)) or mean >= target:
        return None
    if std <= 0.0:
        return 2
    effect = (target - mean) / std

    def enough(n: int) -> bool:
        # p < alpha: the t statistic, effect * sqrt(n), lies beyond the (1 - alpha) quantile of t with n - 1 df
        return _student_cdf(n - 1, -effect * math.sqrt(n)) < alpha

    # The t quantile exceeds the normal one, z, at every df, so no n with effect * sqrt(n) <= z is enough;
    # `enough` only turns true further up, about (z^2 + 1) / 2 runs on (the first Cornish-Fisher term).
    # Starting there and walking outwards asks for a few quantiles where a bisection from 2 asks for dozens.
    z = NormalDist().inv_cdf(1.0 - alpha)
    normal_runs = (z / effect) ** 2
    low = max(1, math.floor(normal_runs * (1.0 - 1e-9)))  # not enough (or too few runs for a t-test)
    if low >= MAX_RUNS_NEEDED:
        return None
    guess = min(max(math.ceil(normal_runs + (z * z + 1.0) / 2.0), low + 1), MAX_RUNS_NEEDED)
    step = 1
    if enough(guess):
        high = guess
        while high - low > 1:
            probe = max(low + 1, high - step)
            if not enough(probe):
                low = probe
                break
            high, step = probe, step * 2
    else:
        low = guess
        while True:
            if low >= MAX_RUNS_NEEDED:
                return None
            probe = min(low + step, MAX_RUNS_NEEDED)
            if enough(probe):
                high = probe
                break
            low, step = probe, step * 2
    while high - low > 1:  # enough(high) holds and enough(low) does not
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return high


def normalised_time(prior_time: float, candidate_mean: float, baseline_mean: float) -> float:
    """A record time normalised to the prior record's published time: prior x candidate / baseline.

    The prior record is re-run on the contributor's hardware (the baseline); the ratio of the two
    means carries the speed-up over to the published time.
    """
    if baseline_mean <= 0.0:
        raise ValueError("baseline mean time must be positive")
    return prior_time * candidate_mean / baseline_mean

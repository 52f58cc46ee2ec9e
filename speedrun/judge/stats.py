"""The statistics the judge reports: one-sample and Welch t-tests, runs needed, normalised times.

Means and deviations are computed in closed form; scipy is only asked for the Student t distribution
(`scipy.special.stdtr` / `stdtrit`), imported on first use so that `speedrun --help` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

MAX_RUNS_NEEDED = 100_000  # beyond this the answer is "not feasible", reported as None


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
    from scipy.special import stdtr

    return float(stdtr(df, t))


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
    from scipy.special import ndtri, stdtrit

    effect = (target - mean) / std

    def enough(n: int) -> bool:
        # p < alpha  <=>  t = effect * sqrt(n) exceeds the (1 - alpha) quantile of t with n - 1 df
        return effect * math.sqrt(n) > float(stdtrit(n - 1, 1.0 - alpha))

    # The t quantile exceeds the normal one, z, at every df, so no n with effect * sqrt(n) <= z is enough;
    # `enough` only turns true further up, about (z^2 + 1) / 2 runs on (the first Cornish-Fisher term).
    # Starting there and walking outwards asks for a few quantiles where a bisection from 2 asks for dozens.
    z = float(ndtri(1.0 - alpha))
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

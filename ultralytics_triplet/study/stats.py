"""Statistics of a paired study, with the standard library only: Student's t, paired t-intervals and tests, Holm.

Each row is compared with the plain model at the same seed; the mean of those paired differences gets a two-sided
t-interval with seeds − 1 degrees of freedom and the p-value of the paired t-test. Where a study makes several such
comparisons, :func:`holm` adjusts their p-values (Holm's step-down method); ``decision.verdict`` reads the interval,
or the adjusted p-value. Where a comparison detects nothing, :func:`detectable_difference` and
:func:`seeds_needed` say how far from detectable it is: the smallest difference the seeds at hand would detect with
the power :data:`POWER`, and how many seeds a difference of a given size would need, both from the observed spread of
the paired differences (exact power of the paired t-test, through the noncentral t distribution).

Latencies are paired too, by round: :func:`log_ratio_interval` gives the mean log of one row's time over another's in
the same interleaved round, with its t-interval; its exponential is the geometric-mean ratio and its interval.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = (
    "LEVEL",
    "MAX_SEEDS",
    "POWER",
    "Interval",
    "detectable_difference",
    "holm",
    "log_ratio_interval",
    "mean_interval",
    "paired_interval",
    "power",
    "seeds_needed",
    "t_quantile",
    "t_test_p",
)

LEVEL = 0.95  # every interval and test of the study: 95% intervals, tests at the 5% level
POWER = 0.8  # the chance of detecting a difference that "detectable" promises
MAX_SEEDS = 1000  # seeds_needed gives up (None) beyond this


@dataclass(frozen=True)
class Interval:
    """A mean and its two-sided t-interval: of paired differences ``b - a``, or of one sample.

    Attributes:
        n (int): Number of values (pairs).
        mean (float): Their mean.
        sd (float): Their standard deviation (NaN with fewer than 2 values).
        lo (float): Lower bound of the interval (NaN with fewer than 2 values).
        hi (float): Upper bound of the interval (NaN with fewer than 2 values).
    """

    n: int
    mean: float
    sd: float
    lo: float
    hi: float


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz method)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t distribution (``scipy.stats.t.ppf(p, df)``), computed with the standard library.

    Args:
        p (float): Probability in (0, 1), e.g. 0.975 for a two-sided 95% interval.
        df (int): Degrees of freedom (>= 1).

    Returns:
        (float): t such that P(T <= t) = p.
    """
    if not 0.0 < p < 1.0 or df < 1:
        raise ValueError(f"need 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p == 0.5:
        return 0.0
    tail = 2.0 * min(p, 1.0 - p)  # two-sided tail mass: P(|T| > t) = I_{df/(df+t^2)}(df/2, 1/2)

    def two_sided(t: float) -> float:
        return _betainc(df / 2.0, 0.5, df / (df + t * t))

    lo, hi = 0.0, 1.0
    while two_sided(hi) > tail:
        hi *= 2.0
    for _ in range(200):  # bisection: two_sided decreases in t
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if two_sided(mid) > tail else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    t = (lo + hi) / 2.0
    return t if p > 0.5 else -t


def paired_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean of the paired differences ``b - a`` with a two-sided t-interval.

    Args:
        a (Sequence[float]): Values of the reference (the plain model), one per seed.
        b (Sequence[float]): Values of the variant at the same seeds, in the same order.
        level (float): Confidence level of the interval.

    Returns:
        (Interval): ``n`` pairs, ``mean`` difference, ``sd`` of the differences, ``lo`` and ``hi`` interval bounds
            (NaN with fewer than 2 pairs).
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples must have equal lengths, got {len(a)} and {len(b)}")
    return mean_interval([y - x for x, y in zip(a, b)], level)


def mean_interval(d: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean of ``d`` with a two-sided t-interval (``n - 1`` degrees of freedom)."""
    n = len(d)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.fmean(d)
    if n < 2:
        return Interval(n, mean, math.nan, math.nan, math.nan)
    sd = statistics.stdev(d)
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(n, mean, sd, mean - half, mean + half)


def log_ratio_interval(reference: Sequence[float], times: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean of ``log(times / reference)``, round by round, with a two-sided t-interval (``n - 1`` degrees of freedom).

    The exponential of its mean and bounds is the geometric-mean ratio of ``times`` to ``reference`` and its interval.
    Means of log ratios add up, so the point values of every pair agree: B over A is B over the plain model divided
    by A over the plain model.

    Args:
        reference (Sequence[float]): Times of the row compared with (the plain model), one per round.
        times (Sequence[float]): Times of the row at the same rounds, in the same order.
        level (float): Confidence level of the interval.

    Returns:
        (Interval): Over the log ratios (NaN bounds with fewer than 2 rounds).
    """
    if len(reference) != len(times):
        raise ValueError(f"paired rounds must have equal lengths, got {len(reference)} and {len(times)}")
    return mean_interval([math.log(t / r) for r, t in zip(reference, times)], level)


def t_test_p(interval: Interval) -> float:
    """Two-sided p-value of the t-test that the mean of ``interval`` is 0 (paired: no difference).

    NaN with fewer than 2 values; 0 or 1 when the values do not vary (any mean but 0 is then certain).
    """
    n, mean, sd = interval.n, interval.mean, interval.sd
    if n < 2 or math.isnan(sd):
        return math.nan
    if sd == 0:
        return 1.0 if mean == 0 else 0.0
    t = mean / (sd / math.sqrt(n))
    df = n - 1
    return min(1.0, _betainc(df / 2.0, 0.5, df / (df + t * t)))  # P(|T| >= |t|)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, controls the family-wise error rate), in the order given.

    The smallest of m p-values is multiplied by m, the next by m - 1, and so on, each kept at least as large as the
    one before and at most 1. NaN values (a comparison without a test) stay NaN and do not count in m.
    """
    order = sorted((p, k) for k, p in enumerate(p_values) if not math.isnan(p))
    adjusted, running = [math.nan] * len(p_values), 0.0
    for rank, (p, k) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[k] = running
    return adjusted


def _normal_cdf(x: float) -> float:
    """Standard normal distribution function."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _noncentral_t_sf(t: float, df: int, ncp: float, steps: int = 800) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom and noncentrality ``ncp``.

    T = (Z + ncp) / sqrt(V / df) with Z standard normal and V chi-square(df), so P(T > t) is the mean over V of
    P(Z > t·sqrt(V / df) − ncp): integrated here over u = sqrt(V / df) with Simpson's rule on the bulk of its density.
    """
    k = df / 2.0
    log_norm = math.log(2.0) + k * math.log(k) - math.lgamma(k)  # density of u: 2 k^k / Γ(k) u^(df-1) exp(-k u²)
    spread = 1.0 / math.sqrt(2.0 * df)
    hi = 1.0 + 40.0 * spread if df > 2 else 12.0
    lo = max(0.0, 1.0 - 40.0 * spread) if df > 2 else 0.0
    h = (hi - lo) / steps
    total = 0.0
    for i in range(steps + 1):
        u = lo + i * h
        if u <= 0.0 and df > 1:
            continue  # the density is 0 at u = 0 except for df = 1 (a half-normal)
        density = math.exp(log_norm + (df - 1) * math.log(u) - k * u * u) if df > 1 else math.exp(log_norm - k * u * u)
        weight = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += weight * density * (1.0 - _normal_cdf(t * u - ncp))
    return min(1.0, max(0.0, total * h / 3.0))


def power(difference: float, sd: float, n: int, alpha: float = 1.0 - LEVEL) -> float:
    """Power of the two-sided paired t-test at level ``alpha`` with ``n`` pairs whose differences spread by ``sd``,
    when the true mean difference is ``difference``: the chance that it reads "higher" or "lower".

    Args:
        difference (float): True mean of the paired differences.
        sd (float): Their standard deviation.
        n (int): Number of pairs (>= 2).
        alpha (float): Level of the test.

    Returns:
        (float): The power, in [alpha, 1].
    """
    if n < 2 or not sd > 0:
        raise ValueError(f"power needs n >= 2 pairs and sd > 0, got n={n}, sd={sd}")
    df, ncp = n - 1, abs(difference) * math.sqrt(n) / sd
    crit = t_quantile(1.0 - alpha / 2.0, df)
    return _noncentral_t_sf(crit, df, ncp) + _noncentral_t_sf(crit, df, -ncp)


def detectable_difference(sd: float, n: int, alpha: float = 1.0 - LEVEL, target: float = POWER) -> float:
    """The smallest true mean difference the paired t-test detects with probability ``target`` at level ``alpha``,
    with ``n`` pairs whose differences spread by ``sd``; NaN with fewer than 2 pairs or a NaN spread, 0 when the
    differences do not vary."""
    if n < 2 or math.isnan(sd):
        return math.nan
    if sd == 0:
        return 0.0
    lo, hi = 0.0, sd
    while power(hi, sd, n, alpha) < target:
        hi *= 2.0
    for _ in range(60):  # bisection: power grows with the difference
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if power(mid, sd, n, alpha) < target else (lo, mid)
        if hi - lo < 1e-6 * hi:
            break
    return hi


def seeds_needed(difference: float, sd: float, alpha: float = 1.0 - LEVEL, target: float = POWER) -> int | None:
    """About how many paired seeds detect a true mean difference ``difference`` with probability ``target`` at level
    ``alpha``, if the paired differences keep spreading by ``sd`` (the spread observed so far).

    Returns:
        (int | None): The smallest such number of seeds (at least 2); None when the spread is unknown (NaN) or
            more than ``MAX_SEEDS`` would be needed.
    """
    if math.isnan(sd) or not difference:
        return None
    if sd == 0:
        return 2
    if power(difference, sd, MAX_SEEDS, alpha) < target:
        return None
    lo, hi = 2, MAX_SEEDS  # power grows with n: the smallest n that reaches the target
    if power(difference, sd, lo, alpha) >= target:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if power(difference, sd, mid, alpha) < target else (lo, mid)
    return hi

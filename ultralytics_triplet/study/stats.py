"""Statistics of a paired study, with the standard library only: Student's t quantiles and paired t-intervals.

Each variant is compared with the plain model at the same seed; the mean of those paired differences gets a
two-sided t-interval with seeds − 1 degrees of freedom, and :func:`verdict` reads it in plain words.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ._fields import Fields

__all__ = ("Interval", "paired_interval", "t_quantile", "verdict")


@dataclass(frozen=True)
class Interval(Fields):
    """The mean paired difference ``b - a`` and its two-sided t-interval.

    Attributes:
        n (int): Number of pairs.
        mean (float): Mean difference.
        sd (float): Standard deviation of the differences (NaN with fewer than 2 pairs).
        lo (float): Lower bound of the interval (NaN with fewer than 2 pairs).
        hi (float): Upper bound of the interval (NaN with fewer than 2 pairs).
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


def paired_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval:
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
    d = [y - x for x, y in zip(a, b)]
    n = len(d)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.fmean(d)
    if n < 2:
        return Interval(n, mean, math.nan, math.nan, math.nan)
    sd = statistics.stdev(d)
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(n, mean, sd, mean - half, mean + half)


def verdict(interval: Interval, metric: str) -> str:
    """Plain-words reading of a paired interval: higher, lower, or no difference detectable at this many seeds."""
    n = interval.n
    if n < 2 or math.isnan(interval.lo):
        return f"only {n} paired seed{'s' * (n != 1)}: no interval"
    if interval.lo > 0:
        return f"higher {metric} (95% CI above 0, {n} seeds)"
    if interval.hi < 0:
        return f"lower {metric} (95% CI below 0, {n} seeds)"
    return f"no difference detectable at {n} seeds"

"""What a study reads of each row, as typed values: its verdict (:class:`Verdict`, with how far from detectable it is
where it detects nothing: :class:`Detectability`) and whether it is worth it (:class:`Worth`).

``decision`` makes them; they are put into words only where they are written: the table and the CSV (``report``) and
the chart (``plot``). A row's role is ``variants.Role``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ("LATENCY_TIE", "Detectability", "Finding", "Reason", "Standing", "Verdict", "Worth")

# Latency differences under 5% are ties (``Reason.TIE``), however narrow their interval. Copies of one exported model,
# timed interleaved as the study times its rows, read a few percent apart: at 200 rounds the last copy of a round read
# 0.6-5.2% faster than the first, steadily, at times with an interval that excludes 1. Many rounds make such a
# difference significant, yet it is no property of the model (benchmarks/bench_latency_noise.py and its results).
LATENCY_TIE = 0.05


class Finding(enum.Enum):
    """What a paired comparison with the plain model finds on the verdict's metric."""

    BASELINE = "baseline"  # the plain model itself: nothing to compare
    HIGHER = "higher"  # a higher value, at the 5% level
    LOWER = "lower"  # a lower value, at the 5% level
    NO_DIFFERENCE = "no difference"  # none detectable at this many seeds
    NO_INTERVAL = "no interval"  # fewer than 2 paired seeds


@dataclass(frozen=True)
class Detectability:
    """How far a comparison that detects nothing is from detecting, from the observed spread of its paired differences.

    Attributes:
        level (float): The level its test is held to: 5%, divided by the number of comparisons where Holm's method
            reads several (the level of Holm's first step, which a lone real difference must pass).
        power (float): The chance of detecting that "detectable" means (``stats.POWER``, 80%).
        difference (float): The smallest true difference, either way, that these seeds detect with that power at that
            level (0 where the paired differences do not vary).
        size (float): The difference asked about (``detect``, ``--detect``).
        seeds (int | None): About how many seeds detect a difference of ``size`` with that power at that level, if the
            paired differences keep their spread; None beyond ``stats.MAX_SEEDS``.
    """

    level: float
    power: float
    difference: float
    size: float
    seeds: int | None


@dataclass(frozen=True)
class Verdict:
    """The verdict of one row: what its paired comparison with the plain model finds, and on what evidence.

    Attributes:
        finding (Finding): Higher, lower, no difference detectable, no interval; ``BASELINE`` for the plain model.
        metric (str): The metric it reads, as the table names it (``mAP50-95``).
        seeds (int): The paired seeds it reads.
        p_holm (float | None): The Holm-adjusted p-value it read, one comparison of several; None where it read the
            row's 95% interval (one comparison, or the plain model).
        detectability (Detectability | None): Where it finds no difference: the smallest difference these seeds
            detect, and the seeds a difference of a chosen size needs; else None.
    """

    finding: Finding
    metric: str
    seeds: int
    p_holm: float | None = None
    detectability: Detectability | None = None


class Standing(enum.Enum):
    """Where a row stands when accuracy is weighed against latency (the values are the CSV's ``standing``)."""

    CHOICE = "choice"  # the only row on the front
    ON_FRONT = "on_front"  # on the front with others: each is detectably better than the rest on one count
    NOT_WORTH_IT = "not_worth_it"  # ``Worth.versus`` beats it: the plain model, or a row on the front
    UNMEASURED = "unmeasured"  # its latency was not measured: nothing to weigh


class Reason(enum.Enum):
    """Why a row stands where it does, against ``Worth.versus`` (the values are the CSV's ``reason``)."""

    UNBEATEN = "unbeaten"  # neither the plain model nor a row on the front beats it
    NO_DETECTABLE_GAIN = "no_detectable_gain"  # detectably slower than ``versus``, and not detectably more accurate
    LESS_ACCURATE = "less_accurate"  # detectably less accurate than ``versus``, at a latency within the noise
    SLOWER_AND_LESS_ACCURATE = "slower_and_less_accurate"  # detectably both
    TIE = "tie"  # no detectable difference on either count, and ``versus`` is cheaper (GFLOPs, then parameters)
    NO_LATENCY = "no_latency"  # its latency (or the plain model's) was not measured


@dataclass(frozen=True)
class Worth:
    """Whether a row is worth it against the others: its standing, the row it is weighed against, and why.

    Attributes:
        standing (Standing): The choice, on the front, not worth it, or unmeasured.
        reason (Reason): Why.
        versus (str | None): The row that beats it (the config: at least as good on both counts and detectably better
            on one, or tied on both and cheaper), where it is not worth it; else None.
        ratio (float | None): Its latency over that row's (the geometric mean over the interleaved rounds of the
            ratio in each round); None without one.
    """

    standing: Standing
    reason: Reason
    versus: str | None = None
    ratio: float | None = None

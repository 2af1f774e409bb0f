"""What a study reads of each row, as typed values: its verdict (:class:`Verdict`) and whether it is worth it
(:class:`Worth`).

``decision`` makes them; they are put into words only where they are written: the table and the CSV (``report``) and
the chart (``plot``). A row's role is ``variants.Role``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ("Finding", "Reason", "Standing", "Verdict", "Worth")


class Finding(enum.Enum):
    """What a paired comparison with the plain model finds on the verdict's metric."""

    BASELINE = "baseline"  # the plain model itself: nothing to compare
    HIGHER = "higher"  # a higher value, at the 5% level
    LOWER = "lower"  # a lower value, at the 5% level
    NO_DIFFERENCE = "no difference"  # none detectable at this many seeds
    NO_INTERVAL = "no interval"  # fewer than 2 paired seeds


@dataclass(frozen=True)
class Verdict:
    """The verdict of one row: what its paired comparison with the plain model finds, and on what evidence.

    Attributes:
        finding (Finding): Higher, lower, no difference detectable, no interval; ``BASELINE`` for the plain model.
        metric (str): The metric it reads, as the table names it (``mAP50-95``).
        seeds (int): The paired seeds it reads.
        p_holm (float | None): The Holm-adjusted p-value it read, one comparison of several; None where it read the
            row's 95% interval (one comparison, or the plain model).
    """

    finding: Finding
    metric: str
    seeds: int
    p_holm: float | None = None


class Standing(enum.Enum):
    """Where a row stands when accuracy is weighed against latency."""

    ON_FRONT = "on the front"  # no other row is better on both
    NOT_WORTH_IT = "not worth it"  # another row is better on both
    UNMEASURED = "unmeasured"  # its latency was not measured: nothing to weigh


class Reason(enum.Enum):
    """Why a row stands where it does."""

    UNBEATEN = "unbeaten"  # no row reaches a higher mean of the verdict's metric at a lower latency
    DOMINATED = "dominated"  # ``Worth.versus`` reaches a higher mean at a lower latency
    NO_LATENCY = "no latency"  # its latency (or the plain model's) was not measured


@dataclass(frozen=True)
class Worth:
    """Whether a row is worth it against the others: its standing, the row it is weighed against, and why.

    Attributes:
        standing (Standing): On the front, not worth it, or unmeasured.
        reason (Reason): Why.
        versus (str | None): The row it is weighed against (the config of the dominating row of best mean), or None.
        others (int): How many more rows beat it as ``versus`` does.
    """

    standing: Standing
    reason: Reason
    versus: str | None = None
    others: int = 0

"""What a study decides: each row's verdict (Holm-adjusted where it makes several comparisons) and whether it is worth
it, its place on the front of accuracy against latency. Both are typed values (``readings``), put into words where the
table, the CSV and the chart are written.

- **Verdict.** Each row but the plain model is a paired comparison with it on the verdict's metric. With one such
  comparison the verdict reads its 95% interval; with several, the Holm-adjusted p-values of their paired t-tests, so
  that the chance of any false "higher" or "lower" among them stays at 5%. The intervals stay unadjusted.
- **Worth it.** A row is not worth it where another row X reaches a higher mean of the verdict's metric at a lower
  latency (it is dominated by X), else it is on the front. Latencies are compared as measured side by side: each
  row's median ratio to the plain model's time in the same rounds (the bracket of the table, the x axis of the chart),
  which a load that drifts between rounds does not move.
  The means carry the intervals of the table: a front of rows whose intervals overlap is a tie, not a ranking.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from .readings import Finding, Reason, Standing, Verdict, Worth
from .report import Summary
from .stats import LEVEL, Interval, holm, t_test_p

__all__ = ("dominators", "front", "judge", "verdict")


def verdict(interval: Interval, metric: str, p_holm: float | None = None) -> Verdict:
    """The verdict of a paired comparison: higher, lower, or no difference detectable at this many seeds.

    Alone (``p_holm`` None) it reads the 95% interval; one of several comparisons, the Holm-adjusted p-value of its
    t-test at the 5% level (which for a single comparison says the same as the interval).
    """
    n = interval.n
    if n < 2 or math.isnan(interval.lo):
        return Verdict(Finding.NO_INTERVAL, metric, n, p_holm)
    if p_holm is None:
        finding = Finding.HIGHER if interval.lo > 0 else Finding.LOWER if interval.hi < 0 else Finding.NO_DIFFERENCE
    elif p_holm < 1.0 - LEVEL and interval.mean != 0:
        finding = Finding.HIGHER if interval.mean > 0 else Finding.LOWER
    else:
        finding = Finding.NO_DIFFERENCE
    return Verdict(finding, metric, n, p_holm)


def judge(rows: Sequence[Summary]) -> list[Summary]:
    """The rows with the p-value of each paired t-test, its Holm adjustment over the comparisons, and the verdict."""
    compared = list(rows[1:])
    p = [t_test_p(r.verdict_metric.difference) for r in compared]
    adjusted = holm(p)
    several = len(compared) > 1
    judged = [rows[0]]
    for r, p_value, p_holm in zip(compared, p, adjusted):
        judged.append(dataclasses.replace(r, p_value=p_value, p_holm=p_holm, verdict=verdict(
            r.verdict_metric.difference, r.verdict_metric.label, p_holm if several else None)))
    return judged


def _measured(row: Summary) -> bool:
    return row.cost is not None and not math.isnan(row.cost.latency_ratio)


def dominators(row: Summary, rows: Sequence[Summary]) -> list[Summary]:
    """The rows with a higher mean of the verdict's metric at a lower latency than ``row``, best mean first."""
    if not _measured(row):
        return []
    better = [o for o in rows if o is not row and _measured(o) and o.verdict_metric.mean > row.verdict_metric.mean
              and o.cost.latency_ratio < row.cost.latency_ratio]
    return sorted(better, key=lambda o: -o.verdict_metric.mean)


def front(rows: Sequence[Summary]) -> list[Summary]:
    """The rows with their :class:`Worth`: on the front, or not worth it against the dominating row of best mean
    (``others``: how many more dominate it); unmeasured where its latency was not measured."""
    out = []
    for r in rows:
        over = dominators(r, rows)
        if not _measured(r):
            worth = Worth(Standing.UNMEASURED, Reason.NO_LATENCY)
        elif over:
            worth = Worth(Standing.NOT_WORTH_IT, Reason.DOMINATED, versus=over[0].config, others=len(over) - 1)
        else:
            worth = Worth(Standing.ON_FRONT, Reason.UNBEATEN)
        out.append(dataclasses.replace(r, worth=worth))
    return out

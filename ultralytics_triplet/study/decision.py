"""What a study decides: each row's verdict (Holm-adjusted where it makes several comparisons) and its place on the
front of accuracy against latency.

- **Verdict.** Each row but the plain model is a paired comparison with it on the verdict's metric. With one such
  comparison the verdict reads its 95% interval; with several, the Holm-adjusted p-values of their paired t-tests, so
  that the chance of any false "higher" or "lower" among them stays at 5%. The intervals stay unadjusted.
- **Front.** A row is ``dominated by X`` where another row X reaches a higher mean of the verdict's metric at a lower
  latency, else it is ``on the front``. Latencies are compared as measured side by side: each row's median ratio to
  the plain model's time in the same rounds (the bracket of the table, the x axis of the chart), which a load that
  drifts between rounds does not move.
  The means carry the intervals of the table: a front of rows whose intervals overlap is a tie, not a ranking.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from .report import Summary
from .stats import holm, t_test_p, verdict

__all__ = ("ON_FRONT", "front", "judge")

ON_FRONT = "on the front"


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


def dominators(row: Summary, rows: Sequence[Summary]) -> list[Summary]:
    """The rows with a higher mean of the verdict's metric at a lower latency than ``row``, best mean first."""
    if row.cost is None or math.isnan(row.cost.latency_ratio):
        return []
    better = [o for o in rows if o is not row and o.cost is not None and not math.isnan(o.cost.latency_ratio)
              and o.verdict_metric.mean > row.verdict_metric.mean and o.cost.latency_ratio < row.cost.latency_ratio]
    return sorted(better, key=lambda o: -o.verdict_metric.mean)


def front(rows: Sequence[Summary]) -> list[Summary]:
    """The rows with their reading: ``on the front``, or ``dominated by X`` (the dominating row of best mean; ``+N``
    more where others dominate it too); ``-`` where its latency was not measured."""
    out = []
    for r in rows:
        if r.cost is None or math.isnan(r.cost.latency_ratio):
            reading = "-"
        else:
            over = dominators(r, rows)
            reading = ON_FRONT if not over else f"dominated by {over[0].config}" + (
                f" (+{len(over) - 1} more)" if len(over) > 1 else "")
        out.append(dataclasses.replace(r, front=reading))
    return out

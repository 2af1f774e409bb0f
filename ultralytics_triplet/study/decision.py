"""What a study decides: each row's verdict (Holm-adjusted where it makes several comparisons) with how far from
detectable it is, and whether it is worth it, weighed on the same paired evidence. Both are typed values
(``readings``), put into words where the table, the CSV and the chart are written.

- **Verdict.** Each row but the plain model is a paired comparison with it on the verdict's metric. With one such
  comparison the verdict reads its 95% interval; with several, the Holm-adjusted p-values of their paired t-tests, so
  that the chance of any false "higher" or "lower" among them stays at 5%. The intervals stay unadjusted.
- **How far from detectable.** Where a verdict finds no difference, :class:`~.readings.Detectability` says, from the
  observed spread of its paired differences, the smallest difference its seeds detect with the power
  ``stats.POWER`` (80%), and about how many seeds a difference of size ``detect`` (``--detect``, 0.01) needs. The
  test is held to the level a lone real difference must pass: 5%, divided by the number of comparisons where Holm's
  method reads several (its first step), else 5%.
- **Worth it.** Weighed on the same paired evidence, so that a row is worth its cost only where its gain is
  detectable. One row *beats* another where it is detectably better on one count (accuracy, latency) and not
  detectably worse on the other, or where the two tie on both counts (differences within the noise are ties) and it
  is cheaper: a tie goes to the cheaper row. Cheaper is fewer GFLOPs, then fewer parameters, then the row listed first
  (the plain model is listed first, and is the cheapest of its own placements): counts, not timings, so the tie-break
  is not noise.

  1. A row the plain model beats is not worth it: that is its verdict, whatever becomes of the plain model.
  2. Otherwise a row is not worth it only where a row on the front beats it: a row the front does not want cannot put
     another off it. The front is settled outward from the rows nothing beats: a row whose every beater is off the
     front stands on it.

  The rows left are the front. One is the choice; several are each detectably better than each other on one count,
  a trade-off for a latency budget to settle. A row not worth it is weighed against a row that beats it: one on the
  front where one does (the row a user would take instead), the cheapest of them.

  - *Accuracy* is compared paired by seed, as the verdict: against the plain model by the verdict itself (the same
    Holm-adjusted test), so the two columns never contradict; between two other rows by the 95% paired t-interval of
    their difference, unadjusted like the intervals of the table.
  - *Latency* is compared paired by interleaved round: a row's time over another's in the same round, as a 95%
    t-interval of the mean log ratio over the rounds (``stats.log_ratio_interval``; its exponential is the
    geometric-mean ratio). A row is detectably slower only where that interval lies above 1 + ``LATENCY_TIE`` (5%),
    faster only where it lies below 1 / (1 + ``LATENCY_TIE``): with many rounds a steady difference of a percent or
    two becomes significant, and a percent or two is what two copies of one model differ by
    (``readings.LATENCY_TIE``). With fewer than 2 rounds the ratio is compared as a point.

  "Detectably better" is not transitive across pairs of intervals, so rows can beat each other in a circle; the rows
  of such a circle are weighed among themselves alone: first the rows no other row of it is better than (where
  "better" itself runs in a circle, all of that circle), then of those the ones no cheaper one ties with. So the
  front is never empty.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from .options import DETECT
from .readings import LATENCY_TIE, Detectability, Finding, Reason, Standing, Verdict, Worth
from .report import Summary
from .stats import (
    LEVEL,
    POWER,
    Interval,
    detectable_difference,
    holm,
    log_ratio_interval,
    paired_interval,
    seeds_needed,
    t_test_p,
)

__all__ = ("detectability", "front", "judge", "verdict")

def detectability(interval: Interval, comparisons: int = 1, size: float = DETECT) -> Detectability:
    """How far a paired comparison that detects nothing is from detecting, from the spread of its differences.

    Args:
        interval (Interval): The paired differences (their number and standard deviation are read).
        comparisons (int): How many comparisons Holm's method reads (1: the interval alone): the test is held to 5%
            divided by it, the level of Holm's first step.
        size (float): The difference to say the seeds needed for.

    Returns:
        (Detectability): The level, the power (``stats.POWER``), the smallest difference detectable at these seeds,
            and the seeds ``size`` needs.
    """
    level = (1.0 - LEVEL) / max(1, comparisons)
    return Detectability(level=level, power=POWER, difference=detectable_difference(interval.sd, interval.n, level),
                         size=size, seeds=seeds_needed(size, interval.sd, level))


def verdict(interval: Interval, metric: str, p_holm: float | None = None, comparisons: int = 1,
            detect: float = DETECT) -> Verdict:
    """The verdict of a paired comparison: higher, lower, or no difference detectable at this many seeds (with its
    :func:`detectability` for a difference of ``detect`` among ``comparisons`` comparisons).

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
    if finding is not Finding.NO_DIFFERENCE:
        return Verdict(finding, metric, n, p_holm)
    return Verdict(finding, metric, n, p_holm, detectability(interval, comparisons, detect))


def judge(rows: Sequence[Summary], detect: float = DETECT) -> list[Summary]:
    """The rows with the p-value of each paired t-test, its Holm adjustment over the comparisons, and the verdict
    (saying, where it finds no difference, how far from detectable it is: for a difference of ``detect``)."""
    compared = list(rows[1:])
    p = [t_test_p(r.verdict_metric.difference) for r in compared]
    adjusted = holm(p)
    tested = sum(not math.isnan(x) for x in p)
    several = len(compared) > 1
    judged = [rows[0]]
    for r, p_value, p_holm in zip(compared, p, adjusted):
        judged.append(dataclasses.replace(r, p_value=p_value, p_holm=p_holm, verdict=verdict(
            r.verdict_metric.difference, r.verdict_metric.label, p_holm if several else None,
            tested if several else 1, detect)))
    return judged


def _measured(row: Summary) -> bool:
    return row.cost is not None and not math.isnan(row.cost.latency_ratio)


def _sign(lo: float, hi: float, margin: float = 0.0) -> int:
    """+1 where the interval lies above ``margin``, -1 where below ``-margin``, 0 where it reaches into between."""
    return 1 if lo > margin else -1 if hi < -margin else 0


def _accuracy(a: Summary, b: Summary, plain: Summary) -> int:
    """+1 where ``a`` is detectably more accurate than ``b``, -1 where less, 0 where the seeds cannot tell them apart:
    against the plain model by the verdict, between two other rows by the 95% paired interval of their difference."""
    if a is plain or b is plain:
        other = b if a is plain else a
        found = {Finding.HIGHER: 1, Finding.LOWER: -1}.get(other.verdict.finding, 0)
        return found if b is plain else -found
    d = paired_interval(b.verdict_metric.values, a.verdict_metric.values)
    return 0 if d.n < 2 or math.isnan(d.lo) else _sign(d.lo, d.hi)


def _log_ratio(a: Summary, b: Summary) -> Interval:
    """The log of ``a``'s latency over ``b``'s in the same rounds, with its 95% interval; where the rounds were not
    kept, or fewer than 2, the ratio of their latencies as a point."""
    ra, rb = a.cost.rounds, b.cost.rounds
    d = log_ratio_interval(rb, ra) if len(ra) == len(rb) >= 2 else None
    if d is None or math.isnan(d.lo):
        mean = math.log(a.cost.latency_ratio / b.cost.latency_ratio)
        return Interval(1, mean, math.nan, mean, mean)
    return d


@dataclasses.dataclass(frozen=True)
class _Pair:
    """How one row compares with another: in accuracy and in latency (+1 detectably more accurate / slower, -1 less /
    faster, 0 a tie), and the geometric-mean ratio of their latencies."""

    accuracy: int
    latency: int
    ratio: float

    @property
    def better(self) -> bool:
        """Detectably better on one count and not detectably worse on the other."""
        return self.accuracy >= 0 and self.latency <= 0 and (self.accuracy > 0 or self.latency < 0)

    @property
    def tie(self) -> bool:
        """No detectable difference on either count."""
        return self.accuracy == 0 and self.latency == 0


def _pairs(rows: Sequence[Summary], plain: Summary) -> dict[tuple[int, int], _Pair]:
    """Every ordered pair of the rows, by position: each comparison made once and mirrored, so that no rounding makes
    two rows disagree about each other."""
    pairs = {}
    for i, a in enumerate(rows):
        for j in range(i + 1, len(rows)):
            accuracy, d = _accuracy(a, rows[j], plain), _log_ratio(a, rows[j])
            latency = _sign(d.lo, d.hi, math.log1p(LATENCY_TIE))
            pairs[i, j] = _Pair(accuracy, latency, math.exp(d.mean))
            pairs[j, i] = _Pair(-accuracy, -latency, math.exp(-d.mean))
    return pairs


_REASONS = {(0, 1): Reason.NO_DETECTABLE_GAIN, (-1, 0): Reason.LESS_ACCURATE, (-1, 1): Reason.SLOWER_AND_LESS_ACCURATE,
            (0, 0): Reason.TIE}  # (accuracy, latency) of a row against one that makes it not worth it -> why


def _two_steps(rows: Sequence[int], pairs: dict[tuple[int, int], _Pair], cheap: Sequence[tuple]) -> list[int]:
    """The front of ``rows`` (positions) weighed among themselves alone, in two steps: the rows that no other beats
    (where "better" runs in a circle, the circle's rows that nothing outside it beats), then, of those, the rows no
    cheaper one of them ties with. Never empty."""
    better = {k: {j for j in rows if j != k and pairs[k, j].better} for k in rows}
    reached = {}
    for start in rows:  # the rows ``start`` is better than, the rows those are better than, and so on
        seen, todo = set(), [start]
        while todo:
            for j in better[todo.pop()] - seen:
                seen.add(j)
                todo.append(j)
        reached[start] = seen
    left = [j for j in rows if all(i in reached[j] for i in rows if j in better[i])]
    return [j for j in left if not any(i != j and pairs[i, j].tie and cheap[i] < cheap[j] for i in left)]


def _settled(n: int, pairs: dict[tuple[int, int], _Pair], cheap: Sequence[tuple], plain: int | None) -> list[bool]:
    """Which of ``n`` rows stand on the front. A row is off it where the plain model (position ``plain``; None where it
    was not measured) beats it (better on one count, not worse on the other) or ties with it on both and is cheaper:
    those are the verdicts, which hold whether or not the plain model stays on the front. Otherwise a row is off the
    front only where a row on it beats it or ties with it more cheaply. Settled outward from the rows nothing beats: a
    row whose every beater is off the front stands on it, a row that one on it beats is off it. Rows left unsettled
    are a circle of rows that beat each other (paired intervals are not transitive) and the rows only they beat; they
    are weighed among themselves alone (:func:`_two_steps`)."""
    beats = [[i for i in range(n) if i != j and (pairs[i, j].better or (pairs[i, j].tie and cheap[i] < cheap[j]))]
             for j in range(n)]
    on = {j: False for j in range(n) if plain in beats[j]}
    changed = True
    while changed:
        changed = False
        for j in (j for j in range(n) if j not in on):
            if any(on.get(i) for i in beats[j]):
                on[j] = False  # a row on the front beats it
            elif all(on.get(i) is False for i in beats[j]):
                on[j] = True  # every row that beats it is off the front
            else:
                continue
            changed = True
    unsettled = [j for j in range(n) if j not in on]
    kept = set(_two_steps(unsettled, pairs, cheap)) if unsettled else set()
    on.update({j: j in kept for j in unsettled})
    return [on[j] for j in range(n)]


def front(rows: Sequence[Summary]) -> list[Summary]:
    """The judged rows with their :class:`Worth`: the choice (the only row on the front), on the front, or not worth
    it (:func:`_settled`), weighed against a row that is detectably better on one count and not worse on the other, or
    that ties with it on both and is cheaper (one on the front where one is, the cheapest of them); unmeasured where
    the latency was not measured.

    Raises:
        ValueError: If the rows are not judged yet (:func:`judge`): the front reads their verdicts.
    """
    if any(r.verdict is None for r in rows):
        raise ValueError("the front reads the verdicts: judge the rows first")
    measured = [r for r in rows if _measured(r)]
    n, pairs = len(measured), _pairs(measured, rows[0])
    cheap = [(r.cost.gflops, r.cost.parameters, k) for k, r in enumerate(measured)]
    on_front = _settled(n, pairs, cheap, 0 if measured and measured[0] is rows[0] else None)
    worth = {}
    for j, r in enumerate(measured):
        if on_front[j]:
            worth[id(r)] = Worth(Standing.CHOICE if sum(on_front) == 1 else Standing.ON_FRONT, Reason.UNBEATEN)
            continue
        against = [i for i in range(n) if i != j and (pairs[i, j].better or (pairs[i, j].tie and cheap[i] < cheap[j]))]
        v = min(against, key=lambda i: (not on_front[i], cheap[i]))  # the row a user would take instead, if it is one
        p = pairs[j, v]
        worth[id(r)] = Worth(Standing.NOT_WORTH_IT, _REASONS[p.accuracy, p.latency], measured[v].config, p.ratio)
    unmeasured = Worth(Standing.UNMEASURED, Reason.NO_LATENCY)
    return [dataclasses.replace(r, worth=worth.get(id(r), unmeasured)) for r in rows]

"""What a study decides (``ultralytics_triplet.study.decision``): each row's verdict, how far from detectable it is, and
whether it is worth it, as typed values (``study.readings``); their words are the report's (test_study_report.py).

The worth-it tests build studies whose outcome is known by construction: per-seed metrics and per-round latencies
chosen so that a row is identical to the plain model, clearly better but slower, slower and no better, or within the
timing noise.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from helpers import costed, fake_plan, fake_records, fake_variants

from ultralytics_triplet.study.decision import detectability, front, judge, verdict
from ultralytics_triplet.study.readings import LATENCY_TIE, Detectability, Finding, Reason, Standing, Verdict, Worth
from ultralytics_triplet.study.report import summarize
from ultralytics_triplet.study.stats import (
    LEVEL,
    POWER,
    detectable_difference,
    holm,
    log_ratio_interval,
    paired_interval,
    power,
    seeds_needed,
    t_test_p,
)
from ultralytics_triplet.study.variants import Role

pytestmark = pytest.mark.compat

PLAIN = [0.50, 0.60, 0.70]
ROUNDS = 12
PLAIN_MS = [5.0 * (1 + 0.2 * math.sin(k)) for k in range(ROUNDS)]  # a load that drifts from round to round


def timed(ratio: float, jitter: float = 0.01) -> list[float]:
    """Per-round ms of a row that takes ``ratio`` times the plain model's time, with noise of its own in each round
    (relative, up to ``jitter``)."""
    return [ms * ratio * (1 + jitter * math.sin(2.3 * k + 1)) for k, ms in enumerate(PLAIN_MS)]


def study(values: dict[str, list[float]], ratios: list[float], *more, gflops=None, jitter=0.01, detect=0.01):
    """Judge and weigh a made-up study: the plain yolov5n, TA after layer 4 and ``more`` rows, with ``values`` of
    mAP50-95 per seed and each row timed at ``ratios`` of the plain model's time (row order)."""
    plan = fake_plan(fake_variants(*more), seeds=len(values["yolov5n.yaml"]))
    rows = judge(summarize(plan, fake_records(values)), detect)
    times = {k: timed(r, 0.0 if k == 0 else jitter) for k, r in enumerate(ratios)}
    return front(costed(rows, [5.0] * len(rows), rounds=times, gflops=gflops))


def latency_against_plain(row, plain) -> int:
    """+1 where ``row`` is detectably slower than the plain model by the study's rule, -1 faster, 0 a tie."""
    d = log_ratio_interval(plain.cost.rounds, row.cost.rounds)
    floor = math.log1p(LATENCY_TIE)
    return 1 if d.lo > floor else -1 if d.hi < -floor else 0


def assert_agree(rows) -> None:
    """The verdict column and the worth-it column never contradict each other, and the front is never empty."""
    plain = rows[0]
    standings = [r.worth.standing for r in rows]
    assert standings.count(Standing.CHOICE) == 1 or standings.count(Standing.ON_FRONT) >= 2, standings
    assert Standing.CHOICE not in standings or Standing.ON_FRONT not in standings
    for r in rows[1:]:
        finding, w = r.verdict.finding, r.worth
        if w.standing is Standing.NOT_WORTH_IT and w.versus == plain.config:
            gainless = (Reason.NO_DETECTABLE_GAIN, Reason.TIE)
            assert (w.reason in gainless) == (finding in (Finding.NO_DIFFERENCE, Finding.NO_INTERVAL)), (r.config, w)
            assert finding is not Finding.HIGHER  # a detectable gain is never "not worth it" against the plain model
        if plain.worth.standing is Standing.NOT_WORTH_IT and plain.worth.versus == r.config:
            assert finding is not Finding.LOWER  # nor is the plain model against a row detectably below it
        if w.standing in (Standing.CHOICE, Standing.ON_FRONT) and latency_against_plain(r, plain) > 0:
            assert finding is Finding.HIGHER, r.config  # slower than the plain model: worth it only for a gain


# ------------------------------------------------------------------------------------------------------------ verdict


def test_alone_a_verdict_reads_the_95_percent_interval():
    small = paired_interval(PLAIN, [0.52, 0.63, 0.71])  # the interval holds 0
    assert verdict(small, "mAP50-95") == Verdict(Finding.NO_DIFFERENCE, "mAP50-95", 3, None, detectability(small))
    assert verdict(paired_interval(PLAIN, [0.60, 0.71, 0.82]), "mAP50-95") == Verdict(Finding.HIGHER, "mAP50-95", 3)
    assert verdict(paired_interval(PLAIN, [0.40, 0.49, 0.58]), "mAP50-95") == Verdict(Finding.LOWER, "mAP50-95", 3)
    assert verdict(paired_interval([0.5], [0.6]), "mAP50-95") == Verdict(Finding.NO_INTERVAL, "mAP50-95", 1)


def test_a_verdict_among_several_comparisons_reads_the_holm_adjusted_p_value():
    d = paired_interval(PLAIN, [0.60, 0.71, 0.82])  # the interval alone says higher
    assert verdict(d, "mAP50-95", p_holm=0.012) == Verdict(Finding.HIGHER, "mAP50-95", 3, 0.012)
    assert verdict(d, "mAP50-95", p_holm=0.06, comparisons=2).finding is Finding.NO_DIFFERENCE
    lower = paired_interval(PLAIN, [0.40, 0.49, 0.58])
    assert verdict(lower, "mAP50-95", p_holm=0.001) == Verdict(Finding.LOWER, "mAP50-95", 3, 0.001)


def test_several_comparisons_are_judged_by_holm_over_all_of_them_references_included():
    plan = fake_plan(fake_variants(("yolov5s.yaml", Role.REFERENCE, None), ("yolov5n+CBAM@4.yaml", Role.VARIANT,
                                                                            "CBAM")), seeds=3)
    values = {"yolov5n.yaml": [0.10, 0.20, 0.30], "yolov5n+TA@4.yaml": [0.11, 0.215, 0.33],
              "yolov5s.yaml": [0.20, 0.31, 0.40], "yolov5n+CBAM@4.yaml": [0.09, 0.20, 0.31]}
    rows = judge(summarize(plan, fake_records(values)))
    p = [t_test_p(r.verdict_metric.difference) for r in rows[1:]]
    assert [r.p_value for r in rows[1:]] == p
    assert [r.p_holm for r in rows[1:]] == holm(p)  # over the three comparisons
    assert rows[0].verdict == Verdict(Finding.BASELINE, "mAP50-95", 3)
    assert rows[2].p_value < 0.05 and rows[2].verdict == verdict(rows[2].verdict_metric.difference, "mAP50-95",
                                                                 rows[2].p_holm, comparisons=3)
    assert all(r.verdict.p_holm == r.p_holm for r in rows[1:])  # each reads Holm, not its unadjusted interval


def test_one_comparison_keeps_the_interval_verdict():
    rows = judge(summarize(fake_plan(seeds=3), fake_records({"yolov5n.yaml": [0.1, 0.2, 0.3],
                                                             "yolov5n+TA@4.yaml": [0.2, 0.31, 0.39]})))
    assert rows[1].verdict == Verdict(Finding.HIGHER, "mAP50-95", 3) and rows[1].p_holm == rows[1].p_value


# ------------------------------------------------------------------------------------------ how far from detectable


def test_no_difference_says_the_smallest_detectable_and_the_seeds_a_chosen_difference_needs_at_the_holm_level():
    plan = fake_plan(fake_variants(("yolov5s.yaml", Role.REFERENCE, None), ("yolov5n+CBAM@4.yaml", Role.VARIANT,
                                                                            "CBAM")), seeds=4)
    values = {"yolov5n.yaml": [0.30, 0.32, 0.29, 0.31], "yolov5n+TA@4.yaml": [0.31, 0.31, 0.30, 0.33],
              "yolov5s.yaml": [0.40, 0.42, 0.39, 0.41], "yolov5n+CBAM@4.yaml": [0.29, 0.33, 0.28, 0.32]}
    rows = judge(summarize(plan, fake_records(values)), detect=0.02)
    assert rows[2].verdict.finding is Finding.HIGHER and rows[2].verdict.detectability is None
    level = (1 - LEVEL) / 3  # three comparisons: the level of Holm's first step, which a lone real difference passes
    for r in (rows[1], rows[3]):
        d, diff = r.verdict.detectability, r.verdict_metric.difference
        assert r.verdict.finding is Finding.NO_DIFFERENCE
        assert (d.level, d.power, d.size) == (pytest.approx(level), POWER, 0.02)
        assert d.difference == detectable_difference(diff.sd, 4, level) > abs(diff.mean)
        assert power(d.difference, diff.sd, 4, level) == pytest.approx(POWER, abs=1e-3)  # what "detectable" means
        assert d.seeds == seeds_needed(0.02, diff.sd, level) > 4
        assert power(0.02, diff.sd, d.seeds, level) >= POWER > power(0.02, diff.sd, d.seeds - 1, level)
    alone = judge(summarize(fake_plan(seeds=4), fake_records({k: values[k] for k in list(values)[:2]})))
    assert alone[1].verdict.detectability.level == pytest.approx(1 - LEVEL)  # one comparison: 5%
    assert alone[1].verdict.detectability.size == 0.01  # the default difference


def test_seeds_needed_beyond_what_stats_searches_is_none():
    wide = paired_interval([0.1, 0.5], [0.5, 0.1])  # differences of ±0.4: 0.001 is out of reach
    assert detectability(wide, size=0.001) == Detectability(1 - LEVEL, POWER, detectable_difference(wide.sd, 2),
                                                            0.001, None)


# ---------------------------------------------------------------------------------------------------------- worth it


def test_studies_of_known_outcome_read_the_same_in_both_columns():
    plain = [0.30, 0.33, 0.28, 0.31, 0.35]
    values = {"yolov5n.yaml": plain,
              "yolov5n+TA@4.yaml": list(plain),  # identical to the plain model
              "yolov5s.yaml": [v + g for v, g in zip(plain, [0.10, 0.11, 0.09, 0.10, 0.12])],  # clearly better
              "yolov5n+CBAM@4.yaml": [v + g for v, g in zip(plain, [0.01, -0.012, 0.004, -0.006, 0.003])]}
    rows = study(values, [1.0, 1.0, 2.5, 1.2], ("yolov5s.yaml", Role.REFERENCE, None),
                 ("yolov5n+CBAM@4.yaml", Role.VARIANT, "CBAM"))
    assert [r.verdict.finding for r in rows[1:]] == [Finding.NO_DIFFERENCE, Finding.HIGHER, Finding.NO_DIFFERENCE]
    identical, better, slower = rows[1].worth, rows[2].worth, rows[3].worth
    assert rows[0].worth == better == Worth(Standing.ON_FRONT, Reason.UNBEATEN)  # a trade-off: both on the front
    assert (identical.standing, identical.reason, identical.versus) == (Standing.NOT_WORTH_IT, Reason.TIE,
                                                                        "yolov5n.yaml")
    assert (slower.standing, slower.reason, slower.versus) == (Standing.NOT_WORTH_IT, Reason.NO_DETECTABLE_GAIN,
                                                               "yolov5n.yaml")
    assert slower.ratio == pytest.approx(1.2, rel=0.01)
    assert_agree(rows)

    same_cost = [dataclasses.replace(r, cost=dataclasses.replace(r.cost, parameters=1000)) for r in rows[:2]]
    alone = front(same_cost)  # as cheap as the plain model too: the tie goes to the row listed first
    assert [r.worth.standing for r in alone] == [Standing.CHOICE, Standing.NOT_WORTH_IT]


def test_with_too_few_seeds_a_gain_is_not_worth_its_latency_and_with_enough_it_is_on_the_front():
    gains = [0.03, 0.01]  # a steady gain of 0.02 that 2 seeds cannot tell from noise
    two = study({"yolov5n.yaml": [0.30, 0.32], "yolov5n+TA@4.yaml": [0.33, 0.33]}, [1.0, 1.19])
    assert two[1].verdict.finding is Finding.NO_DIFFERENCE
    assert (two[0].worth.standing, two[1].worth.reason) == (Standing.CHOICE, Reason.NO_DETECTABLE_GAIN)
    plain = [0.30 + 0.01 * (k % 3) for k in range(10)]
    ten = study({"yolov5n.yaml": plain, "yolov5n+TA@4.yaml": [v + gains[k % 2] for k, v in enumerate(plain)]},
                [1.0, 1.19])
    assert ten[1].verdict.finding is Finding.HIGHER
    assert [r.worth.standing for r in ten] == [Standing.ON_FRONT, Standing.ON_FRONT]
    assert_agree(two)
    assert_agree(ten)


@pytest.mark.parametrize("ratio, jitter, gflops, standings, reason", [
    (1.02, 0.001, [0.5, 0.5], ["CHOICE", "NOT_WORTH_IT"], "TIE"),  # 2% slower in every round: a tie all the same
    (0.98, 0.001, [0.5, 0.6], ["CHOICE", "NOT_WORTH_IT"], "TIE"),  # 2% faster but costlier: the plain model
    (0.98, 0.001, [0.5, 0.4], ["NOT_WORTH_IT", "CHOICE"], "TIE"),  # 2% faster and cheaper: the tie goes to it
    (1.10, 0.01, [0.5, 0.5], ["CHOICE", "NOT_WORTH_IT"], "NO_DETECTABLE_GAIN"),  # 10% slower, steadily
    (1.10, 0.3, [0.5, 0.5], ["CHOICE", "NOT_WORTH_IT"], "TIE"),  # 10% slower, but within its noisy rounds
    (0.80, 0.01, [0.5, 0.6], ["NOT_WORTH_IT", "CHOICE"], "NO_DETECTABLE_GAIN"),  # detectably faster: it wins
])
def test_latency_is_weighed_with_its_spread_and_differences_under_the_floor_are_ties(ratio, jitter, gflops, standings,
                                                                                     reason):
    rows = study({"yolov5n.yaml": [0.30, 0.33, 0.31], "yolov5n+TA@4.yaml": [0.31, 0.32, 0.31]}, [1.0, ratio],
                 gflops=gflops, jitter=jitter)
    assert [r.worth.standing.name for r in rows] == standings
    loser = next(r for r in rows if r.worth.standing is Standing.NOT_WORTH_IT)
    assert loser.worth.reason.name == reason
    assert loser.worth.versus == next(r.config for r in rows if r is not loser)
    assert_agree(rows)


@pytest.mark.parametrize("ratio, reason", [(1.2, Reason.NO_DETECTABLE_GAIN), (1.03, Reason.TIE)])
def test_with_one_latency_round_the_ratio_is_read_as_a_point_against_the_floor(ratio, reason):
    plan = fake_plan(seeds=3)
    rows = judge(summarize(plan, fake_records({"yolov5n.yaml": [0.30, 0.33, 0.31],
                                               "yolov5n+TA@4.yaml": [0.31, 0.32, 0.31]})))
    rows = front(costed(rows, [5.0, 5.0 * ratio], rounds={0: [5.0], 1: [5.0 * ratio]}))  # --latency-runs 1
    assert math.isnan(rows[1].cost.latency_lo)
    assert (rows[0].worth.standing, rows[1].worth.reason) == (Standing.CHOICE, reason)


def test_a_row_detectably_below_the_plain_model_is_less_accurate_at_a_tied_latency():
    rows = study({"yolov5n.yaml": [0.30, 0.33, 0.31, 0.32], "yolov5n+TA@4.yaml": [0.20, 0.24, 0.21, 0.22]},
                 [1.0, 1.01])
    assert rows[1].verdict.finding is Finding.LOWER
    assert (rows[1].worth.reason, rows[1].worth.versus) == (Reason.LESS_ACCURATE, "yolov5n.yaml")
    slow = study({"yolov5n.yaml": [0.30, 0.33, 0.31, 0.32], "yolov5n+TA@4.yaml": [0.20, 0.24, 0.21, 0.22]},
                 [1.0, 1.5])
    assert slow[1].worth.reason is Reason.SLOWER_AND_LESS_ACCURATE


def test_the_plain_models_ties_hold_even_where_a_faster_row_puts_it_off_the_front():
    """The plain model ties with B, B with C, and C is detectably faster than the plain model: C beats the plain model,
    and B, tied with the cheaper plain model, is not worth it whatever becomes of the plain model: C is the choice."""
    values = {"yolov5n.yaml": [0.30, 0.33, 0.31], "yolov5n+TA@4.yaml": [0.31, 0.32, 0.31],
              "yolov5n+CBAM@4.yaml": [0.30, 0.33, 0.30]}
    rows = study(values, [1.0, 0.965, 0.93], ("yolov5n+CBAM@4.yaml", Role.VARIANT, "CBAM"), gflops=[0.5, 0.6, 0.7],
                 jitter=0.001)
    assert [r.worth.standing for r in rows] == [Standing.NOT_WORTH_IT, Standing.NOT_WORTH_IT, Standing.CHOICE]
    assert (rows[0].worth.reason, rows[0].worth.versus) == (Reason.NO_DETECTABLE_GAIN, "yolov5n+CBAM@4.yaml")
    assert (rows[1].worth.reason, rows[1].worth.versus) == (Reason.TIE, "yolov5n.yaml")
    assert_agree(rows)


def test_rows_that_beat_each_other_in_a_circle_still_leave_a_front():
    """Three rows detectably more accurate than the plain model and slower: A ties with B and is cheaper, B with C and
    is cheaper, and C is detectably faster than A. Weighed among themselves, C beats A and B, cheaper, ties with C: B
    stands beside the plain model, the faster and less accurate trade-off."""
    plain = [0.30, 0.33, 0.28, 0.31, 0.35]
    gains = {"yolov5n+TA@4.yaml": [0.050, 0.052, 0.048, 0.051, 0.049],
             "yolov5n+CBAM@4.yaml": [0.049, 0.051, 0.050, 0.048, 0.052],
             "yolov5n+SE@4.yaml": [0.051, 0.049, 0.050, 0.052, 0.048]}
    values = {"yolov5n.yaml": plain, **{name: [v + g for v, g in zip(plain, gain)] for name, gain in gains.items()}}
    rows = study(values, [1.0, 1.30, 1.265, 1.23], ("yolov5n+CBAM@4.yaml", Role.VARIANT, "CBAM"),
                 ("yolov5n+SE@4.yaml", Role.VARIANT, "SE"), gflops=[0.5, 0.6, 0.7, 0.8], jitter=0.001)
    assert [r.verdict.finding for r in rows[1:]] == [Finding.HIGHER] * 3
    assert [r.worth.standing for r in rows] == [Standing.ON_FRONT, Standing.NOT_WORTH_IT, Standing.ON_FRONT,
                                                Standing.NOT_WORTH_IT]
    assert (rows[1].worth.reason, rows[1].worth.versus) == (Reason.NO_DETECTABLE_GAIN, "yolov5n+SE@4.yaml")
    assert (rows[3].worth.reason, rows[3].worth.versus) == (Reason.TIE, "yolov5n+CBAM@4.yaml")
    assert_agree(rows)


def test_a_row_that_the_cheaper_plain_model_ties_does_not_put_a_detectable_gain_off_the_front():
    """The demo's table (2 seeds): the larger model is detectably more accurate than the plain one and three times as
    slow, a trade-off; the placements tie with the plain model, which is cheaper. Between a placement and the larger
    model, 2 seeds tell no accuracy apart, and the placement is faster: a row the plain model puts off the front must
    not put the larger model off it too."""
    plain = [0.4333, 0.4727]
    values = {"yolov5n.yaml": plain,
              "yolov5n+TA@4.yaml": [v + d for v, d in zip(plain, [-0.0565, -0.0007])],
              "yolov5s.yaml": [v + d for v, d in zip(plain, [0.2018, 0.2022])],
              "yolov5n+CBAM@4.yaml": [v + d for v, d in zip(plain, [-0.0345, -0.0306])]}
    rows = study(values, [1.0, 1.06, 3.08, 0.98], ("yolov5s.yaml", Role.REFERENCE, None),
                 ("yolov5n+CBAM@4.yaml", Role.VARIANT, "CBAM"), gflops=[4.1, 4.2, 16.0, 4.15], jitter=0.1)
    assert [r.verdict.finding for r in rows[1:]] == [Finding.NO_DIFFERENCE, Finding.HIGHER, Finding.NO_DIFFERENCE]
    assert [r.worth.standing for r in rows] == [Standing.ON_FRONT, Standing.NOT_WORTH_IT, Standing.ON_FRONT,
                                                Standing.NOT_WORTH_IT]
    for placement in (rows[1], rows[3]):
        assert (placement.worth.reason, placement.worth.versus) == (Reason.TIE, "yolov5n.yaml")
    assert_agree(rows)


def test_random_studies_never_read_differently_in_the_two_columns():
    rng = random.Random(0)
    more = (("yolov5s.yaml", Role.REFERENCE, None), ("yolov5n+CBAM@4.yaml", Role.VARIANT, "CBAM"))
    for _ in range(12):
        seeds = rng.choice((2, 3, 5))
        plain = [rng.uniform(0.2, 0.4) for _ in range(seeds)]
        effects = [rng.choice((0.0, 0.0, 0.05, -0.05)) for _ in range(3)]
        values = {"yolov5n.yaml": plain, **{name: [v + e + rng.gauss(0, 0.01) for v in plain] for name, e in zip(
            ("yolov5n+TA@4.yaml", "yolov5s.yaml", "yolov5n+CBAM@4.yaml"), effects)}}
        ratios = [1.0, *(rng.choice((0.9, 1.0, 1.03, 1.2, 2.0)) for _ in range(3))]
        rows = study(values, ratios, *more, gflops=[rng.choice((0.5, 0.6)) for _ in range(4)],
                     jitter=rng.choice((0.01, 0.1)))
        assert_agree(rows)


def test_unmeasured_rows_are_not_weighed_and_unjudged_rows_are_refused():
    plan = fake_plan(fake_variants(("yolov5s.yaml", Role.REFERENCE, None)))
    rows = summarize(plan, fake_records({"yolov5n.yaml": [0.1, 0.2], "yolov5n+TA@4.yaml": [0.1, 0.2],
                                         "yolov5s.yaml": [0.3, 0.4]}))
    assert [r.worth for r in front(judge(rows))] == [Worth(Standing.UNMEASURED, Reason.NO_LATENCY)] * 3
    with pytest.raises(ValueError, match="judge the rows first"):
        front(costed(rows, [5.0, 6.0, 9.0]))

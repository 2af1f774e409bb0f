"""What a study decides (``ultralytics_triplet.study.decision``): each row's verdict and whether it is worth it, as
typed values (``study.readings``); their words are the report's (test_study_report.py)."""

from __future__ import annotations

import pytest
from helpers import costed, fake_plan, fake_records, fake_variants

from ultralytics_triplet.study.decision import front, judge, verdict
from ultralytics_triplet.study.readings import Finding, Reason, Standing, Verdict, Worth
from ultralytics_triplet.study.report import summarize
from ultralytics_triplet.study.stats import holm, paired_interval, t_test_p
from ultralytics_triplet.study.variants import Role

pytestmark = pytest.mark.compat

PLAIN = [0.50, 0.60, 0.70]


def test_alone_a_verdict_reads_the_95_percent_interval():
    small = paired_interval(PLAIN, [0.52, 0.63, 0.71])  # the interval holds 0
    assert verdict(small, "mAP50-95") == Verdict(Finding.NO_DIFFERENCE, "mAP50-95", 3)
    assert verdict(paired_interval(PLAIN, [0.60, 0.71, 0.82]), "mAP50-95") == Verdict(Finding.HIGHER, "mAP50-95", 3)
    assert verdict(paired_interval(PLAIN, [0.40, 0.49, 0.58]), "mAP50-95") == Verdict(Finding.LOWER, "mAP50-95", 3)
    assert verdict(paired_interval([0.5], [0.6]), "mAP50-95") == Verdict(Finding.NO_INTERVAL, "mAP50-95", 1)


def test_a_verdict_among_several_comparisons_reads_the_holm_adjusted_p_value():
    d = paired_interval(PLAIN, [0.60, 0.71, 0.82])  # the interval alone says higher
    assert verdict(d, "mAP50-95", p_holm=0.012) == Verdict(Finding.HIGHER, "mAP50-95", 3, 0.012)
    assert verdict(d, "mAP50-95", p_holm=0.06).finding is Finding.NO_DIFFERENCE
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
                                                                 rows[2].p_holm)
    assert all(r.verdict.p_holm == r.p_holm for r in rows[1:])  # each reads Holm, not its unadjusted interval


def test_one_comparison_keeps_the_interval_verdict():
    rows = judge(summarize(fake_plan(seeds=3), fake_records({"yolov5n.yaml": [0.1, 0.2, 0.3],
                                                             "yolov5n+TA@4.yaml": [0.2, 0.31, 0.39]})))
    assert rows[1].verdict == Verdict(Finding.HIGHER, "mAP50-95", 3) and rows[1].p_holm == rows[1].p_value


def test_a_row_is_not_worth_it_where_another_is_both_more_accurate_and_faster_naming_the_best():
    plan = fake_plan(fake_variants(("yolov5s.yaml", Role.REFERENCE, None), ("yolov5n+CBAM@4.yaml", Role.VARIANT,
                                                                            "CBAM")), seeds=3)
    values = {"yolov5n.yaml": [0.10, 0.20, 0.30], "yolov5n+TA@4.yaml": [0.11, 0.215, 0.33],
              "yolov5s.yaml": [0.20, 0.31, 0.40], "yolov5n+CBAM@4.yaml": [0.09, 0.20, 0.31]}
    rows = front(costed(summarize(plan, fake_records(values)), [5.0, 6.0, 9.0, 10.0]))
    on_front = Worth(Standing.ON_FRONT, Reason.UNBEATEN)
    assert [r.worth for r in rows] == [on_front, on_front, on_front, Worth(
        Standing.NOT_WORTH_IT, Reason.DOMINATED, versus="yolov5s.yaml", others=1)]  # the best mean named first


def test_equal_means_or_a_slower_better_row_dominate_nothing_and_unmeasured_rows_are_not_weighed():
    plan = fake_plan(fake_variants(("yolov5s.yaml", Role.REFERENCE, None)))
    rows = summarize(plan, fake_records({"yolov5n.yaml": [0.1, 0.2], "yolov5n+TA@4.yaml": [0.1, 0.2],
                                         "yolov5s.yaml": [0.3, 0.4]}))
    assert {r.worth.standing for r in front(costed(rows, [5.0, 4.0, 9.0]))} == {Standing.ON_FRONT}
    dominated = Worth(Standing.NOT_WORTH_IT, Reason.DOMINATED, versus="yolov5s.yaml")
    assert [r.worth for r in front(costed(rows, [5.0, 6.0, 4.0]))] == [
        dominated, dominated, Worth(Standing.ON_FRONT, Reason.UNBEATEN)]
    assert [r.worth for r in front(rows)] == [Worth(Standing.UNMEASURED, Reason.NO_LATENCY)] * 3

"""A study's report (``ultralytics_triplet.study.report``): the summaries of its rows, and the table and CSV, where the
typed role, verdict and worth-it reading of each row are put into words."""

from __future__ import annotations

import math

import pytest
from helpers import costed, fake_plan, fake_records, fake_variants

from ultralytics_triplet import _compat
from ultralytics_triplet.study.decision import front, judge
from ultralytics_triplet.study.readings import LATENCY_TIE, Finding, Reason, Standing, Verdict, Worth
from ultralytics_triplet.study.report import csv_rows, format_table, metrics_of, summarize, verdict_words, worth_words
from ultralytics_triplet.study.stats import mean_interval, paired_interval
from ultralytics_triplet.study.variants import Role

pytestmark = pytest.mark.compat


def test_the_table_header_says_when_runs_were_shuffled_the_same_way_at_every_seed():
    plan = fake_plan()
    values = {"yolov5n.yaml": [0.10, 0.20], "yolov5n+TA@4.yaml": [0.15, 0.22]}
    records = fake_records(values, order="fixed")
    text = format_table(summarize(plan, records), plan, records=records)
    assert "Data order: 4 of 4 runs were shuffled the same way at every seed (ultralytics 8.3.0: its loader" in text
    records = fake_records(values, order="seed")
    assert "Data order" not in format_table(summarize(plan, records), plan, records=records)


@pytest.mark.parametrize("task, labels", [
    ("detect", ("mAP50-95", "mAP50")), ("obb", ("mAP50-95", "mAP50")), ("segment", ("mask mAP50-95", "mask mAP50")),
    ("pose", ("pose mAP50-95", "pose mAP50")), ("classify", ("top-1 acc", "top-5 acc")),
    ("unknown", ("mAP50-95", "mAP50")),
])
def test_each_tasks_two_metrics_are_named_for_the_table_and_keyed_as_ultralytics_keys_them(task, labels):
    pairs = metrics_of(task)
    assert tuple(label for label, _ in pairs) == labels
    assert tuple(key for _, key in pairs) == _compat.METRIC_KEYS.get(task, _compat.METRIC_KEYS["detect"])


def test_summaries_are_typed_per_metric_and_paired_by_seed():
    records = fake_records({"yolov5n.yaml": [0.10, 0.20], "yolov5n+TA@4.yaml": [0.15, 0.23]})
    plain, variant = summarize(fake_plan(), records[::-1])  # in any order: read by seed
    assert (plain.role, plain.verdict, plain.verdict_metric.difference) == (
        Role.PLAIN, Verdict(Finding.BASELINE, "mAP50-95", 2), None)
    assert (variant.role, variant.verdict, variant.worth) == (Role.VARIANT, None, None)  # not judged nor weighed yet
    assert variant.verdict_metric.label == "mAP50-95" and variant.second_metric.label == "mAP50"
    assert variant.verdict_metric.values == (0.15, 0.23) and variant.second_metric.values == (0.30, 0.46)
    assert variant.verdict_metric.difference == paired_interval([0.10, 0.20], [0.15, 0.23])
    assert variant.verdict_metric.interval == mean_interval([0.15, 0.23])
    assert (variant.module, variant.placement) == ("TripletAttention", "after:4")


@pytest.mark.parametrize("value, words", [
    (Verdict(Finding.BASELINE, "mAP50-95", 3), "baseline"),
    (Verdict(Finding.HIGHER, "mAP50-95", 3), "higher mAP50-95 (95% CI above 0, 3 seeds)"),
    (Verdict(Finding.LOWER, "mask mAP50-95", 4), "lower mask mAP50-95 (95% CI below 0, 4 seeds)"),
    (Verdict(Finding.HIGHER, "mAP50-95", 3, 0.012), "higher mAP50-95 (Holm p 0.012, 3 seeds)"),
    (Verdict(Finding.LOWER, "mAP50-95", 3, 0.001), "lower mAP50-95 (Holm p 0.001, 3 seeds)"),
    (Verdict(Finding.NO_DIFFERENCE, "mAP50-95", 3, 0.5), "no difference detectable at 3 seeds"),
    (Verdict(Finding.NO_INTERVAL, "mAP50-95", 1), "only 1 paired seed: no interval"),
    (None, ""),
])
def test_a_verdict_is_put_into_the_words_of_the_table_and_the_csv(value, words):
    assert verdict_words(value) == words


@pytest.mark.parametrize("value, words", [
    (Worth(Standing.CHOICE, Reason.UNBEATEN), "the choice"),
    (Worth(Standing.ON_FRONT, Reason.UNBEATEN), "on the front"),
    (Worth(Standing.NOT_WORTH_IT, Reason.NO_DETECTABLE_GAIN, "yolov5n.yaml", 1.19),
     "no detectable gain over yolov5n.yaml at +19% latency"),
    (Worth(Standing.NOT_WORTH_IT, Reason.TIE, "yolov5n.yaml", 0.98),
     "ties with yolov5n.yaml (latency -2%, within the noise), which is cheaper"),
    (Worth(Standing.NOT_WORTH_IT, Reason.LESS_ACCURATE, "yolov5n.yaml", 1.01),
     "less accurate than yolov5n.yaml at a latency within the noise (+1%)"),
    (Worth(Standing.NOT_WORTH_IT, Reason.SLOWER_AND_LESS_ACCURATE, "yolov5s.yaml", 1.5),
     "less accurate than yolov5s.yaml and slower (+50% latency)"),
    (Worth(Standing.UNMEASURED, Reason.NO_LATENCY), "-"),
    (None, "-"),
])
def test_a_worth_it_reading_is_put_into_the_words_of_the_table_and_the_csv(value, words):
    assert worth_words(value) == words


def test_several_comparisons_are_written_as_holm_verdicts_with_the_front_in_the_table_and_the_csv():
    plan = fake_plan(fake_variants(("yolov5s.yaml", Role.REFERENCE, None), ("yolov5n+CBAM@4.yaml", Role.VARIANT,
                                                                            "CBAM")), seeds=3)
    values = {"yolov5n.yaml": [0.10, 0.20, 0.30], "yolov5n+TA@4.yaml": [0.11, 0.215, 0.33],
              "yolov5s.yaml": [0.20, 0.31, 0.40], "yolov5n+CBAM@4.yaml": [0.09, 0.20, 0.31]}
    records = fake_records(values)
    rows = front(costed(judge(summarize(plan, records)), [5.0, 6.0, 9.0, 10.0]))
    text = format_table(rows, plan, records=records, latency_note="how it was timed")
    header = text.splitlines()[1]
    assert "p (Holm)" in header and "worth it" in header and "ONNX ms" in header
    for r in rows:
        line = next(line for line in text.splitlines() if line.startswith(r.config + " "))
        assert verdict_words(r.verdict) in line and line.endswith(worth_words(r.worth))
    assert "Holm-adjusted p-values (p (Holm)) of the paired t-tests on ΔmAP50-95 over the 3 comparisons" in text
    assert "the intervals are not adjusted" in text and "a tie on both counts goes to the cheaper row" in text
    assert "References (yolov5s.yaml) are plain models trained alike" in text
    assert "ONNX ms: how it was timed" in text
    assert "10.0 (+100%)" in text  # 10 ms against the plain model's 5
    assert "95% CI" not in "".join(verdict_words(r.verdict) for r in rows[1:])  # Holm, not the unadjusted interval
    assert [worth_words(r.worth) for r in rows] == [
        "on the front", "no detectable gain over yolov5n.yaml at +20% latency", "on the front",
        "no detectable gain over yolov5n.yaml at +100% latency"]  # yolov5s is detectably better, and slower

    # how far from detectable: in the footnote, one line per row that finds no difference
    found = [r for r in rows if r.verdict.detectability]
    assert [r.config for r in found] == ["yolov5n+TA@4.yaml", "yolov5n+CBAM@4.yaml"]
    assert ("No difference detectable: the smallest ΔmAP50-95 these seeds detect, either way, with 80% power at the "
            "1.67% level (5% over 3 comparisons, as Holm's first step tests)") in text
    for r in found:
        d = r.verdict.detectability
        assert f"  {r.config}" in text and f"{d.difference:.4f} at 3 seeds; 0.01 needs about {d.seeds} seeds" in text

    runs = csv_rows(plan, records, rows)
    assert len(runs) == 12 and {"role", "module", "p_value", "p_holm", "latency_runtime", "worth_it"} <= set(runs[0])
    cbam = [r for r in runs if r["config"] == "yolov5n+CBAM@4.yaml"]
    assert {(r["role"], r["module"], r["latency_runtime"], r["worth_it"], r["standing"], r["reason"], r["versus"])
            for r in cbam} == {("variant", "CBAM", "onnx", worth_words(rows[3].worth), "not_worth_it",
                                "no_detectable_gain", "yolov5n.yaml")}
    assert {r["role"] for r in runs if r["config"] == "yolov5s.yaml"} == {"reference"}
    assert {r["role"] for r in runs if r["config"] == "yolov5n.yaml"} == {"plain"}
    assert {r["verdict"] for r in runs if r["config"] == "yolov5n.yaml"} == {"baseline"}
    assert {r["verdict"] for r in cbam} == {verdict_words(rows[3].verdict)}
    reach = rows[3].verdict.detectability
    assert {(r["detectable_difference"], r["detect_level"], r["detect_power"], r["seeds_needed"],
             r["seeds_needed_for"]) for r in cbam} == {(reach.difference, reach.level, 0.8, reach.seeds, 0.01)}
    assert all(math.isnan(r["detectable_difference"]) and math.isnan(r["seeds_needed"]) for r in runs
               if r["config"] in ("yolov5n.yaml", "yolov5s.yaml"))  # a baseline, a difference found
    for r in cbam:  # the same 10 ms against 5 in every round: a ratio of 2 without spread
        assert [r["latency_ratio"], r["latency_ratio_lo"], r["latency_ratio_hi"]] == pytest.approx([2.0, 2.0, 2.0])


def test_the_demos_table_keeps_the_plain_model_and_says_why_each_other_row_is_not_worth_it():
    """The rows of the demo's table in docs/study.md (its means and spreads over 2 seeds, its latencies and costs, with
    a spread of 2% per round): nothing is detectably better than the plain model, which is also the cheapest."""
    more = [("yolov5s.yaml", Role.REFERENCE, None), ("yolov5n-triplet.yaml", Role.VARIANT, "TripletAttention"),
            ("yolov5n-CBAM.yaml", Role.VARIANT, "CBAM"), ("yolov5n+CBAM@4.yaml", Role.VARIANT, "CBAM")]
    plan = fake_plan(fake_variants(*more), seeds=2)
    shown = {"yolov5n.yaml": (0.0254, 0.0036), "yolov5n+TA@4.yaml": (0.0101, 0.0056), "yolov5s.yaml": (0.0442, 0.0257),
             "yolov5n-triplet.yaml": (0.0453, 0.0006), "yolov5n-CBAM.yaml": (0.0458, 0.0163),
             "yolov5n+CBAM@4.yaml": (0.0092, 0.0130)}  # mean, std
    values = {k: [m - sd / math.sqrt(2), m + sd / math.sqrt(2)] for k, (m, sd) in shown.items()}
    ratios = [1.0, 1.08, 4.08, 1.18, 1.01, 0.99]
    rounds = {k: [ms * r * (1 + 0.02 * math.sin(3 * j + k)) for j, ms in enumerate([0.6, 0.62, 0.58, 0.6] * 5)]
              for k, r in enumerate(ratios)}
    rows = costed(judge(summarize(plan, fake_records(values))), [0.6] * 6, rounds=rounds,
                  gflops=[0.07178, 0.07221, 0.2404, 0.07219, 0.07191, 0.07181])
    rows = front(rows)
    assert {r.verdict.finding for r in rows[1:]} == {Finding.NO_DIFFERENCE}
    assert rows[0].worth == Worth(Standing.CHOICE, Reason.UNBEATEN)
    assert {(r.worth.standing, r.worth.versus) for r in rows[1:]} == {(Standing.NOT_WORTH_IT, "yolov5n.yaml")}
    words = {r.config: worth_words(r.worth) for r in rows}
    assert words["yolov5n.yaml"] == "the choice"
    assert words["yolov5n-triplet.yaml"] == "no detectable gain over yolov5n.yaml at +18% latency"
    assert words["yolov5s.yaml"] == "no detectable gain over yolov5n.yaml at +308% latency"
    assert words["yolov5n+TA@4.yaml"] == "no detectable gain over yolov5n.yaml at +8% latency"
    assert words["yolov5n+CBAM@4.yaml"] == "ties with yolov5n.yaml (latency -1%, within the noise), which is cheaper"
    assert words["yolov5n-CBAM.yaml"] == "ties with yolov5n.yaml (latency +1%, within the noise), which is cheaper"
    runs = {r["config"]: r for r in csv_rows(plan, fake_records(values), rows)}  # the same reading, typed
    triplet = runs["yolov5n-triplet.yaml"]
    assert (triplet["standing"], triplet["reason"], triplet["versus"]) == ("not_worth_it", "no_detectable_gain",
                                                                           "yolov5n.yaml")
    assert 1 + LATENCY_TIE < triplet["latency_ratio_lo"] < triplet["latency_ratio"] < triplet["latency_ratio_hi"]
    assert (runs["yolov5n.yaml"]["standing"], runs["yolov5n.yaml"]["versus"]) == ("choice", "")
    text = format_table(rows, plan)
    assert "'the choice' where one is left" in text
    assert "  yolov5n-triplet.yaml  " in text.split("No difference detectable")[1]  # every row is that far off


def test_one_comparison_is_read_by_its_interval_in_the_table():
    plan = fake_plan(seeds=3)
    rows = judge(summarize(plan, fake_records({"yolov5n.yaml": [0.1, 0.2, 0.3],
                                               "yolov5n+TA@4.yaml": [0.2, 0.31, 0.39]})))
    text = format_table(costed(rows, [5.0, 5.5]), plan)
    assert "p (Holm)" not in text and "The verdict reads ΔmAP50-95's interval" in text
    assert "higher mAP50-95 (95% CI above 0, 3 seeds)" in text

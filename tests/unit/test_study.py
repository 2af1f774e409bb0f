"""The study (``ultralytics_triplet.study``) in this process: its statistics, its variants, its console, its chart,
and bad input to ``ultralytics-triplet study`` (one line, exit 2, nothing trained or written)."""

from __future__ import annotations

import io
import logging
import math
import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest
from helpers import assert_usage_error

from ultralytics_triplet.cli import main
from ultralytics_triplet.loading import load_model_yaml
from ultralytics_triplet.placements import NAMES as KNOWN_PLACEMENTS
from ultralytics_triplet.study.console import Console, Steps, captured, progress_bar
from ultralytics_triplet.study.data_order import listed_devices
from ultralytics_triplet.study.fingerprint import digest, model_identity
from ultralytics_triplet.study.run import read_results_csv, train_seconds
from ultralytics_triplet.study.stats import holm, mean_interval, paired_interval, t_quantile, t_test_p, verdict
from ultralytics_triplet.study.variants import build_variants, write_configs

pytestmark = pytest.mark.compat  # but for the Ray test, marked newest_only


# ---------------------------------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("df, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_quantile_matches_the_published_table(df, expected):
    """Two-sided 95% critical values of Student's t (any statistics textbook's table)."""
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-4)


def test_t_quantile_approaches_the_normal_quantile():
    assert t_quantile(0.95, 5) == pytest.approx(2.0150, abs=1e-4)
    assert t_quantile(0.975, 100000) == pytest.approx(1.95996, abs=1e-4)
    assert t_quantile(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_paired_interval_and_verdicts():
    plain = [0.50, 0.60, 0.70]
    small = paired_interval(plain, [0.52, 0.63, 0.71])  # differences 0.02, 0.03, 0.01
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert small.n == 3 and small.mean == pytest.approx(0.02) and small.sd == pytest.approx(0.01)
    assert (small.lo, small.hi) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert small.lo < 0 < small.hi
    assert verdict(small, "mAP50-95") == "no difference detectable at 3 seeds"
    better = paired_interval(plain, [0.60, 0.71, 0.82])
    assert better.lo > 0 and verdict(better, "mAP50-95").startswith("higher mAP50-95")
    worse = paired_interval(plain, [0.40, 0.49, 0.58])
    assert worse.hi < 0 and verdict(worse, "mAP50-95").startswith("lower mAP50-95")
    one = paired_interval([0.5], [0.6])
    assert math.isnan(one.lo) and verdict(one, "mAP50-95") == "only 1 paired seed: no interval"
    with pytest.raises(ValueError, match="equal lengths"):
        paired_interval([0.5, 0.6], [0.5])


@pytest.mark.parametrize("diffs, expected", [
    ([0.02, 0.03, 0.01], 0.074180),  # df 2
    ([0.1, -0.1, 0.05, 0.02], 0.708164),  # df 3
    ([0.3, 0.31], 0.010435),  # df 1
])
def test_the_paired_t_test_matches_a_published_implementation(diffs, expected):
    """p-values as scipy.stats.ttest_1samp(diffs, 0).pvalue gives them (computed there, written here)."""
    assert t_test_p(mean_interval(diffs)) == pytest.approx(expected, abs=2e-5)
    assert t_test_p(mean_interval([0.1, 0.1])) == 0.0 and t_test_p(mean_interval([0.0, 0.0])) == 1.0
    assert math.isnan(t_test_p(mean_interval([0.1])))


def test_holm_multiplies_the_sorted_p_values_and_keeps_them_monotone():
    # m = 3, sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> kept at 0.06 (never below the one before)
    assert holm([0.01, 0.03, 0.04]) == [pytest.approx(0.03), pytest.approx(0.06), pytest.approx(0.06)]
    assert holm([0.04, 0.01, 0.03]) == [pytest.approx(0.06), pytest.approx(0.03), pytest.approx(0.06)]
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    adjusted = holm([0.01, math.nan, 0.02])  # a comparison without a test counts in no m
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    assert holm([]) == []


def test_a_verdict_among_several_comparisons_reads_the_holm_adjusted_p_value():
    d = paired_interval([0.5, 0.6, 0.7], [0.60, 0.71, 0.82])  # the interval alone says higher
    assert verdict(d, "mAP50-95").startswith("higher mAP50-95 (95% CI above 0")
    assert verdict(d, "mAP50-95", p_holm=0.012) == "higher mAP50-95 (Holm p 0.012, 3 seeds)"
    assert verdict(d, "mAP50-95", p_holm=0.06) == "no difference detectable at 3 seeds"
    lower = paired_interval([0.5, 0.6, 0.7], [0.40, 0.49, 0.58])
    assert verdict(lower, "mAP50-95", p_holm=0.001).startswith("lower mAP50-95 (Holm p 0.001")


def names(variants) -> list[str]:
    return [v.name for v in variants]


def test_variant_names_follow_the_model_name(tmp_path):
    from ultralytics_triplet.surgery import insert_layers, write_yaml

    variants, _ = build_variants("yolo11n.yaml", KNOWN_PLACEMENTS, tmp_path)
    assert names(variants) == ["yolo11n.yaml", "yolo11n-triplet.yaml", "yolo11n-triplet-neck.yaml",
                               "yolo11n-triplet-dense.yaml"]
    assert [v.placement for v in variants] == [None, *KNOWN_PLACEMENTS]
    from ultralytics.utils.checks import check_yaml

    model = tmp_path / "cfg" / "my-yolov5s.yaml"
    model.parent.mkdir()
    shutil.copy(check_yaml("yolov5.yaml"), model)
    write_yaml(insert_layers(model, after=[2]), model.with_name("my-yolov5s-triplet-neck.yaml"))  # beside it
    variants, _ = build_variants(model, ["triplet-neck", "after:4"], tmp_path / "study")
    assert [v.config for v in variants] == [str(model), str(model.with_name("my-yolov5s-triplet-neck.yaml")),
                                            str((tmp_path / "study" / "models" / "my-yolov5s+TA@4.yaml").resolve())]
    with pytest.raises(ValueError, match="known placements: triplet, triplet-neck, triplet-dense, after:I"):
        build_variants("yolo11n.yaml", ["triplet", "cbam"], tmp_path)
    with pytest.raises(ValueError, match="plain model"):
        build_variants("yolo11n-triplet.yaml", ["triplet"], tmp_path)
    shutil.copy(model, model.with_name("my-yolov5s-triplet.yaml"))
    with pytest.raises(ValueError, match="'triplet' builds the plain model itself"):
        build_variants(model, ["triplet"], tmp_path)


def test_explicit_positions_are_variants_named_by_what_they_are(tmp_path):
    from ultralytics_triplet.surgery import insert_layers

    variants, plain = build_variants("yolov5n.yaml", ["after:6,4", "after:8"], tmp_path)
    assert names(variants) == ["yolov5n.yaml", "yolov5n+TA@4,6.yaml", "yolov5n+TA@8.yaml"]
    assert [v.placement for v in variants[1:]] == ["after:4,6", "after:8"]
    assert variants[1].run_name(2) == "yolov5n+TA@4,6-seed2"
    expected = insert_layers("yolov5n.yaml", after=[4, 6])
    assert variants[1].model["backbone"] == expected["backbone"] and variants[1].model["head"] == expected["head"]
    assert not (tmp_path / "models").exists()  # nothing is written while planning

    write_configs(variants)
    written = Path(variants[1].config)
    assert written.parent == (tmp_path / "models").resolve()
    loaded = load_model_yaml(written)  # as ultralytics loads it: the scale letter is read from the file name
    assert loaded["scale"] == plain["scale"] == "n"
    assert digest(model_identity(loaded)) == variants[1].sha256  # the identity a recorded run must match
    text = written.read_text(encoding="utf-8")
    assert text.count("]  # inserted by ultralytics-triplet") == 2
    mtime = written.stat().st_mtime_ns
    write_configs(variants)  # the same study again: an identical file is left alone
    assert written.stat().st_mtime_ns == mtime


def test_each_backbone_sweeps_every_backbone_position_one_at_a_time(tmp_path):
    variants, plain = build_variants("yolov5n.yaml", ["each-backbone", "triplet-neck"], tmp_path)
    n = len(plain["backbone"])
    assert [v.placement for v in variants[1:n + 1]] == [f"after:{i}" for i in range(n)]
    assert names(variants)[n + 1] == "yolov5n-triplet-neck.yaml"
    for v in variants[1:n + 1]:
        assert len(v.model["backbone"]) == n + 1 and len(v.model["head"]) == len(plain["head"])
    with pytest.raises(ValueError, match=r"'each-backbone \(after:8\)' and 'triplet' build the same model"):
        build_variants("yolov5n.yaml", ["each-backbone", "triplet"], tmp_path)  # triplet is after:8 in yolov5


def test_each_placement_is_built_with_each_module_and_named_by_what_it_is(tmp_path):
    from ultralytics.nn.modules.conv import CBAM
    from ultralytics.nn.tasks import DetectionModel

    from ultralytics_triplet.placements import insertion_points
    from ultralytics_triplet.surgery import model_rows

    variants, plain = build_variants("yolov5n.yaml", ["triplet", "triplet-neck", "after:4"], tmp_path,
                                     modules=["TripletAttention", "CBAM"])
    assert names(variants) == ["yolov5n.yaml", "yolov5n-triplet.yaml", "yolov5n-CBAM.yaml", "yolov5n-triplet-neck.yaml",
                               "yolov5n-CBAM-neck.yaml", "yolov5n+TA@4.yaml", "yolov5n+CBAM@4.yaml"]
    assert [(v.role, v.placement, v.module) for v in variants[1:3]] == [
        ("variant", "triplet", "TripletAttention"), ("variant", "triplet", "CBAM")]
    for v, rule in ((variants[2], ""), (variants[4], "-neck")):  # the named placements keep their rule
        points = insertion_points(plain, rule)
        inserted = [i for i, row in enumerate(model_rows(v.model)) if row[2] == "CBAM"]
        assert inserted == list(v.inserted) == [p + k + 1 for k, p in enumerate(points)]
        assert all(model_rows(v.model)[i] == [-1, 1, "CBAM", []] for i in inserted)
    write_configs(variants)
    cbam = Path(variants[6].config)
    assert cbam.parent == (tmp_path / "models").resolve()
    text = cbam.read_text(encoding="utf-8")
    assert text.startswith("# yolov5n+CBAM@4.yaml: yolov5n.yaml with CBAM after layer 4 (study placement after:4).\n"
                           "# CBAM: ultralytics.nn.modules.conv.CBAM, registered by plugin 'triplet'.")
    model = DetectionModel(load_model_yaml(cbam), verbose=False)
    assert type(model.model[5]) is CBAM and model.model[5].channel_attention.fc.in_channels == 64
    assert digest(model_identity(load_model_yaml(cbam))) == variants[6].sha256


def test_references_are_plain_models_trained_alike_and_scale_up_is_the_next_scale(tmp_path):
    from ultralytics.utils.checks import check_yaml

    variants, _ = build_variants("yolov5n.yaml", ["triplet"], tmp_path, references=["scale-up", "yolov8n.yaml"])
    assert names(variants) == ["yolov5n.yaml", "yolov5s.yaml", "yolov8n.yaml", "yolov5n-triplet.yaml"]
    assert [(v.role, v.placement, v.module) for v in variants[1:3]] == [("reference", None, None)] * 2
    assert variants[1].sha256 == digest(model_identity(load_model_yaml("yolov5s.yaml")))
    assert names(build_variants("yolo11m-seg.yaml", ["triplet"], tmp_path, references=["scale-up"])[0])[1] == (
        "yolo11l-seg.yaml")

    model = tmp_path / "cfg" / "my-yolov5s.yaml"  # a config given by path: its next scale is written beside the study
    model.parent.mkdir()
    shutil.copy(check_yaml("yolov5.yaml"), model)
    variants, _ = build_variants(model, ["after:4"], tmp_path / "study", references=["scale-up"])
    assert variants[1].config == str((tmp_path / "study" / "models" / "my-yolov5m.yaml").resolve())
    write_configs(variants)
    loaded = load_model_yaml(variants[1].config)
    assert loaded["scale"] == "m" and digest(model_identity(loaded)) == variants[1].sha256
    assert Path(variants[1].config).read_text().startswith("# my-yolov5m.yaml: my-yolov5s.yaml at scale m")


def test_a_third_party_plugins_module_is_compared_the_same_way(tmp_path):
    from helpers import ChannelPlugin, registered

    with registered(ChannelPlugin(), "gates"):
        variants, _ = build_variants("yolov5n.yaml", ["after:4"], tmp_path, modules=["ChannelGate", "CBAM"])
    assert names(variants) == ["yolov5n.yaml", "yolov5n+ChannelGate@4.yaml", "yolov5n+CBAM@4.yaml"]
    assert "\nChannelGate: helpers.ChannelGate, registered by plugin 'gates'." in variants[1].header


@pytest.mark.parametrize("placement, words", [
    ("after:99", ["'after:99'", "layer 99 is out of range", "valid layer indices are 0..", "the backbone is 0..9"]),
    ("after:-1", ["'after:-1'", "out of range", "valid layer indices are 0.."]),
    ("after:4,x", ["'after:4,x'", "'x' is not an int layer index", "valid layer indices are 0.."]),
    ("after:", ["'after:' is empty", "valid layer indices are 0.."]),
    ("after:4,4", ["layer 4 is listed twice", "valid layer indices are 0.."]),
])
def test_a_bad_position_is_one_line_listing_the_valid_indices_and_writes_nothing(placement, words, shapes_data,
                                                                                   tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet", placement,
            "--out", str(out)]
    assert_usage_error(main(argv), capsys.readouterr().err, "--placements", *words)
    assert not out.exists()


def test_listed_devices_counts_what_ultralytics_trains_on():
    assert [listed_devices(d) for d in (None, "", "cpu", "mps", "cuda", 0, "0", "0,1", "cuda:0,1", [0, 1])] == [
        0, 0, 0, 0, 0, 1, 1, 2, 2, 2]


# ---------------------------------------------------------------------------------------------------------- report


def fake_plan(variants=None, seeds: int = 2):
    from ultralytics_triplet.study.plan import Plan, Settings

    settings = Settings(format=1, model="yolov5n.yaml", model_sha256="m", task="detect", data="/d/data.yaml",
                        data_sha256="d", data_files=24, nc=3, epochs=1, imgsz=64, batch=8, pretrained=None,
                        pretrained_sha256=None, train_args={})
    return Plan(settings=settings, fingerprint="f", variants=variants or fake_variants(), seeds=seeds)


def fake_variants(*more):
    """The plain yolov5n, and TripletAttention after layer 4 (plus ``more`` rows: (name, role, module))."""
    from ultralytics_triplet.study.variants import Variant

    rows = [Variant("yolov5n.yaml", "plain", "a"), Variant("/s/models/yolov5n+TA@4.yaml", "variant", "b", "after:4",
                                                           "TripletAttention")]
    rows += [Variant(name, role, name, None if role == "reference" else "after:4", module)
             for name, role, module in more]
    return tuple(rows)


def fake_records(values: dict[str, list[float]], order: str = "seed"):
    """Records of every row's runs, seed by seed: mAP50-95 as given, mAP50 twice that."""
    from ultralytics_triplet.study.run import RunRecord

    return [RunRecord(config=config, seed=seed, run=f"{Path(config).stem}-seed{seed}", status="trained",
                      metrics={"metrics/mAP50-95(B)": v, "metrics/mAP50(B)": 2 * v}, epochs_done=1, train_time_s=1.0,
                      wall_s=2.0, run_dir="runs/r", weights="w.pt", ultralytics="8.3.0", data_order=order)
            for config, vs in values.items() for seed, v in enumerate(vs)]


def costed(rows, latencies: list[float]):
    """The rows with made-up costs (latency in ms, in row order)."""
    import dataclasses

    from ultralytics_triplet.study.report import Cost

    return [dataclasses.replace(r, cost=Cost(parameters=1000 + k, gflops=0.5, latency_ms=ms,
                                             latency_ratio=ms / latencies[0], runtime="onnx"))
            for k, (r, ms) in enumerate(zip(rows, latencies))]


def test_the_table_header_says_when_runs_were_shuffled_the_same_way_at_every_seed():
    from ultralytics_triplet.study.report import format_table, summarize

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
    from ultralytics_triplet import _compat
    from ultralytics_triplet.study.report import metrics_of

    pairs = metrics_of(task)
    assert tuple(label for label, _ in pairs) == labels
    assert tuple(key for _, key in pairs) == _compat.METRIC_KEYS.get(task, _compat.METRIC_KEYS["detect"])


def test_summaries_are_typed_per_metric_and_paired_by_seed():
    from ultralytics_triplet.study.report import summarize

    records = fake_records({"yolov5n.yaml": [0.10, 0.20], "yolov5n+TA@4.yaml": [0.15, 0.23]})
    plain, variant = summarize(fake_plan(), records[::-1])  # in any order: read by seed
    assert (plain.role, plain.verdict, plain.verdict_metric.difference) == ("plain", "baseline", None)
    assert variant.verdict_metric.label == "mAP50-95" and variant.second_metric.label == "mAP50"
    assert variant.verdict_metric.values == (0.15, 0.23) and variant.second_metric.values == (0.30, 0.46)
    assert variant.verdict_metric.difference == paired_interval([0.10, 0.20], [0.15, 0.23])
    assert variant.verdict_metric.interval == mean_interval([0.15, 0.23])
    assert (variant.module, variant.placement) == ("TripletAttention", "after:4")


def test_several_comparisons_are_judged_by_holm_and_each_row_is_read_against_the_front(tmp_path):
    from ultralytics_triplet.study.decision import front, judge
    from ultralytics_triplet.study.report import csv_rows, format_table, summarize

    plan = fake_plan(fake_variants(("yolov5s.yaml", "reference", None), ("yolov5n+CBAM@4.yaml", "variant", "CBAM")),
                     seeds=3)
    values = {"yolov5n.yaml": [0.10, 0.20, 0.30], "yolov5n+TA@4.yaml": [0.11, 0.215, 0.33],
              "yolov5s.yaml": [0.20, 0.31, 0.40], "yolov5n+CBAM@4.yaml": [0.09, 0.20, 0.31]}
    records = fake_records(values)
    rows = judge(summarize(plan, records))
    p = [t_test_p(r.verdict_metric.difference) for r in rows[1:]]
    assert [r.p_value for r in rows[1:]] == p
    assert [r.p_holm for r in rows[1:]] == holm(p)  # over the three comparisons, references included
    assert rows[2].p_value < 0.05 and rows[2].verdict == verdict(rows[2].verdict_metric.difference, "mAP50-95",
                                                                 rows[2].p_holm)
    assert all("95% CI" not in r.verdict for r in rows[1:])  # the verdict reads Holm, not the unadjusted interval

    rows = front(costed(rows, [5.0, 6.0, 9.0, 10.0]))  # TA: slower than plain, more accurate; CBAM: worse than both
    assert [r.front for r in rows] == ["on the front", "on the front", "on the front",
                                       "dominated by yolov5s.yaml (+1 more)"]  # the best mean named first
    text = format_table(rows, plan, records=records, latency_note="how it was timed")
    header = text.splitlines()[1]
    assert "p (Holm)" in header and "worth it" in header and "ONNX ms" in header
    assert "Holm-adjusted p-values (p (Holm)) of the paired t-tests on ΔmAP50-95 over the 3 comparisons" in text
    assert "the intervals are not adjusted" in text and "a front of rows whose intervals overlap is a tie" in text
    assert "References (yolov5s.yaml) are plain models trained alike" in text
    assert "ONNX ms: how it was timed" in text
    assert "10.0 (+100%)" in text  # 10 ms against the plain model's 5
    runs = csv_rows(plan, records, rows)
    assert len(runs) == 12 and {"role", "module", "p_value", "p_holm", "latency_runtime", "front"} <= set(runs[0])
    cbam = [r for r in runs if r["config"] == "yolov5n+CBAM@4.yaml"]
    assert {(r["role"], r["module"], r["latency_runtime"], r["front"]) for r in cbam} == {
        ("variant", "CBAM", "onnx", "dominated by yolov5s.yaml (+1 more)")}
    assert {r["role"] for r in runs if r["config"] == "yolov5s.yaml"} == {"reference"}


def test_one_comparison_keeps_the_interval_verdict():
    from ultralytics_triplet.study.decision import judge
    from ultralytics_triplet.study.report import format_table, summarize

    plan = fake_plan(seeds=3)
    rows = judge(summarize(plan, fake_records({"yolov5n.yaml": [0.1, 0.2, 0.3],
                                               "yolov5n+TA@4.yaml": [0.2, 0.31, 0.39]})))
    assert rows[1].verdict.startswith("higher mAP50-95 (95% CI above 0") and rows[1].p_holm == rows[1].p_value
    text = format_table(costed(rows, [5.0, 5.5]), plan)
    assert "p (Holm)" not in text and "The verdict reads ΔmAP50-95's interval" in text


def test_a_row_is_dominated_only_by_one_both_more_accurate_and_faster():
    from ultralytics_triplet.study.decision import front
    from ultralytics_triplet.study.report import summarize

    plan = fake_plan(fake_variants(("yolov5s.yaml", "reference", None)))
    rows = summarize(plan, fake_records({"yolov5n.yaml": [0.1, 0.2], "yolov5n+TA@4.yaml": [0.1, 0.2],
                                         "yolov5s.yaml": [0.3, 0.4]}))
    # equal means are no domination; higher and slower is none either
    assert [r.front for r in front(costed(rows, [5.0, 4.0, 9.0]))] == ["on the front"] * 3
    assert [r.front for r in front(costed(rows, [5.0, 6.0, 4.0]))] == [
        "dominated by yolov5s.yaml", "dominated by yolov5s.yaml", "on the front"]
    assert [r.front for r in front(rows)] == ["-"] * 3  # no latency measured: no reading


def test_an_export_that_fails_is_one_line_naming_the_row_and_the_recorded_runs(tmp_path, monkeypatch):
    from ultralytics_triplet.study import costs
    from ultralytics_triplet.study.options import RUNTIME

    class Failing:  # what ultralytics' exporter does where a tool is missing: it raises the tool's error
        def __init__(self, weights):
            pass

        def export(self, **kwargs):
            raise ModuleNotFoundError("No module named 'onnxscript'")

    monkeypatch.setattr(costs, "YOLO", Failing)
    with pytest.raises(RuntimeError) as e:
        costs._export(tmp_path / "best.pt", RUNTIME["onnx"], 64, "yolov5n-CBAM.yaml")
    assert str(e.value).startswith("latency 'onnx': ultralytics ") and "\n" not in str(e.value)
    assert "could not export yolov5n-CBAM.yaml (ModuleNotFoundError: No module named 'onnxscript')" in str(e.value)
    assert str(e.value).endswith("every run is recorded: the same call with another latency reports them")


def test_results_time_column_sums_over_resumed_sessions(tmp_path):
    from ultralytics_triplet import _compat

    csv = tmp_path / "results.csv"
    csv.write_text(f"epoch, {_compat.TIME_COLUMN}, metrics/mAP50(B)\n1, 10.0, 0.1\n2, 20.0, 0.2\n3, 5.0, 0.3\n")
    rows = read_results_csv(csv)
    assert [r["epoch"] for r in rows] == [1.0, 2.0, 3.0]
    assert train_seconds(rows) == 25.0
    assert train_seconds([{"epoch": 1.0}]) is None  # no time column: ultralytics 8.3


def test_reseed_shuffle_orders_a_loader_by_the_seed_as_ultralytics_8_4_does():
    """In this process (no dataloader workers); the study's training test covers workers, which 8.3 starts (and
    draws an order with) as it builds the loader."""
    import torch
    from helpers import loader_order
    from torch.utils.data import DataLoader

    from ultralytics_triplet import _compat

    def reference(seed: int) -> list[int]:  # torch's own loader with the generator 8.4 seeds (RANK -1)
        generator = torch.Generator().manual_seed(_compat.SHUFFLE_SEED - 1 + seed)
        return [int(i) for b in DataLoader(list(range(32)), batch_size=4, shuffle=True, generator=generator) for i in b]

    orders = {seed: loader_order(None, reseed=seed) for seed in (0, 1)}
    assert orders[0] != orders[1] and loader_order(None, reseed=0) == orders[0]
    assert orders == {seed: reference(seed) for seed in (0, 1)}
    if _compat.shuffle_follows_seed():
        assert orders == {seed: loader_order(seed) for seed in (0, 1)}  # the release's own order


# ----------------------------------------------------------------------------------------------------------- chart


def test_the_chart_shows_each_rows_paired_difference_and_accuracy_against_latency_with_the_front(tmp_path):
    import matplotlib.image
    import numpy as np
    from matplotlib.collections import PathCollection

    from ultralytics_triplet.study.decision import front
    from ultralytics_triplet.study.plot import differences, plot_study
    from ultralytics_triplet.study.report import summarize

    plan = fake_plan(fake_variants(("yolov5s.yaml", "reference", None)))
    rows = summarize(plan, fake_records({"yolov5n.yaml": [0.10, 0.20], "yolov5n+TA@4.yaml": [0.15, 0.23],
                                         "yolov5s.yaml": [0.30, 0.35]}))
    rows = front(costed(rows, [5.0, 7.0, 6.0]))  # the TA row is dominated by yolov5s.yaml
    assert differences(rows) == [[], [pytest.approx(0.05), pytest.approx(0.03)], [pytest.approx(0.2),
                                                                                  pytest.approx(0.15)]]
    fig = plot_study(rows, tmp_path / "study.png", plan)
    delta = fig.axes[0]
    assert "ΔmAP50-95" in delta.get_title() and "verdict" in delta.get_title()
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in delta.get_lines())  # the line at 0
    interval = rows[1].verdict_metric.difference
    bar = [c for c in delta.collections if not isinstance(c, PathCollection)]  # the errorbar's interval segment
    segment = np.asarray(bar[0].get_segments()[0])
    assert sorted(segment[:, 0]) == [pytest.approx(interval.lo), pytest.approx(interval.hi)]
    dots = [c for c in delta.collections if isinstance(c, PathCollection)]
    assert sorted(dots[0].get_offsets()[:, 0]) == [pytest.approx(0.03), pytest.approx(0.05)]  # one per seed
    assert [t.get_text() for t in delta.get_yticklabels()] == ["yolov5n.yaml", "yolov5n+TA@4.yaml", "yolov5s.yaml"]

    decision = fig.axes[3]
    assert "against latency" in decision.get_title() and "relative to yolov5n.yaml (ONNX)" in decision.get_xlabel()
    assert sorted(t.get_text() for t in decision.texts) == ["yolov5n+TA@4.yaml", "yolov5n.yaml", "yolov5s.yaml"]
    # x: the latency relative to the plain model (6 ms against 5), as the front reads it
    assert {t.get_text(): t.xy for t in decision.texts}["yolov5s.yaml"] == (pytest.approx(1.2), pytest.approx(0.325))
    step = [line for line in decision.get_lines() if line.get_label().startswith("front")]
    assert len(step) == 1 and sorted(set(step[0].get_xdata())) == [1.0, pytest.approx(1.2)]  # the undominated rows
    means = {r.config: r.verdict_metric.interval for r in rows}
    caps = sorted(y for c in decision.collections if not isinstance(c, PathCollection)
                  for seg in c.get_segments() for y in np.asarray(seg)[:, 1])  # each mean's 95% interval
    assert pytest.approx(means["yolov5s.yaml"].lo) in caps and pytest.approx(means["yolov5s.yaml"].hi) in caps
    png = matplotlib.image.imread(tmp_path / "study.png")
    assert png.shape[1] > 1000 and png.std() > 0


def test_labels_of_points_close_together_do_not_cover_each_other(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ultralytics_triplet.study.decision import front
    from ultralytics_triplet.study.plot import plot_study
    from ultralytics_triplet.study.report import summarize

    more = [(f"yolov5n+CBAM@{k}.yaml", "variant", "CBAM") for k in range(5)]
    plan = fake_plan(fake_variants(*more))
    values = {v.name: [0.10 + 0.001 * k, 0.20 + 0.001 * k] for k, v in enumerate(plan.variants)}
    rows = front(costed(summarize(plan, fake_records(values)), [5.0 + 0.01 * k for k in range(7)]))  # one cluster
    fig = plot_study(rows, tmp_path / "study.png", plan)
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[3].texts]
    assert len(boxes) == 7
    assert not [(a, b) for k, a in enumerate(boxes) for b in boxes[k + 1:] if a.overlaps(b)]


# --------------------------------------------------------------------------------------------------------- console


def test_a_quiet_run_prints_into_its_log_and_only_warnings_reach_the_console(tmp_path, capfd):
    from ultralytics.utils import LOGGER

    log, console = tmp_path / "run" / "train.log", []
    with captured(log, verbose=False, label="yolov5n-seed0", write=console.append):
        LOGGER.info("an info line")
        print("a printed line")
        sys.stderr.write("an error stream line\n")
        os.write(1, b"a line on file descriptor 1\n")  # what a child process (DDP, a dataloader worker) writes
        os.write(2, b"a line on file descriptor 2\n")
        LOGGER.warning("a logged warning")
        warnings.warn("a python warning", UserWarning, stacklevel=1)
    text = log.read_text(encoding="utf-8")
    for line in ("an info line", "a printed line", "an error stream line", "a line on file descriptor 1",
                 "a line on file descriptor 2", "a logged warning", "a python warning"):
        assert line in text
    assert len(console) == 2 and all(c.startswith("yolov5n-seed0: ") for c in console)
    assert "WARNING" in console[0] and "a logged warning" in console[0]
    assert "UserWarning: a python warning" in console[1]
    out, err = capfd.readouterr()
    assert "an info line" not in out + err and "file descriptor" not in out + err
    LOGGER.info("after the run")  # everything is back in place
    print("printed after")
    out, _ = capfd.readouterr()
    assert "printed after" in out


def test_a_verbose_run_prints_as_ultralytics_prints_and_keeps_its_log_lines(tmp_path):
    from ultralytics.utils import LOGGER

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    LOGGER.addHandler(handler)
    try:
        log = tmp_path / "train.log"
        with captured(log, verbose=True, label="run"):
            LOGGER.info("an info line")
    finally:
        LOGGER.removeHandler(handler)
    assert "an info line" in stream.getvalue() and "an info line" in log.read_text(encoding="utf-8")


class Spec:
    """What the console reads of a run: its epochs."""

    epochs = 2


def test_the_console_is_one_progress_bar_over_the_runs_with_the_current_run_and_epoch(capsys):
    console = Console([Spec(), Spec()], total=3, verbose=False)  # one run of three recorded before, two to train
    bar = console.bar

    def shown():
        return bar.n, bar.desc.rstrip(": ")  # tqdm (ultralytics 8.3) ends the description with ': '

    try:
        assert bar.total == 4  # epochs still to train
        console.start("yolov5n-seed0")
        console.epoch(1, 2)
        assert shown() == (1, "study yolov5n-seed0 (run 2/3) epoch 1/2")
        console.epoch(2, 2)
        console.epoch(3, 2)  # ultralytics reports once more after the final validation
        assert shown() == (2, "study yolov5n-seed0 (run 2/3) epoch 2/2")
        console.done("yolov5n-seed0", "trained", 2)
        assert shown() == (2, "study 2/3 runs done")
        console.write("yolov5n-seed1: WARNING something")
        console.start("yolov5n-seed1")
        console.done("yolov5n-seed1", "revalidated", 2)  # a run validated again jumps to its end
        assert shown() == (4, "study 3/3 runs done")
    finally:
        console.close()
    console.close()  # closing twice (an interrupted study closes it, then its `finally`) is harmless
    out = capsys.readouterr().out
    assert "yolov5n-seed1: WARNING something\n" in out
    assert out.count("\n") == 2  # the warning's line and the bar's: the bar is redrawn in place, never a new line
    assert "study 3/3 runs done" in out.split("\n")[-2].split("\r")[-1]


def test_progress_bar_is_ultralytics_bar_on_the_given_stream():
    from ultralytics.utils import TQDM

    stream = io.StringIO()
    bar = progress_bar(total=3, desc="study", unit="epoch", file=stream)
    assert isinstance(bar, TQDM)
    bar.update(3)
    bar.set_description("study 3/3 runs done")
    bar.close()
    assert "study 3/3 runs done" in stream.getvalue() and "3/3" in stream.getvalue()


def test_steps_are_one_bar_naming_the_step_and_lines_go_above_it(capsys):
    steps = Steps(2, "latency ONNX Runtime: export", "model")
    try:
        steps.start("yolov5n.yaml")
        assert steps.bar.desc.rstrip(": ") == "latency ONNX Runtime: export yolov5n.yaml (1/2)"
        steps.finish()
        steps.write("export yolov5s.yaml: WARNING something")
        steps.start("yolov5s.yaml")
        steps.finish()
        assert steps.bar.n == 2
    finally:
        steps.close()
    out = capsys.readouterr().out
    assert "export yolov5s.yaml: WARNING something\n" in out and "(2/2)" in out


def test_a_verbose_console_logs_one_line_per_run_and_draws_no_bar():
    from ultralytics.utils import LOGGER

    lines = []
    handler = logging.Handler()
    handler.emit = lambda r: lines.append(r.getMessage())
    LOGGER.addHandler(handler)
    try:
        console = Console([Spec()], total=1, verbose=True)
        console.done("yolov5n-seed0", "trained", 2)
        console.close()
    finally:
        LOGGER.removeHandler(handler)
    assert console.bar is None
    assert lines == ["ultralytics-triplet: study: 1/1 runs done (yolov5n-seed0 trained), ETA 0 s"]


# ------------------------------------------------------------- bad input: one line, exit 2, nothing trained or written


@pytest.mark.parametrize("args, words", [
    (["--data", "{tmp}/missing.yaml"], ["missing.yaml", "not found"]),
    (["--placements", "triplet", "cbam"], ["'cbam'", "known placements: triplet, triplet-neck, triplet-dense, "
                                                     "after:I[,J...], each-backbone"]),
    (["--placements", "triplet", "after:8"], ["'triplet' and 'after:8' build the same model"]),
    (["--seeds", "1"], ["seeds", ">= 2"]),
    (["--model", "{tmp}/nope.yaml"], ["nope.yaml", "not found"]),
    (["--pretrained", "{tmp}/base.pt"], ["base.pt", "not found"]),
    (["--address", "127.0.0.1:6379"], ["--address", "--backend ray"]),
    (["--epochs", "0"], ["epochs", ">= 1"]),
    (["--modules", "Nope"], ["--modules", "'Nope'", "registered modules: TripletAttention (triplet), CBAM (triplet)"]),
    (["--modules", "CBAM", "CBAM"], ["--modules", "listed twice"]),
    (["--model", "yolov5x.yaml", "--references", "scale-up"],
     ["--references", "'scale-up': yolov5x.yaml is the largest scale of its family (n, s, m, l, x)",
      "valid choices: a model config, e.g. yolov5n.yaml, yolov5s.yaml, yolov5m.yaml, yolov5l.yaml"]),
    (["--model", "yolov3.yaml", "--references", "scale-up"], ["--references", "'scale-up': yolov3.yaml has no scale",
                                                             "valid choices: a model config"]),
    (["--references", "yolov5n.yaml"], ["--references", "'yolov5n.yaml' builds the plain model itself"]),
    (["--references", "{tmp}/nope.yaml"], ["--references", "nope.yaml", "does not resolve"]),
    (["--references", "yolov5s.pt"], ["--references", "'yolov5s.pt' is neither scale-up nor a model config"]),
    (["--latency", "tensorrt"], ["--latency", "invalid choice"]),
])
def test_bad_input_is_one_line_and_writes_nothing(args, words, shapes_data, tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--out", str(out), *args]
    assert_usage_error(main([a.format(tmp=tmp_path) for a in argv]), capsys.readouterr().err, *words)
    assert not out.exists()


def test_a_placement_without_a_config_is_refused(shapes_data, tmp_path, capsys):
    """A model given by path has no generated placements: its -triplet.yaml must exist beside it."""
    import shutil

    from ultralytics.utils.checks import check_yaml

    model = tmp_path / "mynet.yaml"
    shutil.copy(check_yaml("yolov5.yaml"), model)
    out = tmp_path / "study"
    argv = ["study", "--data", str(shapes_data), "--model", str(model), "--placements", "triplet", "--out", str(out)]
    assert_usage_error(main(argv), capsys.readouterr().err, "triplet", "mynet-triplet.yaml", "does not resolve")
    assert not out.exists()


def test_a_folder_with_other_files_is_refused(shapes_data, tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code = main(["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--out", str(out)])
    assert_usage_error(code, capsys.readouterr().err, "not empty", "holds no study")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("latency, missing", [("openvino", "openvino"), ("onnx", "onnxruntime")])
def test_a_latency_runtime_that_is_not_installed_is_one_line_naming_its_extra(latency, missing, shapes_data, tmp_path,
                                                                              capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, missing, None)  # what an import meets where the extra is not installed
    out = tmp_path / "study"
    code = main(["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet",
                 "--latency", latency, "--out", str(out)])
    assert_usage_error(code, capsys.readouterr().err, f"--latency '{latency}' needs {missing}",
                       f"pip install 'ultralytics-triplet[{latency}]'")
    assert not out.exists()


@pytest.mark.newest_only
def test_ray_backend_without_ray_prints_the_install_hint(shapes_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is not installed
    out = tmp_path / "study"
    code = main(["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet",
                 "--backend", "ray", "--out", str(out)])
    assert_usage_error(code, capsys.readouterr().err, "pip install 'ultralytics-triplet[ray]'")
    assert not out.exists()

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
from ultralytics_triplet.study.console import Console, captured
from ultralytics_triplet.study.fingerprint import digest, model_identity
from ultralytics_triplet.study.run import listed_devices
from ultralytics_triplet.study.stats import paired_interval, t_quantile, verdict
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
    assert small["n"] == 3 and small["mean"] == pytest.approx(0.02) and small["sd"] == pytest.approx(0.01)
    assert (small["lo"], small["hi"]) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert small["lo"] < 0 < small["hi"]
    assert verdict(small, "mAP50-95") == "no difference detectable at 3 seeds"
    better = paired_interval(plain, [0.60, 0.71, 0.82])
    assert better["lo"] > 0 and verdict(better, "mAP50-95").startswith("higher mAP50-95")
    worse = paired_interval(plain, [0.40, 0.49, 0.58])
    assert worse["hi"] < 0 and verdict(worse, "mAP50-95").startswith("lower mAP50-95")
    one = paired_interval([0.5], [0.6])
    assert math.isnan(one["lo"]) and verdict(one, "mAP50-95") == "only 1 paired seed: no interval"
    with pytest.raises(ValueError, match="equal lengths"):
        paired_interval([0.5, 0.6], [0.5])


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


def test_the_table_header_says_when_runs_were_shuffled_the_same_way_at_every_seed():
    from ultralytics_triplet.study.plan import Plan
    from ultralytics_triplet.study.report import format_table, summarize

    plan = Plan(settings={"data": "/d/data.yaml", "model": "yolov5n.yaml", "epochs": 1, "imgsz": 64, "batch": 8,
                          "pretrained": None}, fingerprint="f", variants=fake_variants(), task="detect", seeds=2)
    runs = fake_runs([0.10, 0.20], [0.15, 0.22], order="fixed")
    text = format_table(summarize(plan, runs), plan, runs=runs)
    assert "Data order: 4 of 4 runs were shuffled the same way at every seed (ultralytics 8.3.0: its loader" in text
    runs = fake_runs([0.10, 0.20], [0.15, 0.22], order="seed")
    assert "Data order" not in format_table(summarize(plan, runs), plan, runs=runs)


def fake_variants():
    from ultralytics_triplet.study.variants import Variant

    return (Variant("yolov5n.yaml", None, "a"), Variant("/s/models/yolov5n+TA@4.yaml", "after:4", "b"))


def fake_runs(plain: list[float], variant: list[float], order: str = "seed") -> list[dict]:
    """Rows of study.csv for the plain model and one variant at seeds 0, 1."""
    rows = []
    for config, placement, values in (("yolov5n.yaml", "none", plain), ("yolov5n+TA@4.yaml", "after:4", variant)):
        for seed, v in enumerate(values):
            rows.append({"config": config, "placement": placement, "seed": seed, "mAP50-95": v, "mAP50": 2 * v,
                         "train_time_s": 1.0, "weights": "w.pt", "data_order": order, "ultralytics": "8.3.0"})
    return rows


# ----------------------------------------------------------------------------------------------------------- chart


def test_the_chart_shows_each_variants_paired_difference_with_its_interval_and_a_line_at_zero(tmp_path):
    import matplotlib.image
    import numpy as np
    from matplotlib.collections import PathCollection

    from ultralytics_triplet.study.plan import Plan
    from ultralytics_triplet.study.plot import differences, plot_study
    from ultralytics_triplet.study.report import summarize

    plan = Plan(settings={"epochs": 1, "imgsz": 64}, fingerprint="f", variants=fake_variants(), task="detect",
                seeds=2)
    rows = summarize(plan, fake_runs([0.10, 0.20], [0.15, 0.23]))
    assert differences(rows, 1) == [[], [pytest.approx(0.05), pytest.approx(0.03)]]
    fig = plot_study(rows, tmp_path / "study.png", plan)
    delta = fig.axes[0]
    assert "ΔmAP50-95" in delta.get_title() and "verdict" in delta.get_title()
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in delta.get_lines())  # the line at 0
    interval = rows[1].d1
    bar = [c for c in delta.collections if not isinstance(c, PathCollection)]  # the errorbar's interval segment
    segment = np.asarray(bar[0].get_segments()[0])
    assert sorted(segment[:, 0]) == [pytest.approx(interval.lo), pytest.approx(interval.hi)]
    dots = [c for c in delta.collections if isinstance(c, PathCollection)]
    assert sorted(dots[0].get_offsets()[:, 0]) == [pytest.approx(0.03), pytest.approx(0.05)]  # one per seed
    assert [t.get_text() for t in delta.get_yticklabels()] == ["yolov5n.yaml", "yolov5n+TA@4.yaml"]
    png = matplotlib.image.imread(tmp_path / "study.png")
    assert png.shape[1] > 1000 and png.std() > 0


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


@pytest.mark.newest_only
def test_ray_backend_without_ray_prints_the_install_hint(shapes_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is not installed
    out = tmp_path / "study"
    code = main(["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet",
                 "--backend", "ray", "--out", str(out)])
    assert_usage_error(code, capsys.readouterr().err, "pip install 'ultralytics-triplet[ray]'")
    assert not out.exists()

"""The study (``ultralytics_triplet.study``) in this process: its statistics, its plan, and bad input to
``ultralytics-triplet study`` (one line, exit 2, nothing trained or written)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from helpers import assert_usage_error

from ultralytics_triplet.cli import main
from ultralytics_triplet.placements import NAMES as KNOWN_PLACEMENTS
from ultralytics_triplet.study.plan import variant_configs
from ultralytics_triplet.study.stats import paired_interval, t_quantile, verdict

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


def test_variant_names_follow_the_model_name():
    assert variant_configs("yolo11n.yaml", KNOWN_PLACEMENTS) == [
        "yolo11n.yaml", "yolo11n-triplet.yaml", "yolo11n-triplet-neck.yaml", "yolo11n-triplet-dense.yaml"]
    assert variant_configs(Path("cfg/my-yolov5s.yaml"), ["triplet-neck"]) == [
        str(Path("cfg/my-yolov5s.yaml")), str(Path("cfg/my-yolov5s-triplet-neck.yaml"))]
    with pytest.raises(ValueError, match="known placements: triplet, triplet-neck, triplet-dense"):
        variant_configs("yolo11n.yaml", ["triplet", "cbam"])
    with pytest.raises(ValueError, match="plain model"):
        variant_configs("yolo11n-triplet.yaml", ["triplet"])


# ------------------------------------------------------------- bad input: one line, exit 2, nothing trained or written


@pytest.mark.parametrize("args, words", [
    (["--data", "{tmp}/missing.yaml"], ["missing.yaml", "not found"]),
    (["--placements", "triplet", "cbam"], ["'cbam'", "known placements: triplet, triplet-neck, triplet-dense"]),
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

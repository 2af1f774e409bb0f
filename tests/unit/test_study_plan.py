"""A study's plan (``ultralytics_triplet.study.plan``): the options checked and carried, the rows, and the settings
whose fingerprint says which study a folder holds."""

from __future__ import annotations

import dataclasses

import pytest

from ultralytics_triplet.study.fingerprint import digest
from ultralytics_triplet.study.options import StudyOptions
from ultralytics_triplet.study.plan import Settings, make_plan

pytestmark = pytest.mark.compat


def options(data, tmp_path, **changes) -> StudyOptions:
    """A small study of yolov5n on ``data``, with ``changes``."""
    asked = StudyOptions(data, model="yolov5n.yaml", placements=["triplet", "after:4"], seeds=2, epochs=1, imgsz=64,
                         batch=8, out=tmp_path / "study", train_args={"workers": 0, "lr0": 0.02})
    return dataclasses.replace(asked, **changes)


def test_the_plan_carries_the_options_checked_and_writes_nothing(shapes_data, tmp_path):
    asked = options(shapes_data, tmp_path, references="scale-up")  # one name for a list of one
    plan = make_plan(asked)
    assert plan.options == dataclasses.replace(asked, placements=("triplet", "after:4"), modules=("TripletAttention",),
                                               references=("scale-up",))
    assert [v.name for v in plan.variants] == ["yolov5n.yaml", "yolov5s.yaml", "yolov5n-triplet.yaml",
                                               "yolov5n+TA@4.yaml"]
    assert plan.runs == 8 and plan.task == "detect" and plan.plain is plan.variants[0]
    s = plan.settings
    assert (s.epochs, s.imgsz, s.batch, s.nc, s.data) == (1, 64, 8, 3, str(shapes_data.resolve()))
    assert s.train_args == {"lr0": 0.02}  # workers: how a run executes, not what it learns
    assert plan.fingerprint == digest(s.to_json())
    assert not (tmp_path / "study").exists()


def test_only_what_a_run_learns_from_changes_the_fingerprint(shapes_data, tmp_path):
    fingerprint = make_plan(options(shapes_data, tmp_path)).fingerprint
    how = dict(device="cpu", latency_runs=3, verbose=True, seeds=5, detect=0.02, train_args={"workers": 2, "lr0": 0.02})
    assert make_plan(options(shapes_data, tmp_path, **how)).fingerprint == fingerprint
    assert make_plan(options(shapes_data, tmp_path, train_args={"lr0": 0.03})).fingerprint != fingerprint
    assert make_plan(options(shapes_data, tmp_path, batch=4)).fingerprint != fingerprint


def test_the_fingerprint_of_a_study_is_stable_across_releases_of_this_package():
    """``study.json`` of an existing study holds this digest: a resumed study must find the same one."""
    settings = Settings(format=1, model="yolov5n.yaml", model_sha256="m", task="detect", data="/d/data.yaml",
                        data_sha256="d", data_files=24, nc=3, epochs=1, imgsz=64, batch=8, pretrained=None,
                        pretrained_sha256=None, train_args={"lr0": 0.01})
    assert list(settings.to_json()) == ["format", "model", "model_sha256", "task", "data", "data_sha256", "data_files",
                                        "nc", "epochs", "imgsz", "batch", "pretrained", "pretrained_sha256",
                                        "train_args"]
    assert digest(settings.to_json()) == "da7098415073d858"


def test_a_bad_option_is_refused_before_anything_is_read(tmp_path):
    with pytest.raises(ValueError, match="latency_runs must be an integer >= 1, got 0") as e:
        make_plan(StudyOptions(tmp_path / "missing.yaml", latency_runs=0, out=tmp_path / "study"))
    assert e.value.param == "latency_runs"
    with pytest.raises(ValueError, match="detect must be a difference of the verdict's metric above 0") as e:
        make_plan(StudyOptions(tmp_path / "missing.yaml", detect=-0.01, out=tmp_path / "study"))
    assert e.value.param == "detect"
    with pytest.raises(ValueError, match="train argument epochs are set by the study itself"):
        make_plan(StudyOptions(tmp_path / "missing.yaml", train_args={"epochs": 3}))
    assert not (tmp_path / "study").exists()

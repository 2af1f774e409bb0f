"""The built-in plugin: TripletAttention, and the tutorial's own config in cfg/ under the tutorial's own name."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from ultralytics.nn.tasks import DetectionModel

from ultralytics_triplet import TripletAttention, registry
from ultralytics_triplet.builtin import CFG_DIR
from ultralytics_triplet.loading import load_model_yaml
from ultralytics_triplet.surgery import model_rows

pytestmark = pytest.mark.compat

TUTORIAL = "yolov5_TripletAttention.yaml"


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_bundled_configs_ship_inside_the_installed_package_and_are_a_plugin_model_directory():
    import ultralytics_triplet

    assert CFG_DIR.resolve().parent == Path(ultralytics_triplet.__file__).resolve().parent  # in the wheel
    assert (CFG_DIR / TUTORIAL).is_file()
    assert CFG_DIR in registry().model_dirs and registry().dir_owners[CFG_DIR] == "triplet"


@pytest.mark.parametrize("name", [TUTORIAL, "yolov5n_TripletAttention.yaml", "yolov5x_TripletAttention.yaml"])
def test_the_tutorials_file_has_the_published_wiring(name):
    rows = model_rows(load_model_yaml(name))
    assert rows[5] == [-1, 1, "TripletAttention", [256]]  # right after the P3 C3, channel count first
    assert [r[0] for r in rows if r[2] == "Concat"] == [[-1, 7], [-1, 5], [-1, 15], [-1, 11]]
    assert rows[-1][0] == [18, 21, 24] and rows[-1][2] == "Detect"
    assert rows[9] == [-1, 3, "C3", [1024]] and rows[10][2] == "SPPF"  # the backbone ends C3, SPPF


@pytest.mark.parametrize("scale", ["n", "s", "l"])
def test_each_scale_is_the_stock_yolov5_plus_300_parameters(scale, one_thread):
    ours = DetectionModel(f"yolov5{scale}_TripletAttention.yaml", verbose=False)
    stock = DetectionModel(f"yolov5{scale}.yaml", verbose=False)
    assert parameters(ours) - parameters(stock) == 300
    assert isinstance(ours.model[5], TripletAttention) and ours.model[5].c1 == 256


def test_the_bare_name_is_the_tutorials_yolov5l(one_thread):
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: records.append(r.getMessage())
    logging.getLogger("ultralytics").addHandler(handler)
    try:
        bare = DetectionModel(TUTORIAL, verbose=False)
    finally:
        logging.getLogger("ultralytics").removeHandler(handler)
    assert parameters(bare) == parameters(DetectionModel("yolov5l.yaml", verbose=False)) + 300
    assert any("scale='l'" in r for r in records), records  # ultralytics says which scale it took


def test_the_yolov5_repository_format_copy_builds_the_same_model_with_the_conversion_warning(one_thread, monkeypatch):
    from ultralytics_triplet import integration

    monkeypatch.setattr(integration, "_warned", set())  # the warning is once per process: as in a fresh one
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: records.append(r.getMessage())
    logging.getLogger("ultralytics").addHandler(handler)
    try:
        repo = DetectionModel("yolov5_TripletAttention_anchors.yaml", verbose=False)
    finally:
        logging.getLogger("ultralytics").removeHandler(handler)
    assert any("YOLOv5-repo format" in r for r in records), records
    assert parameters(repo) == parameters(DetectionModel("yolov5l_TripletAttention.yaml", verbose=False))
    assert [type(m).__name__ for m in repo.model] == [type(m).__name__ for m in DetectionModel(
        "yolov5l_TripletAttention.yaml", verbose=False).model]

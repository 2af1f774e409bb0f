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


# ------------------------------------------------------------------------------------------- ultralytics' own CBAM


def cbam_after(scale: str, layer: int = 4, args: list | None = None) -> dict:
    """yolov5 at ``scale`` with a ``[-1, 1, CBAM, args]`` row after ``layer``, as a YAML would write it."""
    from ultralytics_triplet import insert_layers

    return insert_layers(f"yolov5{scale}.yaml", after=[layer], module="CBAM", args=args or [])


def test_cbam_is_ultralytics_own_class_registered_as_a_channel_module():
    from ultralytics.nn.modules.conv import CBAM

    held = registry()
    assert held.modules["CBAM"] is CBAM and held.owners["CBAM"] == "triplet"  # not a copy
    assert "CBAM" in held.channel_modules and "TripletAttention" not in held.channel_modules


@pytest.mark.parametrize("scale, channels", [("n", 64), ("s", 128), ("l", 256)])
def test_a_cbam_row_builds_with_the_channel_count_of_the_layer_before_at_every_scale(scale, channels, one_thread):
    from ultralytics.nn.modules.conv import CBAM

    d = cbam_after(scale)
    model = DetectionModel(d, verbose=False)
    cbam = model.model[5]
    assert type(cbam) is CBAM and cbam.type == "ultralytics.nn.modules.conv.CBAM"
    assert model.model[4].cv3.conv.out_channels == channels == cbam.channel_attention.fc.in_channels
    assert cbam.spatial_attention.cv1.kernel_size == (7, 7)
    assert model.yaml["backbone"][5] == [-1, 1, "CBAM", []]  # the YAML keeps what was written: no channel count
    stock = DetectionModel(f"yolov5{scale}.yaml", verbose=False)
    assert parameters(model) - parameters(stock) == channels * channels + channels + 2 * 7 * 7  # 1x1 conv, 7x7 conv


def test_a_cbam_rows_args_follow_the_channel_count_unscaled(one_thread):
    cbam = DetectionModel(cbam_after("l", args=[3]), verbose=False).model[5]
    assert cbam.channel_attention.fc.in_channels == 256 and cbam.spatial_attention.cv1.kernel_size == (3, 3)
    with pytest.raises(AssertionError, match="kernel size"):  # a channel count written in args is no kernel size
        DetectionModel(cbam_after("n", args=[256]), verbose=False)

"""The plugin manager and its registry (``ultralytics_triplet.plugins``): third-party modules and model folders,
name clashes, broken plugins, and the unknown-module message that lists what is registered."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import ultralytics.nn.tasks as tasks
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

import ultralytics_triplet
from ultralytics_triplet import TripletAttention, get_plugin_manager, hookimpl
from ultralytics_triplet.integration import sync
from ultralytics_triplet.plugins import UnknownModuleError

pytestmark = pytest.mark.compat


@contextmanager
def plugin(obj, name: str):
    """Register a plugin object for the duration of a with-block."""
    pm = get_plugin_manager()
    pm.register(obj, name=name)
    try:
        yield
    finally:
        pm.unregister(name=name)
        sync()


class ScaleByTwo(nn.Module):
    """A channel-preserving module a third-party plugin might register."""

    def __init__(self, c1=None):
        super().__init__()

    def forward(self, x):
        return 2 * x


TINY = {
    "nc": 2,
    "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "ScaleByTwo", []]],
    "head": [[-1, 1, "Conv", [16, 3, 2]], [[1, 2], 1, "Detect", ["nc"]]],
}


def test_unknown_module_lists_registered_plugin_modules():
    d = {**TINY, "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "NoSuchAttention", []]]}
    with pytest.raises(UnknownModuleError) as e:
        DetectionModel(d, verbose=False)
    message = str(e.value)
    assert "'NoSuchAttention'" in message and "row 1" in message and "TripletAttention (triplet)" in message
    assert "\n" not in message


def test_third_party_plugin_adds_modules_and_model_dirs(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "yolo99-double.yaml").write_text(
        "nc: 2\nscales:\n  n: [0.33, 0.25, 1024]\n  s: [0.33, 0.5, 1024]\n"
        "backbone:\n  - [-1, 1, Conv, [64, 3, 2]]\n  - [-1, 1, ScaleByTwo, []]\n"
        "head:\n  - [-1, 1, Conv, [64, 3, 2]]\n  - [[1, 2], 1, Detect, [nc]]\n"
    )

    class Plugin:
        @hookimpl
        def register_modules(self):
            return [ScaleByTwo]

        @hookimpl
        def register_model_dirs(self):
            return [tmp_path / "models"]

    with plugin(Plugin(), "double"):
        model = YOLO("yolo99s-double.yaml")
        assert model.model.yaml["scale"] == "s"
        assert isinstance(model.model.model[1], ScaleByTwo)
        assert model.model.model[0].conv.out_channels == 32  # width 0.5 of scale s applied
        neck = YOLO("yolo99s-double-triplet-neck.yaml")  # a plugin's config gets the named placements too
        assert neck.model.yaml["scale"] == "s" and type(neck.model.model[2]).__name__ == "TripletAttention"
    assert "ScaleByTwo" not in vars(tasks)  # unregistering takes the name away again
    with pytest.raises(UnknownModuleError):
        DetectionModel(TINY, verbose=False)


def test_name_clash_with_ultralytics_is_refused(warnings_logged):
    class C3(nn.Module):  # ultralytics has its own C3
        pass

    class Plugin:
        @hookimpl
        def register_modules(self):
            return [C3]

    original = tasks.C3
    with plugin(Plugin(), "clashing"):
        DetectionModel(yaml_model_load("yolov5n-triplet.yaml"), verbose=False)
        assert tasks.C3 is original
    assert tasks.C3 is original
    assert any("'C3'" in w and "'clashing'" in w and "ultralytics.nn.modules" in w for w in warnings_logged)


def test_name_clash_between_plugins_keeps_the_first(warnings_logged):
    class TripletAttention(nn.Module):  # noqa: F811 - the clash is the point
        pass

    class Plugin:
        @hookimpl
        def register_modules(self):
            return [TripletAttention]

    with plugin(Plugin(), "copycat"):
        assert ultralytics_triplet.registry().modules["TripletAttention"] is ultralytics_triplet.TripletAttention
        assert ultralytics_triplet.registry().owners["TripletAttention"] == "triplet"
    assert any("'copycat'" in w and "'triplet'" in w and "TripletAttention" in w for w in warnings_logged)


def test_a_plugin_whose_hook_raises_is_skipped_with_a_warning(warnings_logged):
    class Broken:
        @hookimpl
        def register_modules(self):
            raise RuntimeError("boom")

    with plugin(Broken(), "broken"):
        model = DetectionModel(yaml_model_load("yolov5n-triplet.yaml"), verbose=False)
    assert isinstance(model.model[9], TripletAttention)
    assert any("'broken'" in w and "boom" in w for w in warnings_logged)

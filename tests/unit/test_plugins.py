"""The plugin manager and its registry (``ultralytics_triplet.plugins``): third-party modules and model folders,
name clashes, broken plugins, and the unknown-module message that lists what is registered."""

from __future__ import annotations

import pytest
import torch
import ultralytics.nn.tasks as tasks
from helpers import ChannelGate, ChannelPlugin
from helpers import registered as plugin
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

import ultralytics_triplet
from ultralytics_triplet import TripletAttention, hookimpl
from ultralytics_triplet.plugins import UnknownModuleError

pytestmark = pytest.mark.compat


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


SCALED = {
    "nc": 2,
    "scales": {"n": [0.33, 0.25, 1024], "s": [0.33, 0.5, 1024], "l": [1.0, 1.0, 1024]},
    "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "ChannelGate", []], [-1, 1, "Conv", [128, 3, 2]],
                 [-1, 1, "ChannelGate", [0.5]]],
    "head": [[[1, 3], 1, "Detect", ["nc"]]],
}


@pytest.mark.parametrize("scale, width", [("n", 0.25), ("s", 0.5), ("l", 1.0)])
def test_a_plugins_channel_module_gets_the_channel_count_of_the_layer_before_at_every_scale(scale, width):
    with plugin(ChannelPlugin(), "gates"):
        assert "ChannelGate" in ultralytics_triplet.registry().channel_modules
        model = DetectionModel({**SCALED, "scale": scale}, verbose=False)
        first, second = model.model[1], model.model[3]
        assert isinstance(first, ChannelGate) and first.scale.shape[1] == model.model[0].conv.out_channels == 64 * width
        assert second.scale.shape[1] == model.model[2].conv.out_channels == 128 * width
        assert float(second.scale.detach().flatten()[0]) == 0.5  # the row's own args follow, never scaled
        assert model.yaml["backbone"][1] == [-1, 1, "ChannelGate", []]
        assert model(torch.zeros(1, 3, 64, 64)) is not None  # channels line up through the head
    assert "ChannelGate" not in vars(tasks)


def test_a_channel_module_must_follow_the_layer_before_it():
    d = {**SCALED, "scale": "n", "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [64, 3, 1]],
                                               [0, 1, "ChannelGate", []]],
         "head": [[[1, 2], 1, "Detect", ["nc"]]]}
    with plugin(ChannelPlugin(), "gates"), pytest.raises(ValueError) as e:
        DetectionModel(d, verbose=False)
    assert str(e.value) == ("row 2 of the model YAML: ChannelGate takes the channel count of the layer before it, so "
                            "its 'from' must be -1, got 0")


def test_a_channel_module_ultralytics_already_knows_keeps_ultralytics_handling():
    """Where ultralytics' own parser resolves the name itself, the row is passed on as written."""

    class Conv(nn.Module):  # registered under a name ultralytics' tasks already holds: the clash keeps ultralytics'
        def __init__(self, c1):
            super().__init__()

    class Plugin:
        @hookimpl
        def register_channel_modules(self):
            return [Conv]

    with plugin(Plugin(), "shadow"):
        model = DetectionModel(yaml_model_load("yolov5n.yaml"), verbose=False)
    assert type(model.model[0]).__module__ == "ultralytics.nn.modules.conv"


def test_every_hook_spec_is_documented_in_the_plugin_guide():
    """As datasette does: a hook the docs do not name is a hook nobody finds."""
    import inspect
    from pathlib import Path

    from ultralytics_triplet import hookspecs

    guide = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
    if not guide.is_file():
        pytest.skip("no docs/ beside the tests")
    specs = [name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]
    assert "register_channel_modules" in specs
    text = guide.read_text(encoding="utf-8")
    assert [name for name in specs if f"`{name}()`" not in text] == []

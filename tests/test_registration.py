"""The registry as ultralytics sees it: names, files, restricted loading, clashes, broken plugins."""

from __future__ import annotations

import logging
import re
import types
from contextlib import contextmanager

import pytest
import torch
import ultralytics.nn.tasks as tasks
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

import ultralytics_triplet
from ultralytics_triplet import TripletAttention, get_plugin_manager, hookimpl, register
from conftest import run_python, said
from ultralytics_triplet.patch import (
    IncompatibleUltralyticsError,
    UnknownModuleError,
    install,
    supported_range,
    sync,
)


@pytest.fixture
def warnings_logged():
    """Collect what ultralytics' LOGGER prints at WARNING level during the test."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: records.append(r.getMessage())
    logger = logging.getLogger("ultralytics")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


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


def rows(d):
    return d["backbone"] + d["head"]


def test_parser_resolves_triplet_attention_by_name():
    m = DetectionModel(yaml_model_load("yolov5n-triplet.yaml"), verbose=False)
    assert isinstance(m.model[9], TripletAttention)
    assert tasks.TripletAttention is TripletAttention  # where parse_model looks names up


def test_yolov5_scales_resolve_by_name_like_stock_yolov5():
    for scale in "nslmx":
        d = yaml_model_load(f"yolov5{scale}-triplet.yaml")
        stock = yaml_model_load(f"yolov5{scale}.yaml")
        assert d["scale"] == stock["scale"] == scale
        assert d["yaml_file"] == f"yolov5{scale}-triplet.yaml"


def test_yolo_class_builds_a_triplet_model_by_bare_name():
    model = YOLO("yolov5n-triplet.yaml")
    assert model.task == "detect"
    assert sum(isinstance(m, TripletAttention) for m in model.model.modules()) == 1


def test_unknown_name_still_fails_like_ultralytics():
    with pytest.raises(FileNotFoundError):
        yaml_model_load("yolov5n-nosuchthing.yaml")


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


def test_registering_twice_is_harmless():
    first = register()
    parse_model = tasks.parse_model
    second = register()
    assert tasks.parse_model is parse_model and not hasattr(parse_model.__wrapped__, "__wrapped__")
    assert first.modules == second.modules


needs_safe_load = pytest.mark.skipif(not hasattr(tasks, "_SafeLoad"), reason="restricted loading arrived in 8.4")


@needs_safe_load
def test_restricted_loading_allows_the_module_and_its_children():
    register()
    tasks._SafeLoad._registry = tasks._SafeLoad._build()  # as a first restricted load would build it
    names = set(tasks._SafeLoad._registry)
    for cls in ("TripletAttention", "AttentionGate", "ConvBN", "GateBatchNorm2d"):
        assert f"ultralytics_triplet.nn.{cls}" in names


@pytest.mark.parametrize("moved", ["parse_model", "_SafeLoad._build", "BaseModel.load"])
def test_moved_ultralytics_internals_fail_with_one_clear_message_and_patch_nothing(moved):
    fake = types.ModuleType("ultralytics.nn.tasks")
    fake.parse_model = fake.yaml_model_load = lambda *a: None
    fake.check_yaml = lambda file, suffix=(".yaml", ".yml"), hard=True: None
    fake._SafeLoad = type("_SafeLoad", (), {"_registry": None, "_build": classmethod(lambda cls: {})})
    fake.BaseModel = type("BaseModel", (), {"load": lambda self, weights, verbose=True: None})
    owner, name = moved.rsplit(".", 1) if "." in moved else ("", moved)
    delattr(getattr(fake, owner) if owner else fake, name)
    before = dict(vars(fake))
    with pytest.raises(IncompatibleUltralyticsError, match=rf"no ultralytics.nn.tasks.{moved}.*; .*supports "
                                                          rf"ultralytics{re.escape(supported_range())}: pip"):
        install(fake)
    assert dict(vars(fake)) == before  # checked before anything changed: no half-patched module


def test_yolov5_repo_yaml_with_anchors_is_converted_with_a_warning(warnings_logged):
    d = {
        "nc": 3,
        "depth_multiple": 0.33,
        "width_multiple": 0.25,
        "anchors": [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119]],
        "backbone": [[-1, 1, "Conv", [64, 6, 2, 2]], [-1, 1, "Conv", [128, 3, 2]], [-1, 1, "TripletAttention", [128]]],
        "head": [[-1, 1, "Conv", [128, 3, 2]], [[2, 3], 1, "Detect", ["nc", "anchors"]]],
    }
    model = DetectionModel(d, verbose=False)
    assert model.model[-1].nc == 3
    assert any("anchors" in w for w in warnings_logged)


def test_two_threads_building_models_first_thing_in_a_process_agree(tmp_path):
    # A fresh process, so both threads race through the lazy plugin load and the first registry sync.
    code = (
        "import threading; from ultralytics.nn.tasks import DetectionModel, yaml_model_load;"
        "barrier, counts = threading.Barrier(2), [];"
        "build = lambda: (barrier.wait(), counts.append(sum(p.numel() for p in "
        "DetectionModel(yaml_model_load('yolov5n-triplet.yaml'), verbose=False).parameters())));"
        "threads = [threading.Thread(target=build) for _ in range(2)]; [t.start() for t in threads];"
        "[t.join() for t in threads]; print('@@', counts);"
        "print('@@', sum(p.numel() for p in DetectionModel(yaml_model_load('yolov5n.yaml'), verbose=False).parameters()))"
    )
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr
    counts, stock = said(p)
    assert counts == str([int(stock) + 300] * 2)  # both threads built the full triplet model


@pytest.fixture
def installed_plugins(tmp_path):
    """A directory that, on PYTHONPATH, looks like two installed third-party plugins: one broken, one clashing."""
    site = tmp_path / "plugins"
    dist = site / "fake_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[ultralytics_triplet]\nbroken = broken_plugin\nclashing = clashing_plugin\ntypo = typo_plugin\n")
    (site / "typo_plugin.py").write_text(
        "from ultralytics_triplet import hookimpl\n@hookimpl\ndef register_module():  # missing the s\n    return []\n")
    (site / "broken_plugin.py").write_text("raise ImportError('this plugin is broken')\n")
    (site / "clashing_plugin.py").write_text(
        "from torch import nn\nfrom ultralytics_triplet import hookimpl\n"
        "class TripletAttention(nn.Module):\n    pass\n"
        "class Doubler(nn.Module):\n    def forward(self, x):\n        return 2 * x\n"
        "@hookimpl\ndef register_modules():\n    return [TripletAttention, Doubler]\n")
    return site


def test_broken_clashing_and_misspelled_entry_point_plugins_cost_a_warning_each(installed_plugins, tmp_path):
    code = ("from ultralytics import YOLO; m = YOLO('yolov5n-triplet.yaml');"
            "import ultralytics.nn.tasks as t; print('@@', type(m.model.model[9]).__module__, hasattr(t, 'Doubler'))")
    p = run_python(code, tmp_path, PYTHONPATH=str(installed_plugins))
    assert p.returncode == 0, p.stderr
    assert said(p) == ["ultralytics_triplet.nn True"]  # ours kept, the clashing plugin's other module loaded
    log = p.stdout + p.stderr
    assert "plugin 'broken' (broken_plugin) failed to load and was skipped: ImportError: this plugin is broken" in log
    assert "'TripletAttention' from plugin 'clashing'" in log and "keeping 'triplet'" in log
    assert "plugin 'typo' (typo_plugin) failed to load and was skipped" in log and "register_module" in log


def test_plugins_variable_limits_which_plugins_load(installed_plugins, tmp_path):
    code = "import ultralytics_triplet as u; print('@@', sorted(u.registry().owners.values()))"
    p = run_python(code, tmp_path, PYTHONPATH=str(installed_plugins), ULTRALYTICS_TRIPLET_PLUGINS="clashing")
    assert p.returncode == 0, p.stderr
    assert said(p) == ["['clashing', 'triplet']"] and "broken" not in p.stdout + p.stderr

"""The patch (``ultralytics_triplet.integration``) as ultralytics sees it in this process: the parser and YAML lookup
resolve the registered names, ``register()`` is idempotent, restricted loading allows the module, and moved
ultralytics internals fail with one message before anything is patched."""

from __future__ import annotations

import dataclasses
import re
import sys
import types
from pathlib import Path

import pytest
import ultralytics.nn.tasks as tasks
from helpers import needs_safe_load
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from ultralytics_triplet import TripletAttention, register
from ultralytics_triplet._compat import IncompatibleUltralyticsError, supported_range
from ultralytics_triplet.integration import install
from ultralytics_triplet.placements import cache_dir

pytestmark = pytest.mark.compat


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


def test_check_yaml_wrapper_passes_arguments_through_as_given():
    import ultralytics.nn.tasks as tasks

    by_position = tasks.check_yaml("yolov8-obb-triplet.yaml", (".yaml",), False)
    by_keyword = tasks.check_yaml(file="yolov8-obb-triplet.yaml", hard=False)
    assert by_position == by_keyword and Path(by_position).parent == cache_dir()
    with pytest.raises(TypeError):
        tasks.check_yaml("yolov8.yaml", nonsense=True)  # what the original would say, not swallowed


def test_registering_twice_is_harmless():
    first = register()
    parse_model = tasks.parse_model
    second = register()
    assert tasks.parse_model is parse_model and not hasattr(parse_model.__wrapped__, "__wrapped__")
    assert first.modules == second.modules


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
    fake.guess_model_task = fake.guess_model_scale = fake.torch_safe_load = lambda *a: None
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


def export_targets(net) -> list:
    """What each TripletAttention of ``net`` was told by an exporter (None: nothing; the class default)."""
    return [vars(m).get("export_target") for m in net.modules() if isinstance(m, TripletAttention)]


@pytest.mark.parametrize(("fmt", "fails"), [("torchscript", False), ("onnx", True)])
def test_an_export_tells_every_attention_module_its_target_and_takes_it_back(fmt, fails, tmp_path, monkeypatch):
    """ultralytics' exporter, through the patched ``Exporter.__call__``: while the format's own export method runs,
    every attention module of the model (and of the exporter's copy of it) holds ``(format, dynamic)``; after the
    export, none holds anything, also when the format's method raised (a failure injected there)."""
    from ultralytics.engine.exporter import Exporter

    monkeypatch.chdir(tmp_path)
    model, seen, exporters = YOLO("yolov5n-triplet-dense.yaml"), [], []
    original = getattr(Exporter, f"export_{fmt}")

    def export_format(self, *args, **kwargs):
        seen.append((export_targets(model.model), export_targets(self.model)))
        exporters.append(self)
        if fails:
            raise RuntimeError("export failure injected by the test")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Exporter, f"export_{fmt}", export_format)
    rows = len(export_targets(model.model))
    if fails:
        with pytest.raises(RuntimeError, match="export failure injected by the test"):
            model.export(format=fmt.upper(), imgsz=64, device="cpu")
    else:
        assert Path(model.export(format=fmt.upper(), imgsz=64, device="cpu")).is_file()
    assert rows > 1 and seen == [([(fmt, False)] * rows, [(fmt, False)] * rows)]
    assert export_targets(model.model) == export_targets(exporters[0].model) == [None] * rows


# --------------------------------------------------------------------------------------- INT8 OpenVINO export


@dataclasses.dataclass
class FakeScope:
    """What the wrapper reads of ``nncf.IgnoredScope``: a dataclass of names, patterns and types."""

    names: list = dataclasses.field(default_factory=list)
    patterns: list = dataclasses.field(default_factory=list)
    types: list = dataclasses.field(default_factory=list)
    validate: bool = True


class FakeOp:
    """An operation of an OpenVINO model as the wrapper reads it: friendly name and type."""

    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind

    def get_friendly_name(self) -> str:
        return self.name

    def get_type_name(self) -> str:
        return self.kind


def fake_ov_model(prefix: str = "__module.model"):
    """An OpenVINO model's operations as its PyTorch frontend names them: a TripletAttention in row 3 (its additions,
    product, pooling and gate), a residual addition in row 13 and one in a submodule of row 2."""
    ops = [FakeOp(f"{prefix}.2.m.0/aten::add/Add", "Add"), FakeOp(f"{prefix}.3/aten::amax/ReduceMax", "ReduceMax"),
           FakeOp(f"{prefix}.3/aten::_convolution/Convolution", "Convolution"),
           FakeOp(f"{prefix}.3/aten::add/Add_4", "Add"), FakeOp(f"{prefix}.3/aten::add/Add_7", "Add"),
           FakeOp(f"{prefix}.3/aten::mul/Multiply_12", "Multiply"), FakeOp(f"{prefix}.3/aten::add/Add_4/c", "Constant"),
           FakeOp(f"{prefix}.13/aten::add/Add", "Add")]
    return types.SimpleNamespace(get_ordered_ops=lambda: ops)


def fake_nncf(seen: list):
    """An ``nncf`` module whose quantize records the ignored scope it was given."""

    def quantize(model, calibration_dataset, *, preset=None, ignored_scope=None, subset_size=300):
        seen.append(ignored_scope)
        return model

    return types.SimpleNamespace(__version__="0", IgnoredScope=FakeScope, quantize=quantize)


ATTENTION = ["aten::amax/ReduceMax", "aten::_convolution/Convolution", "aten::add/Add_4", "aten::add/Add_7",
             "aten::mul/Multiply_12"]  # the operations of the fake model's row 3, constants aside


@pytest.mark.parametrize("prefix", ["__module.model", "__module.model.model"], ids=["model", "wrapped"])
def test_int8_ignored_scope_holds_every_attention_operation_and_nothing_else(prefix):
    from ultralytics_triplet import integration

    scope = integration._with_attention(fake_nncf([]), fake_ov_model(prefix), None, ["model.3"])
    assert scope == FakeScope(names=[f"{prefix}.3/{op}" for op in ATTENTION])


def test_int8_ignored_scope_keeps_ultralytics_own_entries():
    from ultralytics_triplet import integration

    ours = [f"__module.model.3/{op}" for op in ATTENTION]
    given = FakeScope(names=[ours[2], "head/Sigmoid"], patterns=[".*dfl.*"], types=["Sigmoid"], validate=False)
    scope = integration._with_attention(fake_nncf([]), fake_ov_model(), given, ["model.3"])
    assert scope == FakeScope(names=[ours[2], "head/Sigmoid", *ours[:2], *ours[3:]], patterns=[".*dfl.*"],
                              types=["Sigmoid"], validate=False)
    assert given.names == [ours[2], "head/Sigmoid"]  # not changed in place


def test_int8_ignored_scope_left_as_it_is_with_one_warning_when_an_attention_has_no_operation(monkeypatch,
                                                                                                  warnings_logged):
    from ultralytics_triplet import integration

    monkeypatch.setattr(integration, "_warned", set())
    given = FakeScope(names=["head/Sigmoid"])
    assert integration._with_attention(fake_nncf([]), fake_ov_model(), given, ["model.3", "model.7"]) is given
    assert len(warnings_logged) == 1 and "TripletAttention model.7" in warnings_logged[0]


def exporter_call(monkeypatch, args, seen: list):
    """Run ``Exporter.export_openvino`` as this package wraps it, with an exporter whose model holds TripletAttention
    at ``model.3`` and an ``export_openvino`` that quantizes the fake OpenVINO model as ultralytics does."""
    from torch import nn

    from ultralytics_triplet import integration

    nncf = fake_nncf(seen)
    monkeypatch.setitem(sys.modules, "nncf", nncf)
    quantize = nncf.quantize

    def export_openvino(self):
        import nncf

        return nncf.quantize(model=fake_ov_model(), calibration_dataset=None, ignored_scope=None)

    wrapped = integration._wrap_export_openvino(export_openvino)
    exporter = types.SimpleNamespace(model=nn.Module(), args=args)
    exporter.model.model = nn.Sequential(nn.Identity(), nn.Identity(), nn.Identity(), TripletAttention())
    wrapped(exporter)
    assert nncf.quantize is quantize  # put back after the export


def test_int8_openvino_export_hands_nncf_the_attention_as_an_ignored_scope(monkeypatch):
    seen = []
    exporter_call(monkeypatch, types.SimpleNamespace(quantize=8), seen)
    assert seen == [FakeScope(names=[f"__module.model.3/{op}" for op in ATTENTION])]
    exporter_call(monkeypatch, types.SimpleNamespace(int8=True), seen)  # ultralytics 8.3 says int8=True
    assert seen[1] == seen[0]


@pytest.mark.parametrize("args", [{"quantize": None}, {"quantize": 16}, {"int8": False}])
def test_float_openvino_export_leaves_nncf_alone(monkeypatch, args):
    seen = []
    exporter_call(monkeypatch, types.SimpleNamespace(**args), seen)
    assert seen == [None]


def test_ultralytics_exporter_runs_the_wrapped_openvino_export():
    from ultralytics.engine.exporter import Exporter

    from ultralytics_triplet._compat import MARK, original

    register()
    assert getattr(Exporter.export_openvino, MARK, False)
    assert not getattr(original(Exporter.export_openvino), MARK, False)  # wrapped once


def test_exporter_without_export_openvino_gets_one_warning_and_no_patch(monkeypatch, warnings_logged):
    from ultralytics_triplet import integration

    monkeypatch.setattr(integration, "_warned", set())
    fake = types.ModuleType("ultralytics.engine.exporter")
    fake.Exporter = type("Exporter", (), {})
    integration._patch_exporter(fake)
    assert not hasattr(fake.Exporter, "export_openvino")
    assert len(warnings_logged) == 1 and "no Exporter.export_openvino" in warnings_logged[0]

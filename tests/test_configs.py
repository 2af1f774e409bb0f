"""Every bundled config builds at every scale, and costs exactly 300 parameters per TripletAttention row."""

from __future__ import annotations

import re
from copy import deepcopy
from functools import lru_cache

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel, parse_model, yaml_model_load

from ultralytics_triplet import TripletAttention
from ultralytics_triplet.builtin import config_dir

BUNDLED = sorted(p.name for p in config_dir().rglob("*.yaml"))


def scaled(name: str, scale: str) -> str:
    """'yolov5-p6-triplet.yaml', 'n' -> 'yolov5n-p6-triplet.yaml' (the scale letter follows the version digits)."""
    return re.sub(r"(\d+)", rf"\1{scale}", name, count=1)


def stock_of(name: str) -> str:
    """The ultralytics config a bundled one was built from: 'yolov5-p6-triplet.yaml' -> 'yolov5-p6.yaml'."""
    return re.sub(r"-triplet.*", "", name.removesuffix(".yaml")) + ".yaml"


@lru_cache(maxsize=None)
def parameters(name: str) -> int:
    """Parameter count of the network ultralytics' parser builds for ``name`` (no forward pass)."""
    model, _ = parse_model(deepcopy(yaml_model_load(name)), ch=3, verbose=False)
    return sum(p.numel() for p in model.parameters())


def total(out) -> torch.Tensor:
    """Sum every tensor in a model output, however ultralytics nests it (tensor, list, tuple or dict)."""
    if torch.is_tensor(out):
        return out.sum()
    return sum(total(o) for o in (out.values() if isinstance(out, dict) else out))


def test_bundles_the_yolov5_family():
    assert {"yolov5-triplet.yaml", "yolov5-p6-triplet.yaml", "yolov5-triplet-neck.yaml"} <= set(BUNDLED)


@pytest.mark.parametrize("scale", "nslmx")
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_config_costs_300_parameters_per_attention_row(name, scale):
    d = yaml_model_load(scaled(name, scale))
    assert d["scale"] == scale
    rows = [r for r in d["backbone"] + d["head"] if r[2] == "TripletAttention"]
    assert rows, f"{name} has no TripletAttention row"
    assert parameters(scaled(name, scale)) == parameters(scaled(stock_of(name), scale)) + 300 * len(rows)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_config_runs_forward_and_backward(name):
    model = DetectionModel(yaml_model_load(scaled(name, "n")), nc=3, verbose=False)
    assert any(isinstance(m, TripletAttention) for m in model.modules())
    total(model(torch.rand(2, 3, 128, 128))).backward()  # P6/64 needs > 1 value per BN channel
    assert all(p.grad is not None for m in model.modules() if isinstance(m, TripletAttention) for p in m.parameters())

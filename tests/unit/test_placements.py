"""Named placements (``ultralytics_triplet.placements``): every model config of the installed ultralytics has three
triplet variants that resolve by name.

The configs are enumerated from the ultralytics under test (``ultralytics/cfg/models``), so the same file checks
whatever release scripts/test.sh runs it against.
"""

from __future__ import annotations

import re
from copy import deepcopy
from functools import cache
from pathlib import Path

import pytest
import torch
import yaml
from helpers import OTHER, STOCK, at_scale_n, flat, variant
from ultralytics.nn.tasks import check_yaml, guess_model_scale, parse_model, yaml_model_load

from ultralytics_triplet import TripletAttention, insert_layers
from ultralytics_triplet.placements import PLACEMENTS, cache_dir, insertion_points, parse_name

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("one_thread")]  # tiny inputs gain nothing from threads


def built(name: str) -> tuple[torch.nn.Sequential, list[int], int]:
    """Build ``name`` with ultralytics' parser: (layers, saved outputs, parameter count)."""
    d = deepcopy(yaml_model_load(name))
    for row in d["backbone"] + d["head"]:
        if row[2] == "TorchVision" and len(row[3]) > 2:
            row[3][2] = None  # no pretrained torchvision download (offline); the architecture is the same
    model, save = parse_model(d, ch=3, verbose=False)
    return model, save, sum(p.numel() for p in model.parameters())


@cache
def stock_parameters(name: str) -> int:
    """Parameter count of a stock model, built once per session (only the count is kept)."""
    return built(name)[2]


def forward(model: torch.nn.Sequential, save: list[int], x: torch.Tensor):
    """Run layers the way ultralytics' BaseModel routes them (``from`` indices, saved outputs)."""
    y = []
    for m in model:
        if m.f != -1:
            x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
        x = m(x)
        y.append(x if m.i in save else None)
    return x


def test_every_family_of_the_issue_is_covered():
    wanted = {"yolov3.yaml", "yolov5.yaml", "yolov6.yaml", "yolov8.yaml", "yolov9t.yaml", "yolov10n.yaml",
              "yolo11.yaml", "yolov8-p2.yaml", "yolov8-p6.yaml", "yolo11-seg.yaml", "yolov8-pose.yaml",
              "yolo11-obb.yaml", "yolo11-cls.yaml"}
    assert wanted <= set(STOCK)
    assert {"rtdetr-l.yaml", "yolov8-worldv2.yaml"} <= set(OTHER)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("stock", STOCK)
def test_placement_builds_with_300_parameters_per_row_and_runs(stock, placement):
    name = variant(stock, placement)
    d = yaml_model_load(name)
    assert d["scale"] == guess_model_scale(at_scale_n(stock))  # the scale comes from the requested name
    rows = [i for i, r in enumerate(d["backbone"] + d["head"]) if r[2] == "TripletAttention"]
    assert rows
    model, save, n = built(name)
    assert n == stock_parameters(at_scale_n(stock)) + 300 * len(rows)
    assert [m.i for m in model if isinstance(m, TripletAttention)] == rows
    imgsz = 64 if "p6" in stock else 32  # the smallest input every stride of the model divides
    with torch.no_grad():
        out = flat(forward(model.eval(), save, torch.rand(1, 3, imgsz, imgsz)))
    assert out and all(torch.isfinite(t).all() for t in out if t.is_floating_point())


@pytest.mark.parametrize("stock", STOCK)
def test_placements_follow_the_documented_rule(stock):
    d = yaml_model_load(at_scale_n(stock))
    rows = d["backbone"] + d["head"]
    modules = [r[2] for r in rows]
    (j,) = insertion_points(d, "")
    pools = [i for i, r in enumerate(d["backbone"]) if r[2] in ("SPPF", "SPP", "SPPELAN")]
    assert j == (pools[-1] - 1 if pools else len(d["backbone"]) - 1)
    f = rows[-1][0]
    assert insertion_points(d, "-neck") == sorted({x if x >= 0 else len(rows) - 1 + x
                                                   for x in (f if isinstance(f, list) else [f])})
    dense = insertion_points(d, "-dense")
    assert dense and max(dense) < len(rows) - 1
    csp = [i for i, m in enumerate(modules[:-1]) if re.search(r"C[123]|ELAN|Bottleneck|ResNetLayer", m)
           and not m.startswith("SPP")]
    if csp:
        assert dense == csp


def test_plain_placement_is_before_sppf_and_neck_feeds_the_head():
    d = yaml_model_load("yolov5n-triplet.yaml")
    names = [r[2] for r in d["backbone"]]
    assert names[names.index("TripletAttention") + 1] == "SPPF" and names.count("TripletAttention") == 1
    d = yaml_model_load("yolov5n-triplet-neck.yaml")
    rows = d["backbone"] + d["head"]
    assert all(rows[i][2] == "TripletAttention" for i in rows[-1][0]) and len(rows[-1][0]) == 3


def test_generated_file_is_insert_layers_of_the_stock_config_and_lives_in_the_cache():
    path = Path(check_yaml("yolo11-seg-triplet-neck.yaml"))
    assert path.parent == cache_dir() and path.name == "yolo11-seg-triplet-neck.yaml"
    loaded = yaml.safe_load(path.read_text())
    expected = insert_layers("yolo11-seg.yaml", after=insertion_points(yaml_model_load("yolo11-seg.yaml"), "-neck"))
    assert {k: v for k, v in loaded.items()} == {k: v for k, v in expected.items() if k not in ("scale", "yaml_file")}


@pytest.mark.parametrize("stock", OTHER)
def test_models_of_other_classes_are_refused_with_a_reason(stock):
    with pytest.raises(ValueError, match=r"another model class than YOLO .*insert_layers"):
        check_yaml(stock.replace(".yaml", "-triplet.yaml"))


def test_unknown_names_fail_as_ultralytics_does_and_write_nothing():
    before = sorted(cache_dir().iterdir()) if cache_dir().is_dir() else []
    with pytest.raises(FileNotFoundError, match="does-not-exist-triplet.yaml"):
        yaml_model_load("does-not-exist-triplet.yaml")
    assert check_yaml("does-not-exist-triplet-neck.yaml", hard=False) in ([], None, "")
    assert (sorted(cache_dir().iterdir()) if cache_dir().is_dir() else []) == before


@pytest.mark.parametrize(("name", "parsed"), [
    ("yolov8-triplet.yaml", ("yolov8.yaml", "")), ("yolo11-seg-triplet-neck.yaml", ("yolo11-seg.yaml", "-neck")),
    ("my-net-triplet-dense.yml", ("my-net.yml", "-dense")), ("yolov8.yaml", None), ("yolov8-triplet-x.yaml", None),
])
def test_placement_names_parse(name, parsed):
    assert parse_name(name) == parsed


def test_no_spatial_rows_cost_200_parameters():
    d = insert_layers("yolov8n.yaml", after=insertion_points(yaml_model_load("yolov8n.yaml"), "-dense"), args=[True])
    n_rows = sum(r[2] == "TripletAttention" for r in d["backbone"] + d["head"])
    model, _ = parse_model(d, ch=3, verbose=False)
    assert sum(p.numel() for p in model.parameters()) == stock_parameters("yolov8n.yaml") + 200 * n_rows

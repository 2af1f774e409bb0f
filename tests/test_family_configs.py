"""The YOLOv8, YOLO11 and YOLO26 triplet configs: exactly what ``insert_layers`` makes of the stock ones.

Each bundled file is ultralytics' stock config with one TripletAttention row before SPPF, written by
``insert_layers_with_rows`` + ``write_yaml``. Regenerate them with ``python tests/test_family_configs.py --write``.
"""

from __future__ import annotations

import sys
from copy import deepcopy
from pathlib import Path

import pytest
import yaml
from ultralytics.nn.tasks import check_yaml, parse_model, yaml_model_load

from ultralytics_triplet.builtin import config_dir
from ultralytics_triplet.surgery import insert_layers, insert_layers_with_rows, write_yaml

# stock config -> (bundled file relative to the config dir, family name for the header)
FAMILIES = {
    "yolov8.yaml": ("models/v8/yolov8-triplet.yaml", "YOLOv8", "v8"),
    "yolo11.yaml": ("models/11/yolo11-triplet.yaml", "YOLO11", "11"),
    "yolo26.yaml": ("models/26/yolo26-triplet.yaml", "YOLO26", "26"),
}


def before_sppf(stock: str) -> int:
    """Index of the backbone layer that feeds SPPF (TripletAttention goes right after it)."""
    names = [row[2] for row in yaml_model_load(stock)["backbone"]]
    return names.index("SPPF") - 1


def header(stock: str) -> str:
    """The comment block on top of a generated config, in the style of the bundled YOLOv5 ones."""
    target, family, folder = FAMILIES[stock]
    name = Path(target).name
    scaled = name.replace("-triplet", "n-triplet", 1)
    return (
        f"ultralytics-triplet: {family} (P3/8 - P5/32 outputs) with TripletAttention before SPPF\n"
        'Triplet Attention: Misra et al., "Rotate to Attend: Convolutional Triplet Attention Module", WACV 2021.\n'
        f"Built from ultralytics' cfg/models/{folder}/{stock} (AGPL-3.0) by ultralytics_triplet.surgery.insert_layers\n"
        f"(after={before_sppf(stock)}) + write_yaml. Nothing else differs from it: the parameter count is the stock\n"
        "model's plus 300 per TripletAttention row. The row marked \"# inserted by ultralytics-triplet\" is new;\n"
        "later indices are re-wired. Regenerate with: python tests/test_family_configs.py --write\n"
        f"Use by name at any scale, e.g. YOLO(\"{scaled}\") or 'yolo detect train model={scaled}'.\n"
    )


def generate(stock: str, root: Path, force: bool = False) -> Path:
    """Write the triplet variant of ``stock`` under ``root`` (the config dir layout) and return its path."""
    d, rows = insert_layers_with_rows(stock, after=[before_sppf(stock)])
    return write_yaml(d, root / FAMILIES[stock][0], rows, force=force, header=header(stock))


def rows_of(d: dict) -> dict:
    """The part of a model dict that defines the network: every key but the load-time ones."""
    return {k: v for k, v in d.items() if k not in ("scale", "yaml_file")}


def parameters(name: str) -> int:
    """Parameter count of the network ultralytics' parser builds for ``name``."""
    model, _ = parse_model(deepcopy(yaml_model_load(name)), ch=3, verbose=False)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("stock", FAMILIES)
def test_bundled_config_is_what_insert_layers_makes(stock, tmp_path):
    bundled = config_dir() / FAMILIES[stock][0]
    assert bundled.is_file()
    expected = insert_layers(stock, after=[before_sppf(stock)])
    assert rows_of(yaml.safe_load(bundled.read_text())) == rows_of(expected)
    regenerated = generate(stock, tmp_path)
    assert regenerated.read_text() == bundled.read_text(), "bundled file is stale: run this file with --write"


@pytest.mark.parametrize("stock", FAMILIES)
def test_triplet_row_sits_right_before_sppf(stock):
    d = yaml_model_load(Path(FAMILIES[stock][0]).name)
    names = [row[2] for row in d["backbone"]]
    i = names.index("TripletAttention")
    assert names[i + 1] == "SPPF" and names.count("TripletAttention") == 1


@pytest.mark.parametrize("stock", FAMILIES)
def test_resolves_by_bare_scaled_name(stock):
    name = Path(FAMILIES[stock][0]).name.replace("-triplet", "n-triplet", 1)  # yolov8n-triplet.yaml
    assert Path(check_yaml(name.replace("n-triplet", "-triplet"))).resolve() == (config_dir() / FAMILIES[stock][0])
    d = yaml_model_load(name)
    assert d["scale"] == "n"
    assert parameters(name) == parameters(stock.replace(".yaml", "n.yaml")) + 300


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/test_family_configs.py --write   (rewrites the bundled v8/11/26 configs)")
    for s in FAMILIES:
        print(generate(s, config_dir(), force=True))

"""visualize (``ultralytics_triplet.visualize``): forward hooks capture every TripletAttention layer's gates, and one
picture shows them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from helpers import IMGSZ
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from ultralytics_triplet import TripletAttention
from ultralytics_triplet.surgery import insert_layers
from ultralytics_triplet.visualize import capture_gates, letterbox, visualize

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def neck_model():
    return DetectionModel(yaml_model_load("yolov5n-triplet-neck.yaml"), nc=3, verbose=False).eval()


@pytest.fixture(scope="module")
def image(shapes_data):
    return sorted((shapes_data.parent / "images" / "val").iterdir())[0]


def test_capture_gates_returns_every_layer_with_its_gate_shapes(neck_model):
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    layers = capture_gates(neck_model, x)
    assert [layer["index"] for layer in layers] == [18, 22, 26]
    for layer in layers:
        c, h, w = layer["shape"]
        g = layer["gates"]
        assert g["cw"].shape == (c, 1, w) and g["hc"].shape == (c, h, 1) and g["hw"].shape == (1, h, w)
        assert all(((t > 0) & (t < 1)).all() for t in g.values())  # sigmoid outputs
    assert all(not m._forward_hooks for m in neck_model.modules() if isinstance(m, TripletAttention))


def test_captured_gates_are_the_modules_gates(neck_model):
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    seen = {}
    m = neck_model.model[18]
    handle = m.register_forward_hook(lambda mod, inp, out: seen.setdefault("x", inp[0].clone()))
    try:
        layers = capture_gates(neck_model, x)
    finally:
        handle.remove()
    expected = m.gates(seen["x"])
    for k, v in expected.items():
        torch.testing.assert_close(layers[0]["gates"][k], v[0])


def test_visualize_writes_one_picture_growing_with_the_layers(neck_model, image, tmp_path):
    one = visualize("yolov5n-triplet.yaml", image, tmp_path / "one.png", imgsz=IMGSZ)
    three = visualize(neck_model, image, tmp_path / "three.png", imgsz=IMGSZ)
    h1, w1 = cv2.imread(str(one)).shape[:2]
    h3, w3 = cv2.imread(str(three)).shape[:2]
    assert w1 == w3 and h3 > 2 * h1


def test_visualize_without_spatial_gate(image, tmp_path):
    model = DetectionModel(insert_layers("yolov5n.yaml", after=[8], args=[None, True]), verbose=False)
    layers = capture_gates(model.eval(), torch.rand(1, 3, IMGSZ, IMGSZ))
    assert set(layers[0]["gates"]) == {"cw", "hc"}
    assert visualize(model, image, tmp_path / "ns.png", imgsz=IMGSZ).is_file()


def test_letterbox_keeps_aspect_and_pads():
    wide = np.full((20, 80, 3), 255, np.uint8)
    boxed = letterbox(wide, 64)
    assert boxed.shape == (64, 64, 3)
    assert (boxed[0, 32] == 114).all() and (boxed[32, 32] == 255).all()


def test_visualize_bad_input(image, tmp_path):
    with pytest.raises(ValueError, match="no TripletAttention"):
        visualize("yolov5n.yaml", image, tmp_path / "a.png", imgsz=IMGSZ)
    with pytest.raises(ValueError, match="multiple of 32"):
        visualize("yolov5n-triplet.yaml", image, tmp_path / "a.png", imgsz=65)
    with pytest.raises(ValueError, match=".png"):
        visualize("yolov5n-triplet.yaml", image, tmp_path / "a.txt", imgsz=IMGSZ)
    with pytest.raises(FileNotFoundError):
        visualize("yolov5n-triplet.yaml", tmp_path / "missing.jpg", tmp_path / "a.png", imgsz=IMGSZ)
    assert not list(tmp_path.iterdir())

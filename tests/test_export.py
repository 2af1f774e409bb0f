"""A triplet model through ultralytics' exporter, run by each format's own runtime, compared with PyTorch.

Fast formats (tools from the ``test`` extra) run with the suite; heavy ones (PaddlePaddle, ExecuTorch: large installs,
minutes to export) are marked ``heavy`` and run last by ``scripts/test.sh`` while its time budget allows. ``scripts/export_table.py`` covers every format.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import IMGSZ

pytestmark = pytest.mark.slow


def export_and_run(fmt: str, tmp_path: Path, monkeypatch, cfg: str = "yolov5n-triplet.yaml") -> tuple:
    """Export ``cfg`` (random weights) to ``fmt`` in ``tmp_path``; return (PyTorch output, exported model's output)."""
    from ultralytics import YOLO
    from ultralytics.nn.autobackend import AutoBackend

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = YOLO(cfg)
    net = model.model.float().eval()
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(x)[0].numpy()
    f = model.export(format=fmt, imgsz=IMGSZ, device="cpu")
    y = AutoBackend(f, device=torch.device("cpu"), fp16=False)(x)
    y = y[0] if isinstance(y, (list, tuple)) else y
    return expected, (y.numpy() if torch.is_tensor(y) else np.asarray(y)).astype(np.float32)


def needs(*modules: str):
    """Skip unless every module is importable (the format's tools are installed)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)}")


FAST = [
    pytest.param("torchscript", id="torchscript"),
    pytest.param("onnx", marks=needs("onnx", "onnxruntime"), id="onnx"),
    pytest.param("openvino", marks=needs("openvino"), id="openvino"),
    pytest.param("ncnn", marks=needs("ncnn", "pnnx"), id="ncnn"),
    pytest.param("mnn", marks=needs("MNN", "onnx"), id="mnn"),
]


@pytest.mark.parametrize("fmt", FAST)
def test_exported_triplet_model_matches_pytorch(fmt, tmp_path, monkeypatch):
    expected, got = export_and_run(fmt, tmp_path, monkeypatch)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


HEAVY = [
    pytest.param("paddle", marks=needs("paddle", "x2paddle"), id="paddle"),
    pytest.param("executorch", marks=needs("executorch"), id="executorch"),
]


@pytest.mark.heavy
@pytest.mark.parametrize("fmt", HEAVY)
def test_heavy_export_matches_pytorch(fmt, tmp_path, monkeypatch):
    expected, got = export_and_run(fmt, tmp_path, monkeypatch)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


@needs("onnx", "onnxruntime")
def test_onnx_at_opset_17_passes_onnxruntime_quantization_preprocessing(tmp_path, monkeypatch):
    """ultralytics' QNN export starts with ONNX Runtime's ``quant_pre_process``, whose symbolic shape inference loses
    ReduceMax's output shape at opset >= 18 (axes became an input; onnxruntime PR #32376, open) and then fails on the
    Z-pool's Unsqueeze. At opset 17 (``export(format="qnn", opset=17)``) the triplet model passes that step, and the
    pre-processed graph still computes what PyTorch does."""
    import onnxruntime as ort
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = YOLO("yolov5n-triplet.yaml")
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.model.float().eval()(x)[0].numpy()
    f = model.export(format="onnx", imgsz=IMGSZ, device="cpu", opset=17, simplify=True)
    quant_pre_process(f, str(tmp_path / "pre.onnx"))
    session = ort.InferenceSession(str(tmp_path / "pre.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())

"""A triplet model through ultralytics' exporter, run by each format's own runtime, compared with PyTorch.

Fast formats (tools from the ``test`` extra) run with the suite; heavy ones (PaddlePaddle, ExecuTorch, TensorFlow:
large installs, minutes to export) are marked ``heavy`` and run in the test command's own ``heavy`` session
(noxfile.py), with the ``test-heavy`` extra.
``scripts/export_table.py`` covers every format.

What the comparisons check (docs/export.md: each format compared with PyTorch): the runtime computes what PyTorch
does, within 1e-3 relative and 1e-3 of the output's largest entry (boxes in pixels, up to 480 at random weights). That
holds over float32 kernel differences (3e-5 in ``benchmarks/results-export.md``) and over OpenVINO's reduced-precision
default on CPUs with bf16 (ultralytics' backend sets no precision hint on x86 Linux). A fresh model's outputs are
mostly its head's biases, its features fading over depth, so these tests show that every layer exports and runs in
each runtime; that the exported attention computes the module's function, at any size, is checked on the module itself
(``tests/unit/test_nn.py``: the eval trace and the ONNX export with dynamic axes).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import BASE_IMGSZ, IMGSZ

pytestmark = [pytest.mark.slow, pytest.mark.newest_only]


def export(fmt: str, tmp_path: Path, monkeypatch, cfg: str = "yolov5n-triplet.yaml") -> tuple:
    """Export ``cfg`` (random weights) to ``fmt`` in ``tmp_path``; return (input, PyTorch output, exported file)."""
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = YOLO(cfg)
    net = model.model.float().eval()
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(x)[0].numpy()
    return x, expected, model.export(format=fmt, imgsz=IMGSZ, device="cpu")


def run(f: str | Path, x: torch.Tensor) -> np.ndarray:
    """Run exported file ``f`` on ``x`` through ultralytics' AutoBackend (the format's own runtime)."""
    from ultralytics.nn.autobackend import AutoBackend

    y = AutoBackend(str(f), device=torch.device("cpu"), fp16=False)(x)
    y = y[0] if isinstance(y, (list, tuple)) else y
    return (y.numpy() if torch.is_tensor(y) else np.asarray(y)).astype(np.float32)


def export_and_run(fmt: str, tmp_path: Path, monkeypatch, cfg: str = "yolov5n-triplet.yaml") -> tuple:
    """Export ``cfg`` (random weights) to ``fmt`` in ``tmp_path``; return (PyTorch output, exported model's output)."""
    x, expected, f = export(fmt, tmp_path, monkeypatch, cfg)
    return expected, run(f, x)


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


def graph_signature(f: str | Path, fmt: str) -> int:
    """Operations that only the static graph of each runtime holds: in ONNX the depthwise convolution of both rotated
    gates' four pooled maps (``group=4``), one per attention row; in OpenVINO the average pooling over H and over W, two
    per row (plain yolov5n has neither)."""
    if fmt == "onnx":
        import onnx

        nodes = onnx.load(str(f), load_external_data=False).graph.node
        return sum(n.op_type == "Conv" and any(a.name == "group" and a.i == 4 for a in n.attribute) for n in nodes)
    return next(Path(f).glob("*.xml")).read_text().count('type="AvgPool"')


@pytest.mark.parametrize("fmt", [
    pytest.param("onnx", marks=needs("onnx", "onnxruntime"), id="onnx"),
    pytest.param("openvino", marks=needs("openvino"), id="openvino"),
])
def test_static_exports_hold_their_runtimes_formulation_and_match_pytorch(fmt, tmp_path, monkeypatch):
    """ultralytics' static-shape ONNX and OpenVINO exports get a graph of their own (``forward_export_onnx``,
    ``forward_export_openvino``), recognised by the operations only it holds (:func:`graph_signature`). The dense model
    (attention on every map) runs in the runtime as PyTorch computes."""
    from ultralytics import YOLO

    from ultralytics_triplet.nn import TripletAttention

    cfg = "yolov5n-triplet-dense.yaml"
    rows = sum(isinstance(m, TripletAttention) for m in YOLO(cfg).model.modules())
    x, expected, f = export(fmt, tmp_path, monkeypatch, cfg=cfg)
    assert rows and graph_signature(f, fmt) == (rows if fmt == "onnx" else 2 * rows)
    got = run(f, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def run_at(f: str | Path, fmt: str, x: torch.Tensor) -> np.ndarray:
    """Run a dynamic-shape export ``f`` on ``x`` in its own runtime (ONNX Runtime, OpenVINO) or TorchScript."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    if fmt == "openvino":
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(next(Path(f).glob("*.xml")))), "CPU",
                                      {"INFERENCE_PRECISION_HINT": "f32"})
        return compiled.create_infer_request().infer({0: x.numpy()})[0]
    y = torch.jit.load(str(f))(x)
    return (y[0] if isinstance(y, (list, tuple)) else y).numpy()


@pytest.mark.parametrize("fmt", [
    pytest.param("torchscript", id="torchscript"),
    pytest.param("onnx", marks=needs("onnx", "onnxruntime"), id="onnx"),
    pytest.param("openvino", marks=needs("openvino"), id="openvino"),
])
def test_dynamic_export_matches_pytorch_at_other_sizes(fmt, tmp_path, monkeypatch):
    """``dynamic=True``: exported at one size, the dense model (attention on every map) is right at others."""
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = YOLO("yolov5n-triplet-dense.yaml")
    net = model.model.float().eval()
    f = model.export(format=fmt, imgsz=IMGSZ, device="cpu", dynamic=True)
    if fmt != "torchscript":
        assert graph_signature(f, fmt) == 0  # forward_export: none of the static graphs' operations
    for shape in [(1, 3, IMGSZ, IMGSZ), (2, 3, 96, 128), (1, 3, 160, 64)]:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = net(x)[0].numpy()
        got = run_at(f, fmt, x)
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


# What an INT8 export promises (docs/export.md): the quantized graph holds the attention, runs in OpenVINO and keeps
# detecting what the float model detects. Quantization moves scores by a few hundredths here (benchmarks/bench_int8.py
# measures the drop on a larger set, with seeds); 0.7 of the float model's val mAP50 is far outside that and far above
# a model that lost its detections.
INT8_KEEPS = 0.7


@needs("openvino", "nncf")
def test_openvino_int8_export_of_a_trained_triplet_model_runs_and_keeps_detecting(trained_base, tmp_path):
    """ultralytics' INT8 OpenVINO export of a trained triplet model, NNCF calibrating on the synthetic set."""
    from ultralytics import YOLO
    from ultralytics.cfg import DEFAULT_CFG_DICT

    best, data, _ = trained_base
    common = dict(data=str(data), imgsz=BASE_IMGSZ, device="cpu", plots=False, project=str(tmp_path))
    model = YOLO("yolov5n-triplet.yaml")  # fine-tuned from the trained base: a triplet model that detects
    model.train(pretrained=str(best), epochs=2, batch=16, workers=0, seed=0, name="triplet", warmup_epochs=0,
                mosaic=0.0, verbose=False, **common)
    triplet = Path(model.trainer.best)
    fp32 = YOLO(triplet).val(batch=16, name="fp32", **common).box.map50
    assert fp32 > 0.2, f"the triplet model detects too little ({fp32:.3f}) for the comparison to mean anything"

    int8 = {"quantize": 8} if "quantize" in DEFAULT_CFG_DICT else {"int8": True}  # int8=True before ultralytics 8.4
    folder = Path(YOLO(triplet).export(format="openvino", data=str(data), imgsz=BASE_IMGSZ, device="cpu", **int8))
    assert folder.name.endswith("_int8_openvino_model"), folder
    graph = next(folder.glob("*.xml")).read_text()
    assert 'element_type="i8"' in graph  # weights stored as int8
    assert 'type="ReduceMax"' in graph  # the attention's pooling (plain yolov5n has no reduction)
    quantized = YOLO(str(folder), task="detect").val(batch=1, name="int8", **common).box.map50
    assert quantized >= INT8_KEEPS * fp32, (quantized, fp32)


def fed_by_fake_quantize(xml: Path, rows: list[int]) -> dict[int, dict[str, set[bool]]]:
    """For each row: operation type -> whether each operation of that type in the row has a FakeQuantize input."""
    import openvino as ov

    out = {i: {} for i in rows}
    for op in ov.Core().read_model(str(xml)).get_ordered_ops():
        row = re.match(r"__module\.model\.(\d+)[./]", op.get_friendly_name())
        if row and int(row[1]) in out and op.get_type_name() != "FakeQuantize":
            quantized = any(i.get_source_output().get_node().get_type_name() == "FakeQuantize" for i in op.inputs())
            out[int(row[1])].setdefault(op.get_type_name(), set()).add(quantized)
    return out


@needs("openvino", "nncf")
def test_openvino_int8_export_leaves_every_attention_row_in_floating_point(shapes_data, tmp_path, monkeypatch):
    """INT8 through ultralytics' exporter, every row of the dense placement: no FakeQuantize feeds an operation of
    the attention (its pooling, gate convolutions, additions, product), while NNCF quantizes the network around it.
    ultralytics' own ``export_openvino``, unwrapped, quantizes the attention too."""
    from ultralytics import YOLO
    from ultralytics.cfg import DEFAULT_CFG_DICT
    from ultralytics.engine.exporter import Exporter

    from ultralytics_triplet import TripletAttention
    from ultralytics_triplet._compat import original

    monkeypatch.chdir(tmp_path)
    int8 = {"quantize": 8} if "quantize" in DEFAULT_CFG_DICT else {"int8": True}
    graphs = {}
    for name, export_openvino in (("ours", Exporter.export_openvino),
                                  ("ultralytics", original(Exporter.export_openvino))):
        torch.manual_seed(0)
        model = YOLO("yolov5n-triplet-dense.yaml")  # a model build re-applies the patch: set the method after it
        monkeypatch.setattr(Exporter, "export_openvino", export_openvino)
        rows = [i for i, m in enumerate(model.model.model) if isinstance(m, TripletAttention)]
        f = model.export(format="openvino", imgsz=IMGSZ, device="cpu", data=str(shapes_data), **int8)
        xml = next(Path(f).glob("*.xml"))
        graphs[name] = fed_by_fake_quantize(xml, rows)
        graphs[name, "next"] = fed_by_fake_quantize(xml, [i + 1 for i in rows])  # the row after each attention
    assert len(rows) == 8
    for i in rows:
        ours, theirs = graphs["ours"][i], graphs["ultralytics"][i]
        assert {"Add", "Convolution", "MaxPool", "Multiply", "ReduceMax"} <= set(ours), (i, ours)
        assert all(quantized == {False} for quantized in ours.values()), (i, ours)
        assert True in theirs["Add"] and True in theirs["MaxPool"], (i, theirs)
    assert any(True in q for row in graphs["ours", "next"].values() for q in row.values())  # int8 around it


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


@pytest.mark.heavy
@needs("tensorflow", "onnx2tf", "ai_edge_litert")
def test_tensorflow_saved_model_and_its_tflite_match_pytorch(tmp_path, monkeypatch):
    from ai_edge_litert.interpreter import Interpreter

    # ultralytics downloads onnx2tf's 20 sample images into the working directory (onnx2tf checks its conversion on
    # them); any images in [0, 1] do, and these need no network
    sample = np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32)
    np.save(tmp_path / "calibration_image_sample_data_20x128x128x3_float32.npy", sample)
    x, expected, f = export("saved_model", tmp_path, monkeypatch)
    got = run(f, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())

    # The TFLite model onnx2tf writes beside it, run by LiteRT's interpreter: ultralytics 8.4.190's LiteRT backend
    # scales boxes by imgsz, which only its litert and edgetpu exports need (plain yolov5n reads 64x too)
    tflite = sorted(Path(f).glob("*_float32.tflite"))
    assert len(tflite) == 1, sorted(p.name for p in Path(f).iterdir())
    interpreter = Interpreter(model_path=str(tflite[0]))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.permute(0, 2, 3, 1).numpy())  # NHWC
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())

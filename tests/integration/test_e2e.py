"""End to end, as a user runs it: the `yolo` CLI, checkpoints in new processes, resume, restricted loading, export.

None of the subprocesses imports ultralytics_triplet: the installed start-up hook alone must make them work.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import IMGSZ, needs_safe_load, run, run_python, said, script

pytestmark = [pytest.mark.slow, pytest.mark.compat]  # but for the export test, marked newest_only


TRAIN = f"epochs=1 imgsz={IMGSZ} batch=8 workers=0 device=cpu plots=False val=True seed=0 deterministic=True"


@pytest.fixture(scope="module")
def cli_run(shapes_data, tmp_path_factory) -> Path:
    """Train yolov5n-triplet for one epoch with the `yolo` CLI; return the run directory."""
    project = tmp_path_factory.mktemp("runs")
    cmd = [script("yolo"), "detect", "train", "model=yolov5n-triplet.yaml", f"data={shapes_data}",
           f"project={project}", "name=cli", *TRAIN.split()]
    p = run(cmd, project)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return project / "cli"


def test_yolo_cli_trains_a_triplet_model(cli_run):
    assert (cli_run / "weights" / "last.pt").is_file() and (cli_run / "weights" / "best.pt").is_file()
    ckpt = torch.load(cli_run / "weights" / "best.pt", map_location="cpu", weights_only=False)
    assert type(ckpt["model"].model[9]).__name__ == "TripletAttention"
    assert ckpt["train_args"]["model"] == "yolov5n-triplet.yaml"


def test_checkpoint_reloads_and_predicts_in_a_new_process(cli_run, shapes_data, tmp_path):
    image = next((shapes_data.parent / "images" / "val").iterdir())
    code = (f"from ultralytics import YOLO; m = YOLO({str(cli_run / 'weights' / 'best.pt')!r});"
            f"r = m.predict({str(image)!r}, imgsz={IMGSZ}, verbose=False);"
            "print('@@', type(m.model.model[9]).__name__, len(r), r[0].orig_shape)")
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert said(p)[-1].split()[0:2] == ["TripletAttention", "1"]


def test_val_through_the_python_api(cli_run, shapes_data):
    from ultralytics import YOLO

    metrics = YOLO(cli_run / "weights" / "best.pt").val(data=str(shapes_data), imgsz=IMGSZ, batch=8, workers=0,
                                                        device="cpu", plots=False, project=str(cli_run.parent),
                                                        name="val")
    assert 0.0 <= metrics.box.map <= 1.0 and metrics.box.map50 >= metrics.box.map
    assert (cli_run.parent / "val").is_dir()


@needs_safe_load
def test_restricted_loading_accepts_a_triplet_checkpoint(cli_run, tmp_path):
    code = (f"from ultralytics import YOLO; m = YOLO({str(cli_run / 'weights' / 'last.pt')!r});"
            "from ultralytics.nn.tasks import _SafeLoad; "
            "print('@@', _SafeLoad.restricted(), type(m.model.model[9]).__name__)")
    p = run_python(code, tmp_path, ULTRALYTICS_SAFE_LOAD="1")
    assert p.returncode == 0, p.stderr[-3000:]
    assert said(p) == ["True TripletAttention"]


@needs_safe_load
def test_restricted_loading_refuses_an_unregistered_class_with_ultralytics_message(tmp_path):
    (tmp_path / "stranger.py").write_text(
        "import torch.nn as nn\nclass Stranger(nn.Module):\n    def forward(self, x):\n        return x\n")
    save = ("import ultralytics.nn.tasks as t, stranger; t.Stranger = stranger.Stranger;"
            "from ultralytics import YOLO; import torch;"
            "d = {'nc': 2, 'backbone': [[-1, 1, 'Conv', [8, 3, 2]], [-1, 1, 'Stranger', []]],"
            "     'head': [[[-1], 1, 'Detect', ['nc']]]};"
            "m = t.DetectionModel(d, verbose=False); torch.save({'model': m, 'train_args': {}}, 'stranger.pt')")
    assert run_python(save, tmp_path, PYTHONPATH=str(tmp_path)).returncode == 0
    p = run_python("from ultralytics import YOLO; YOLO('stranger.pt')", tmp_path, PYTHONPATH=str(tmp_path),
                   ULTRALYTICS_SAFE_LOAD="1")
    assert p.returncode != 0
    assert "references types outside the supported Ultralytics checkpoint format" in p.stderr
    assert "ultralytics_triplet" not in p.stderr.split("TypeError")[-1]  # the error is ultralytics', not ours


def test_resume_continues_an_interrupted_run(shapes_data, tmp_path):
    # The first run dies right after saving epoch 1 of 2 (as a killed job would); resume=True finishes it.
    crash = (f"import os; from ultralytics import YOLO; m = YOLO('yolov5n-triplet.yaml');"
             "m.add_callback('on_model_save', lambda trainer: os._exit(3));"
             f"m.train(data={str(shapes_data)!r}, project={str(tmp_path)!r}, name='r', "
             + ", ".join(f"{k}={v!r}" if not v.replace('.', '').isdigit() and v not in ('True', 'False')
                         else f"{k}={v}"
                         for k, v in (a.split('=') for a in TRAIN.replace('epochs=1', 'epochs=2').split()))
             + ")")
    p = run_python(crash, tmp_path)
    assert p.returncode == 3, p.stderr[-3000:]
    last = tmp_path / "r" / "weights" / "last.pt"
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == 0
    p = run_python(f"from ultralytics import YOLO; YOLO({str(last)!r}).train(resume=True)", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = (tmp_path / "r" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2  # header and both epochs


@pytest.mark.newest_only
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_model_matches_pytorch(cli_run, tmp_path, fmt):
    from ultralytics import YOLO

    model = YOLO(cli_run / "weights" / "best.pt")
    exported = Path(model.export(format=fmt, imgsz=IMGSZ, device="cpu"))
    net = model.model.float().eval()
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    with torch.no_grad():
        expected = net(x)[0].numpy()
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    else:
        out = torch.jit.load(str(exported))(x)
        got = (out if torch.is_tensor(out) else out[0]).numpy()
    assert got.shape == expected.shape
    # the exported graph computes what PyTorch does (docs/export.md), within 1e-3 relative and 1e-3 absolute (boxes in
    # pixels, scores in [0, 1]): far above float32 kernel differences, which are relative to the output's size
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)

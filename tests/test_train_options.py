"""ultralytics' training and inference options on a triplet model: ``compile=True`` and ``model.fuse()``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import IMGSZ


def _has_compile_arg() -> bool:
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return "compile" in DEFAULT_CFG_DICT


@pytest.mark.slow
@pytest.mark.skipif(not _has_compile_arg(), reason="this ultralytics release has no 'compile' train argument")
def test_compile_true_trains_a_triplet_model(shapes_data, tmp_path, monkeypatch):
    from ultralytics import YOLO

    from ultralytics_triplet.nn import TripletAttention

    fast = []  # the custom Functions must stay out of the compiled graph: the module takes its plain path there
    original = TripletAttention._forward_fused
    monkeypatch.setattr(TripletAttention, "_forward_fused", lambda self, x: fast.append(1) or original(self, x))
    model = YOLO("yolov5n-triplet.yaml")
    model.train(data=str(shapes_data), epochs=1, imgsz=IMGSZ, batch=8, workers=0, device="cpu", plots=False,
                val=False, compile=True, project=str(tmp_path), name="c", seed=0)
    trainer = model.trainer
    assert hasattr(trainer.model, "_orig_mod"), "ultralytics did not compile the model (see its 'compile:' log)"
    assert not fast
    assert trainer.tloss is not None and torch.isfinite(trainer.tloss).all()
    assert (Path(trainer.save_dir) / "weights" / "last.pt").is_file()


def test_fuse_keeps_the_gates_and_the_outputs():
    from ultralytics.nn.tasks import DetectionModel

    net = DetectionModel("yolov5n-triplet.yaml", verbose=False).eval()
    torch.manual_seed(0)
    for m in net.modules():  # non-trivial BN statistics, so a wrong fold would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 1.5)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    with torch.no_grad():
        before = net(x)[0]
        net.fuse(verbose=False)
        after = net(x)[0]
    assert net.is_fused()
    gates = [g for m in net.modules() if type(m).__name__ == "TripletAttention" for g in (m.cw, m.hc, m.hw)]
    assert gates and all(hasattr(g.conv, "bn") for g in gates)  # ultralytics folds its own Conv classes only
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-3)

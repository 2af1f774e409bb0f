"""Processes that never import this package (DDP workers) and interrupted runs."""

from __future__ import annotations

import pytest
import torch
from helpers import IMGSZ, interrupt_at, run_ddp_worker, run_python

pytestmark = [pytest.mark.slow, pytest.mark.compat]


def test_ddp_worker_script_trains_without_importing_the_package(shapes_data, tmp_path):
    """ultralytics writes this script for every multi-GPU run and starts it in fresh interpreters."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    trainer = DetectionTrainer(overrides=dict(
        model="yolov5n-triplet.yaml", data=str(shapes_data), epochs=1, imgsz=IMGSZ, batch=8, workers=0,
        device="cpu", project=str(tmp_path), name="ddp", plots=False, exist_ok=True))
    assert trainer.model == "yolov5n-triplet.yaml"  # the worker builds the model from the YAML name itself
    p = run_ddp_worker(trainer, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    ckpt = torch.load(tmp_path / "ddp" / "weights" / "last.pt", map_location="cpu", weights_only=False)
    assert type((ckpt["ema"] or ckpt["model"]).model[9]).__name__ == "TripletAttention"


def test_ctrl_c_right_after_a_checkpoint_leaves_a_loadable_resumable_last_pt(shapes_data, tmp_path):
    epochs = 2
    code = ("from ultralytics import YOLO; YOLO('yolov5n-triplet.yaml').train("
            f"data={str(shapes_data)!r}, epochs={epochs}, imgsz={IMGSZ}, batch=8, workers=0, device='cpu', "
            f"project={str(tmp_path)!r}, name='int', plots=False)")
    p = run_python(code, tmp_path, **interrupt_at("checkpoint", 1))  # right after epoch 1's last.pt
    assert p.returncode != 0 and "KeyboardInterrupt" in p.stderr, "training went on after the interrupt\n" + p.stderr
    last = tmp_path / "int" / "weights" / "last.pt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and ckpt["optimizer"] is not None  # an unfinished, resumable checkpoint
    p = run_python(f"from ultralytics import YOLO; YOLO({str(last)!r}).train(resume=True)", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = (tmp_path / "int" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + epochs  # the header and every epoch, once

"""Processes that never import this package (DDP workers) and interrupted runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from helpers import IMGSZ, clean_env, press_ctrl_c, run_ddp_worker, run_python

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


def test_sigint_leaves_a_loadable_resumable_last_pt(shapes_data, tmp_path):
    epochs = 8  # room for a Ctrl-C that Python drops (see press_ctrl_c) and the one that follows
    code = ("from ultralytics import YOLO; YOLO('yolov5n-triplet.yaml').train("
            f"data={str(shapes_data)!r}, epochs={epochs}, imgsz={IMGSZ}, batch=8, workers=0, device='cpu', "
            f"project={str(tmp_path)!r}, name='int', plots=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "int" / "weights" / "last.pt"
    err = press_ctrl_c(proc, last)  # right after the first checkpoint is saved
    assert proc.returncode != 0, "training finished before the interrupt; the test proved nothing\n" + err[-3000:]
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["epoch"] < epochs - 1 and ckpt["optimizer"] is not None  # an unfinished, resumable checkpoint
    p = run_python(f"from ultralytics import YOLO; YOLO({str(last)!r}).train(resume=True)", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = (tmp_path / "int" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + epochs  # the header and every epoch

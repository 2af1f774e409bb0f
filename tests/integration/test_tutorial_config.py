"""The tutorial's own file, by its own name, through the `yolo` CLI in a process that never imports this package."""

from __future__ import annotations

import pytest
from helpers import IMGSZ, run, run_python, said, script

pytestmark = pytest.mark.compat


@pytest.mark.slow
def test_yolo_cli_trains_the_tutorials_yolov5s_for_one_epoch(shapes_data, tmp_path):
    cmd = [script("yolo"), "detect", "train", "model=yolov5s_TripletAttention.yaml", f"data={shapes_data}", "epochs=1",
           f"imgsz={IMGSZ}", "batch=8", "workers=0", "device=cpu", "plots=False", f"project={tmp_path}", "name=run"]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    last = tmp_path / "run" / "weights" / "last.pt"
    code = (f"from ultralytics import YOLO; m = YOLO({str(last)!r}).model; "
            "print('@@', type(m.model[5]).__name__, m.model[17].f, m.model[-1].f, m.yaml['scale'])")
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert said(p) == ["TripletAttention [-1, 5] [18, 21, 24] s"]

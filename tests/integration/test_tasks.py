"""Each non-detect task trains one tiny epoch through the `yolo` CLI with a named placement, and reloads elsewhere.

None of the subprocesses imports ultralytics_triplet: the installed start-up hook alone must make them work.
"""

from __future__ import annotations

import pytest
from helpers import IMGSZ, run, run_python, said, script

from ultralytics_triplet.data import make_shapes_dataset

pytestmark = [pytest.mark.slow, pytest.mark.newest_only]


TRAIN = f"epochs=1 imgsz={IMGSZ} batch=4 workers=0 device=cpu plots=False val=True seed=0"


CASES = {  # task -> a placement name of a stock config (one of each placement across the four)
    "segment": "yolo11n-seg-triplet.yaml",
    "pose": "yolov8n-pose-triplet-neck.yaml",
    "obb": "yolo11n-obb-triplet-dense.yaml",
    "classify": "yolo11n-cls-triplet.yaml",
}


@pytest.mark.parametrize("task", CASES)
def test_task_trains_one_epoch_through_the_cli_and_reloads(task, tmp_path):
    data = make_shapes_dataset(tmp_path / "data", n_train=12, n_val=6, imgsz=IMGSZ, task=task)
    cmd = [script("yolo"), task, "train", f"model={CASES[task]}", f"data={data}", f"project={tmp_path / 'runs'}",
           "name=run", *TRAIN.split()]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    best = tmp_path / "runs" / "run" / "weights" / "best.pt"
    assert best.is_file()
    image = next((data / "val" if task == "classify" else data.parent / "images" / "val").rglob("*.png"))
    code = (f"from ultralytics import YOLO; m = YOLO({str(best)!r}); r = m.predict({str(image)!r}, imgsz={IMGSZ},"
            " verbose=False); n = sum(type(l).__name__ == 'TripletAttention' for l in m.model.modules());"
            "print('@@', m.task, n, len(r))")
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    got_task, n_attention, n_results = said(p)[-1].split()
    assert got_task == task and int(n_attention) >= 1 and n_results == "1"

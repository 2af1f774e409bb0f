"""What a real training run leaves behind, as the study and the weight transfer read it (ultralytics internals)."""

from __future__ import annotations

import pytest
import torch
from helpers import IMGSZ
from ultralytics import YOLO

from ultralytics_triplet import _compat
from ultralytics_triplet.study.run import read_results_csv, train_seconds

pytestmark = [pytest.mark.compat, pytest.mark.slow]


@pytest.mark.parametrize("task", ["detect"])
def test_a_training_run_holds_the_metric_keys_columns_and_checkpoint_keys_the_study_reads(task, shapes_data,
                                                                                          tmp_path):
    model = YOLO("yolov5n-triplet.yaml")
    metrics = model.train(data=str(shapes_data), epochs=1, imgsz=IMGSZ, batch=8, workers=0, device="cpu",
                          plots=False, project=str(tmp_path), name="run", exist_ok=True, verbose=False)
    keys = list(_compat.METRIC_KEYS[task])
    assert set(keys) <= set(metrics.results_dict), sorted(metrics.results_dict)
    rows = read_results_csv(tmp_path / "run" / "results.csv")
    assert len(rows) == 1
    if _compat.version_tuple(_compat.ultralytics_version()) >= (8, 4):
        assert _compat.TIME_COLUMN in rows[0] and train_seconds(rows) > 0
    else:  # 8.3 writes no time column: the study falls back to the run's wall time
        assert _compat.TIME_COLUMN not in rows[0] and train_seconds(rows) is None
    ckpt = torch.load(tmp_path / "run" / "weights" / "last.pt", map_location="cpu", weights_only=False)
    assert set(_compat.CHECKPOINT_MODEL_KEYS) | set(_compat.CHECKPOINT_RESUME_KEYS) <= set(ckpt), sorted(ckpt)
    assert isinstance(_compat.checkpoint_model(ckpt), torch.nn.Module)

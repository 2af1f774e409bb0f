"""ultralytics' own tools after training, on a triplet model: tune, benchmark, val, predict and track.

Each runs as a user runs it: the Python API in this process (the package registered by the start-up hook) or the
`yolo` CLI in a fresh process that never imports this package.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import cv2
import pytest
from helpers import IMGSZ, run, script

pytestmark = [pytest.mark.slow]

TRAIN = dict(imgsz=IMGSZ, batch=8, workers=0, device="cpu", plots=False, exist_ok=True, verbose=False)


@pytest.fixture(scope="module")
def triplet_pt(shapes_data, tmp_path_factory):
    """A yolov5n-triplet checkpoint trained one epoch on the shapes."""
    from ultralytics import YOLO

    project = tmp_path_factory.mktemp("trained")
    YOLO("yolov5n-triplet.yaml").train(data=str(shapes_data), epochs=1, project=str(project), name="run", **TRAIN)
    return project / "run" / "weights" / "best.pt"


@pytest.fixture(scope="module")
def video(shapes_data, tmp_path_factory):
    """An 8-frame MJPG video of the validation images (what `track` reads)."""
    frames = sorted((shapes_data.parent / "images" / "val").iterdir())
    path = tmp_path_factory.mktemp("video") / "shapes.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (IMGSZ, IMGSZ))
    for f in frames:
        writer.write(cv2.imread(str(f)))
    writer.release()
    assert path.stat().st_size > 0
    return path


@pytest.mark.compat
def test_the_builtin_tuner_tunes_a_triplet_model(shapes_data, tmp_path, monkeypatch):
    from ultralytics import YOLO

    # 8.3's tuner trains each iteration in a `yolo train` subprocess found on PATH, as in an activated environment
    monkeypatch.setenv("PATH", os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", ""))))
    # no name and no exist_ok: the iterations must train in folders of their own (8.3 copies weights into the tune dir)
    YOLO("yolov5n-triplet.yaml").tune(data=str(shapes_data), iterations=2, epochs=1, project=str(tmp_path),
                                      **{**TRAIN, "exist_ok": False})
    tune_dir = tmp_path / "tune"
    results = sorted(tune_dir.glob("tune_results.*"))
    assert results, sorted(p.name for p in tune_dir.iterdir())
    if results[0].suffix == ".ndjson":  # 8.4: one JSON line per iteration
        fitness = [json.loads(line)["fitness"] for line in results[0].read_text().splitlines() if line.strip()]
    else:  # 8.3: a CSV whose first column is the fitness
        fitness = [float(line.split(",")[0]) for line in results[0].read_text().splitlines()[1:]]
    assert len(fitness) == 2 and all(math.isfinite(f) for f in fitness), fitness
    best = next(tune_dir.rglob("best.pt"))
    assert "TripletAttention" in {type(m).__name__ for m in YOLO(best).model.modules()}


@pytest.mark.newest_only
def test_ray_tune_tunes_a_triplet_model_in_its_worker_processes(shapes_data, tmp_path):
    """``tune(use_ray=True)``: each trial trains in a Ray worker, which the start-up hook registers like any process."""
    pytest.importorskip("ray.tune")
    from ultralytics import YOLO

    grid = YOLO("yolov5n-triplet.yaml").tune(
        use_ray=True, data=str(shapes_data), iterations=2, epochs=1, grace_period=1, gpu_per_trial=0,
        search_alg=None,  # Ray's own random search: ultralytics' default (optuna) is one more optional package
        project=str(tmp_path), name="raytune", **TRAIN)
    assert len(grid) == 2 and not grid.errors, grid.errors
    assert all("metrics/mAP50-95(B)" in result.metrics for result in grid)
    trials = sorted(tmp_path.glob("raytune_*/weights/last.pt"))
    assert len(trials) == 2
    for last in trials:  # what each worker trained
        assert "TripletAttention" in {type(m).__name__ for m in YOLO(last).model.modules()}


@pytest.mark.newest_only
@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "openvino"])
def test_ultralytics_benchmark_exports_and_validates_a_triplet_checkpoint(fmt, triplet_pt, shapes_data, tmp_path,
                                                                           monkeypatch):
    from ultralytics.utils.benchmarks import benchmark

    monkeypatch.chdir(tmp_path)  # benchmark writes its log in the working directory
    table = benchmark(model=str(triplet_pt), data=str(shapes_data), imgsz=IMGSZ, format=fmt, device="cpu")
    rows = table.to_dicts()
    assert [r["Format"] for r in rows][-1].lower().replace(" ", "") in {fmt, "torchscript", "onnx", "openvino"}
    row = rows[-1]
    assert row["Status❔"].startswith("✅"), row
    metric = next(v for k, v in row.items() if k.startswith("metrics/"))
    assert math.isfinite(float(metric)), row
    assert math.isfinite(float(row["Inference time (ms/im)"])), row


@pytest.mark.compat
def test_val_and_predict_on_a_triplet_checkpoint_through_python_and_the_cli(triplet_pt, shapes_data, tmp_path):
    from ultralytics import YOLO

    images = shapes_data.parent / "images" / "val"
    model = YOLO(triplet_pt)
    metrics = model.val(data=str(shapes_data), imgsz=IMGSZ, batch=8, device="cpu", plots=False, project=str(tmp_path),
                        name="val")
    assert math.isfinite(metrics.box.map)
    results = model.predict(str(images), imgsz=IMGSZ, device="cpu", verbose=False)
    assert len(results) == len(list(images.iterdir()))
    for mode, extra in (("val", [f"data={shapes_data}", "batch=8", "plots=False"]), ("predict", [f"source={images}"])):
        p = run([script("yolo"), "detect", mode, f"model={triplet_pt}", f"imgsz={IMGSZ}", "device=cpu",
                 f"project={tmp_path}", f"name=cli-{mode}", *extra], tmp_path)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert len(list((tmp_path / "cli-predict").iterdir())) == len(list(images.iterdir()))  # the annotated images


@pytest.mark.compat
def test_track_on_a_triplet_checkpoint_through_python_and_the_cli(triplet_pt, video, tmp_path):
    from ultralytics import YOLO

    results = YOLO(triplet_pt).track(str(video), imgsz=IMGSZ, device="cpu", conf=0.01, verbose=False)
    assert len(results) == 8
    assert all(r.boxes is not None for r in results)
    p = run([script("yolo"), "track", f"model={triplet_pt}", f"source={video}", f"imgsz={IMGSZ}", "device=cpu",
             "conf=0.01", f"project={tmp_path}", "name=cli-track"], tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert list((tmp_path / "cli-track").glob("shapes.*"))  # the annotated video

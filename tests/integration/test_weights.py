"""Pretrained weights in fresh processes: safe loading of a booby-trapped checkpoint, the CLI's refusal of another
family, and a trained base through the `yolo` CLI, a process that never imports this package, a DDP worker and resume.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from helpers import dense_cfg, needs_safe_load, run, run_python, said, script, trained_like

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("one_thread")]  # the machine is shared, models tiny


# -------------------------------------------------------------------------------------------------------- safe loading


@pytest.fixture
def booby_trapped(tmp_path) -> tuple[Path, Path]:
    """A .pt whose unpickling would write a file; returns (checkpoint, the file it would write)."""
    marker = tmp_path / "PAYLOAD_RAN"

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('x')",)

    path = tmp_path / "evil.pt"
    torch.save({"model": Payload(), "train_args": {}}, path)
    return path, marker


@needs_safe_load
def test_safe_load_refuses_a_booby_trapped_checkpoint_in_python(booby_trapped, tmp_path):
    path, marker = booby_trapped
    code = ("from ultralytics.nn.tasks import DetectionModel, yaml_model_load;"
            "from ultralytics_triplet import transfer_weights;"
            "m = DetectionModel(yaml_model_load('yolov5n-triplet.yaml'), verbose=False)\n"
            f"try:\n    transfer_weights(m, {str(path)!r})\nexcept ValueError as e:\n    print('@@', e)")
    p = run_python(code, tmp_path, ULTRALYTICS_SAFE_LOAD="1")
    assert p.returncode == 0, p.stderr[-3000:]
    assert not marker.exists()
    assert len(said(p)) == 1 and "evil.pt" in said(p)[0] and "not a readable checkpoint" in said(p)[0]


@needs_safe_load
def test_safe_load_refuses_a_booby_trapped_checkpoint_in_the_cli(booby_trapped, tmp_path):
    path, marker = booby_trapped
    out = tmp_path / "out.pt"
    p = run([script("ultralytics-triplet"), "transfer", str(path), "yolov5n-triplet.yaml", "-o", str(out)], tmp_path,
            ULTRALYTICS_SAFE_LOAD="1")
    assert p.returncode == 2
    errors = [x for x in p.stderr.splitlines() if x.startswith("ultralytics-triplet: error:")]
    assert len(errors) == 1 and "evil.pt" in errors[0] and "Traceback" not in p.stderr
    assert not marker.exists() and not out.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["evil.pt"]


# ------------------------------------------------------------------------------------------------------- the CLI route


def test_cli_refuses_another_family_unless_forced(tmp_path):
    source = trained_like("yolov8n.yaml")
    base = tmp_path / "yolov8n.pt"
    torch.save({"model": source.half(), "train_args": {}}, base)
    out = tmp_path / "out.pt"
    cmd = [script("ultralytics-triplet"), "transfer", str(base), "yolo11n-triplet.yaml", "-o", str(out)]
    p = run(cmd, tmp_path)
    assert p.returncode == 2 and not out.exists()
    errors = [x for x in p.stderr.splitlines() if x.startswith("ultralytics-triplet: error:")]
    assert len(errors) == 1 and re.search(r"only \d+/23 layers of yolov8n.pt aligned", errors[0]), p.stderr[-2000:]
    assert "--force" in errors[0]
    p = run([*cmd, "--force"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert out.exists()


# ---------------------------------------------------------------------- fresh processes that never import this package


BASE_IMGSZ = 64


# only the load and BN stats act
ZERO_LR = ("optimizer=SGD", "lr0=0", "lrf=1", "warmup_epochs=0", "warmup_bias_lr=0", "mosaic=0")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path, float]:
    """A plain yolov5n trained from scratch until it detects shapes: (best.pt, data.yaml, its val mAP50-95)."""
    import inspect

    import numpy as np
    import ultralytics.utils.metrics as metrics
    from ultralytics import YOLO

    if not hasattr(np, "trapz") and "np.trapz(" in inspect.getsource(metrics):
        pytest.skip(f"this ultralytics computes mAP with numpy.trapz, which numpy {np.__version__} no longer has")

    from ultralytics_triplet.data import make_shapes_dataset

    root = tmp_path_factory.mktemp("base")
    data = make_shapes_dataset(root / "shapes", n_train=256, n_val=16, imgsz=BASE_IMGSZ, seed=0)
    model = YOLO("yolov5n.yaml")
    model.train(data=str(data), epochs=60, imgsz=BASE_IMGSZ, batch=16, workers=0, device="cpu", seed=0,
                deterministic=True, plots=False, project=str(root), name="base", warmup_epochs=0, mosaic=0.0,
                verbose=False)
    best = Path(model.trainer.best)
    score = YOLO(best).val(data=str(data), imgsz=BASE_IMGSZ, batch=16, device="cpu", plots=False,
                           project=str(root), name="val").box.map
    assert score > 0.02, f"the base learned too little ({score:.3f}) to compare mAP against"
    return best, data, float(score)


def final_map(run_dir: Path) -> float:
    """The last epoch's val mAP50-95 from an ultralytics run's results.csv."""
    lines = (run_dir / "results.csv").read_text().strip().splitlines()
    header = [h.strip() for h in lines[0].split(",")]
    return float(lines[-1].split(",")[header.index("metrics/mAP50-95(B)")])


@pytest.mark.slow
def test_yolo_cli_pretrained_with_zero_lr_keeps_the_base_map_in_a_dense_model(base, tmp_path):
    from ultralytics_triplet.surgery import write_yaml

    best, data, score = base
    cfg = write_yaml(dense_cfg(), tmp_path / "yolov5n-dense.yaml")
    cmd = [script("yolo"), "detect", "train", f"model={cfg}", f"data={data}", f"pretrained={best}", "epochs=1",
           f"imgsz={BASE_IMGSZ}", "batch=16", "workers=0", "device=cpu", "plots=False", f"project={tmp_path}",
           "name=zero", *ZERO_LR]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout + p.stderr
    assert re.search(r"Transferred 4\d\d/571 items from pretrained weights \(layer-aligned: 25/25 source layers; "
                     r"8 inserted TripletAttention layers \([\d, ]+\) initialised to preserve", out), out[-3000:]
    assert final_map(tmp_path / "zero") >= 0.97 * score


@pytest.mark.slow
def test_load_in_a_fresh_process_keeps_the_base_detections(base, tmp_path):
    """``DetectionModel(dense).load(best.pt)`` in a process that never imports this package: same detections."""
    from ultralytics_triplet.surgery import write_yaml

    best, data, _ = base
    d = dense_cfg()
    d["nc"] = 3  # as the checkpoint: with another nc ultralytics' load rebuilds the class branch (any model)
    cfg = write_yaml(d, tmp_path / "yolov5n-dense.yaml")
    images = str(data.parent / "images" / "val")
    code = (
        "from ultralytics import YOLO\n"
        f"plain, dense = YOLO({str(best)!r}), YOLO({str(cfg)!r}).load({str(best)!r})\n"
        "dense.model.names = plain.model.names\n"
        f"a, b = ([r.boxes for r in m.predict({images!r}, imgsz={BASE_IMGSZ}, conf=0.1, verbose=False)] for m in "
        "(plain, dense))\n"
        # NMS orders boxes by confidence, and near-equal ones swap between the two models: compare them sorted
        "order = lambda x: sorted(range(len(x)), key=lambda i: (x.cls[i].item(), *x.xyxy[i].tolist()))\n"
        "a, b = ([x[order(x)] for x in boxes] for boxes in (a, b))\n"
        "same = all(x.cls.tolist() == y.cls.tolist() for x, y in zip(a, b))\n"
        "shift = max(float((x.xyxy - y.xyxy).abs().max()) for x, y in zip(a, b) if len(x) and len(x) == len(y))\n"
        "print('@@', sum(map(len, a)), sum(map(len, b)), same, shift)"
    )
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    n_plain, n_dense, same_classes, shift = said(p)[0].split()
    assert int(n_plain) > 0, "the base detects nothing: the comparison would prove nothing"
    assert n_plain == n_dense and same_classes == "True" and float(shift) < 2.0  # pixels, at 64 px


@pytest.mark.slow
def test_ddp_worker_script_loads_pretrained_weights_layer_aligned(base, tmp_path):
    """The script ultralytics writes for multi-GPU runs, started in a fresh interpreter, with pretrained= set."""
    from helpers import run_ddp_worker
    from ultralytics.models.yolo.detect import DetectionTrainer

    best, data, _ = base
    trainer = DetectionTrainer(overrides=dict(
        model="yolov5n-triplet.yaml", data=str(data), pretrained=str(best), epochs=1, imgsz=BASE_IMGSZ, batch=16,
        workers=0, device="cpu", project=str(tmp_path), name="ddp", plots=False, exist_ok=True))
    p = run_ddp_worker(trainer, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert re.search(r"Transferred 427/445 items from pretrained weights \(layer-aligned: 25/25 source layers; "
                     r"1 inserted TripletAttention layer \(9\) initialised", p.stdout + p.stderr), p.stderr[-3000:]


@pytest.mark.slow
def test_resume_of_a_pretrained_triplet_run_is_ultralytics_own(base, tmp_path):
    """A run started from pretrained weights and killed after its first epoch resumes from last.pt as usual."""
    best, data, _ = base
    code = (
        "import os; from ultralytics import YOLO; m = YOLO('yolov5n-triplet.yaml')\n"
        "m.add_callback('on_model_save', lambda t: os._exit(3) if t.epoch == 0 else None)\n"
        f"m.train(data={str(data)!r}, pretrained={str(best)!r}, epochs=2, imgsz={BASE_IMGSZ}, batch=16, workers=0,"
        f" device='cpu', plots=False, project={str(tmp_path)!r}, name='r')"
    )
    p = run_python(code, tmp_path)
    assert p.returncode == 3, p.stderr[-3000:]
    last = tmp_path / "r" / "weights" / "last.pt"
    p = run_python(f"from ultralytics import YOLO; YOLO({str(last)!r}).train(resume=True)", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout + p.stderr
    loaded = re.search(r"Transferred (\d+)/(\d+) items from pretrained weights(.*)", out)
    assert loaded and loaded.group(1) == loaded.group(2) and "layer-aligned" not in loaded.group(3), out[-3000:]
    assert len((tmp_path / "r" / "results.csv").read_text().strip().splitlines()) == 1 + 2

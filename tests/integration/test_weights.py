"""Pretrained weights in fresh processes: safe loading of a booby-trapped checkpoint, the CLI's refusal of another
family, and a trained base through the `yolo` CLI, a process that never imports this package, a DDP worker and resume.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import BASE_IMGSZ, dense_cfg, needs_safe_load, run, run_python, said, script, trained_like

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


# only the load and BN stats act
ZERO_LR = ("optimizer=SGD", "lr0=0", "lrf=1", "warmup_epochs=0", "warmup_bias_lr=0", "mosaic=0")


def final_map(run_dir: Path) -> float:
    """The last epoch's val mAP50-95 from an ultralytics run's results.csv."""
    lines = (run_dir / "results.csv").read_text().strip().splitlines()
    header = [h.strip() for h in lines[0].split(",")]
    return float(lines[-1].split(",")[header.index("metrics/mAP50-95(B)")])


# The pass-through start promises a start close to the base (docs/pretrained.md: the base's mAP kept), not the base's
# exact mAP: a box with near-tied class scores may swap class and one near the threshold may go, as the detections
# test below allows. The 16 val images hold about 11 objects per class, so one object lost moves mAP50-95 by up to
# about 1/33 of its maximum, some 5% of this base's; 0.9 allows two such losses, while the paper's initialisation keeps
# 0.16 of the base (docs/pretrained.md) and misaligned weights nothing.
KEPT_MAP = 0.9


@pytest.mark.slow
def test_yolo_cli_pretrained_with_zero_lr_keeps_the_base_map_in_a_dense_model(trained_base, tmp_path):
    from ultralytics_triplet.surgery import write_yaml

    best, data, score = trained_base
    cfg = write_yaml(dense_cfg(), tmp_path / "yolov5n-dense.yaml")
    cmd = [script("yolo"), "detect", "train", f"model={cfg}", f"data={data}", f"pretrained={best}", "epochs=1",
           f"imgsz={BASE_IMGSZ}", "batch=16", "workers=0", "device=cpu", "plots=False", f"project={tmp_path}",
           "name=zero", *ZERO_LR]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout + p.stderr
    assert re.search(r"Transferred 4\d\d/571 items from pretrained weights \(layer-aligned: 25/25 source layers; "
                     r"8 inserted TripletAttention layers \([\d, ]+\) initialised to preserve", out), out[-3000:]
    # measured: 1.002 of the base's mAP; the plain yolov5n through the same zero-lr epoch (BN statistics move) too
    assert final_map(tmp_path / "zero") >= KEPT_MAP * score


# What the pass-through start promises (docs/pretrained.md, README): every pretrained tensor lands unchanged in its own
# layer, and each inserted TripletAttention starts as the constant gate sigmoid(4) = 0.982, so the model "starts close
# to what your checkpoint computed". Exact where that is exact (tensors, gate parameters); for detections, close:
# confidences move by a few hundredths (at most 0.05, IoU of the same box at least 0.85, on one machine's base), so a
# box whose two best class scores nearly tie may swap class, one near the confidence threshold may appear or vanish,
# and NMS may order near-equal boxes either way. A box one model scores at least CONFIDENT, while both predict at
# PREDICT_CONF, is 0.15 of confidence away from vanishing in the other: three times the largest shift seen.
PREDICT_CONF, CONFIDENT, SAME_BOX_IOU = 0.1, 0.25, 0.5
FOUND = 0.9  # share of the confident boxes the other model finds (measured: all); below 1 for near-threshold boxes
SAME_CLASS = 0.9  # share of those found with their class (measured: all); below 1 for near-tied class scores


@pytest.mark.slow
def test_load_in_a_fresh_process_keeps_the_base_detections(trained_base, tmp_path):
    """``YOLO(dense).load(best.pt)`` in a process that never imports this package: every tensor of the checkpoint in
    its layer and pass-through gates (exact), and the same objects detected with the same classes (close)."""
    from ultralytics_triplet.surgery import write_yaml

    best, data, _ = trained_base
    d = dense_cfg()
    d["nc"] = 3  # as the checkpoint: with another nc ultralytics' load rebuilds the class branch (any model)
    cfg = write_yaml(d, tmp_path / "yolov5n-dense.yaml")
    images = str(data.parent / "images" / "val")
    code = textwrap.dedent(f"""
        import json

        import torch
        from torchvision.ops import box_iou
        from ultralytics import YOLO

        plain, dense = YOLO({str(best)!r}), YOLO({str(cfg)!r}).load({str(best)!r})
        dense.model.names = plain.model.names
        rows = list(dense.model.model)
        inserted = [i for i, m in enumerate(rows) if type(m).__name__ == "TripletAttention"]
        kept = [i for i in range(len(rows)) if i not in inserted]  # the dense row of each plain layer, in order
        types = [type(m).__name__ for m in plain.model.model] == [type(rows[i]).__name__ for i in kept]

        # exact: the checkpoint's float16 tensors, upcast, are the dense model's float32 ones, each in its own layer
        ckpt = torch.load({str(best)!r}, map_location="cpu", weights_only=False)
        source = (ckpt.get("ema") or ckpt["model"]).state_dict()
        target = dense.model.state_dict()

        def aligned(k):  # "model.<plain index>.rest" -> "model.<dense index>.rest"
            _, i, rest = k.split(".", 2)
            return f"model.{{kept[int(i)]}}.{{rest}}"

        moved = {{aligned(k): v for k, v in source.items()}}
        own = {{k for k in target if int(k.split(".")[1]) in kept}}
        keys = sorted(own ^ set(moved))
        changed = [k for k, v in moved.items() if k in target and not torch.equal(
            target[k].float() if v.is_floating_point() else target[k], v.float() if v.is_floating_point() else v)]

        # exact: each gate's BN scale 0 and shift 4, so every inserted row is the constant gate sigmoid(4)
        gates = [(i, g) for i in inserted for g in ("cw", "hc", "hw")]
        not_constant = [f"{{i}}.{{g}}" for i, g in gates if not (
            torch.all(getattr(rows[i], g).conv.bn.weight == 0) and torch.all(getattr(rows[i], g).conv.bn.bias == 4.0))]
        x = torch.randn(2, 16, 9, 11, generator=torch.Generator().manual_seed(0)) * 3
        with torch.no_grad():  # sigmoid(4)·x to float32 rounding (a few operations, each within an ulp)
            for i in inserted:
                torch.testing.assert_close(rows[i].eval()(x), x * torch.sigmoid(torch.tensor(4.0)), rtol=1e-6, atol=0)

        # close: the objects each model detects confidently, found by the other at IoU >= SAME_BOX_IOU, same class
        a, b = ([r.boxes for r in m.predict({images!r}, imgsz={BASE_IMGSZ}, conf={PREDICT_CONF}, verbose=False)]
                for m in (plain, dense))

        def found(ref, other):  # (confident boxes of ref, found by other, found with their class)
            n = hit = same = 0
            for p, q in zip(ref, other):
                p = p[p.conf >= {CONFIDENT}]
                n += len(p)
                if len(p) and len(q):
                    overlap = box_iou(p.xyxy, q.xyxy) >= {SAME_BOX_IOU}
                    hit += int(overlap.any(1).sum())
                    same += int((overlap & (p.cls[:, None] == q.cls[None, :])).any(1).sum())
            return n, hit, same

        print("@@", json.dumps(dict(inserted=inserted, types=types, keys=keys, changed=changed,
                                    not_constant=not_constant, plain=found(a, b), dense=found(b, a))))
    """)
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(said(p)[0])
    assert len(got["inserted"]) == 8 and got["types"], got
    assert got["keys"] == [] and got["changed"] == [], got  # every tensor, buffers included, as saved
    assert got["not_constant"] == [], got
    for side in ("plain", "dense"):
        n, hit, same = got[side]
        assert n > 0, f"the {side} model detects nothing confidently: the comparison would prove nothing"
        assert hit >= FOUND * n and same >= SAME_CLASS * hit, (side, got[side])


@pytest.mark.slow
def test_ddp_worker_script_loads_pretrained_weights_layer_aligned(trained_base, tmp_path):
    """The script ultralytics writes for multi-GPU runs, started in a fresh interpreter, with pretrained= set."""
    from helpers import run_ddp_worker
    from ultralytics.models.yolo.detect import DetectionTrainer

    best, data, _ = trained_base
    trainer = DetectionTrainer(overrides=dict(
        model="yolov5n-triplet.yaml", data=str(data), pretrained=str(best), epochs=1, imgsz=BASE_IMGSZ, batch=16,
        workers=0, device="cpu", project=str(tmp_path), name="ddp", plots=False, exist_ok=True))
    p = run_ddp_worker(trainer, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert re.search(r"Transferred 427/445 items from pretrained weights \(layer-aligned: 25/25 source layers; "
                     r"1 inserted TripletAttention layer \(9\) initialised", p.stdout + p.stderr), p.stderr[-3000:]


@pytest.mark.slow
def test_resume_of_a_pretrained_triplet_run_is_ultralytics_own(trained_base, tmp_path):
    """A run started from pretrained weights and killed after its first epoch resumes from last.pt as usual."""
    best, data, _ = trained_base
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

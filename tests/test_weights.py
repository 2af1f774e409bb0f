"""Pretrained weights into triplet models: layer-aligned loading through ultralytics' routes, the pass-through start,
ultralytics' own special cases, safe loading and bad input."""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import ultralytics.nn.tasks as tasks
from conftest import run, run_python, said, script
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.utils import LOGGER
from ultralytics_triplet import TripletAttention, insert_layers
from ultralytics_triplet.nn import PASS_THROUGH_BIAS
from ultralytics_triplet.weights import ENV_PASS_THROUGH, transfer_weights

pytestmark = pytest.mark.usefixtures("one_thread")  # the machine is shared and the models are tiny

GATE = torch.sigmoid(torch.tensor(PASS_THROUGH_BIAS)).item()  # what a pass-through TripletAttention multiplies by


@pytest.fixture
def logged():
    """Lines ultralytics' LOGGER emits during the test."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    LOGGER.addHandler(handler)
    yield lines
    LOGGER.removeHandler(handler)


def trained_like(cfg: str | dict = "yolov5n.yaml", nc: int = 3, seed: int = 0) -> DetectionModel:
    """A model whose every tensor (BN statistics included) differs from any initialisation, with class names."""
    torch.manual_seed(seed)
    model = DetectionModel(copy.deepcopy(cfg) if isinstance(cfg, dict) else yaml_model_load(cfg), nc=nc,
                           verbose=False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, t in model.state_dict().items():
            if k.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g) * 0.05)
    model.names = {i: f"class{i}" for i in range(nc)}
    return model.eval()


def gates(model: nn.Module) -> list[nn.Module]:
    """Every AttentionGate of every TripletAttention layer, in order."""
    return [g for m in model.modules() if isinstance(m, TripletAttention) for g in (m.cw, m.hc, getattr(m, "hw", None))
            if g is not None]


def is_pass_through(m: TripletAttention) -> bool:
    """Whether every gate of ``m`` has BN scale 0 and shift PASS_THROUGH_BIAS."""
    return all(torch.all(g.conv.bn.weight == 0) and torch.all(g.conv.bn.bias == PASS_THROUGH_BIAS) for g in gates(m))


def is_paper_init(m: TripletAttention) -> bool:
    """Whether every gate of ``m`` has BN's initial scale 1 and shift 0."""
    return all(torch.all(g.conv.bn.weight == 1) and torch.all(g.conv.bn.bias == 0) for g in gates(m))


def dense_cfg() -> dict:
    """yolov5n with TripletAttention after every C3 (backbone and neck): 8 inserted rows."""
    d = yaml_model_load("yolov5n.yaml")
    return insert_layers(d, after=[i for i, r in enumerate(d["backbone"] + d["head"]) if r[2] == "C3"])


# -------------------------------------------------------------------------------------------- the pass-through start


@pytest.mark.parametrize("no_spatial", [False, True])
def test_pass_through_start_scales_the_input_by_one_constant(no_spatial):
    m = TripletAttention(no_spatial=no_spatial)
    m.init_pass_through()
    x = torch.randn(2, 16, 9, 11) * 3
    for mode in (m.train, m.eval):
        mode()
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                torch.testing.assert_close(m(x), x * GATE, rtol=1e-6, atol=1e-6)


def test_pass_through_gates_still_learn():
    """The BN scale gets a gradient at once; the conv weights as soon as that scale has moved."""
    torch.manual_seed(0)
    m = TripletAttention()
    m.init_pass_through()
    x, w = torch.randn(2, 8, 10, 10), torch.randn(2, 8, 10, 10)
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    (m(x) * w).sum().backward()
    for g in gates(m):
        assert g.conv.bn.weight.grad.abs().sum() > 0
        assert torch.all(g.conv.conv.weight.grad == 0)  # scale 0: the conv does not reach the output yet
    opt.step()
    opt.zero_grad()
    assert all(torch.all(g.conv.bn.weight != 0) for g in gates(m))
    (m(x) * w).sum().backward()
    for g in gates(m):
        assert g.conv.conv.weight.grad.abs().sum() > 0


def test_training_from_scratch_keeps_the_paper_initialisation():
    model = DetectionModel(yaml_model_load("yolov5n-triplet-neck.yaml"), nc=3, verbose=False)
    layers = [m for m in model.modules() if isinstance(m, TripletAttention)]
    assert len(layers) == 3 and all(is_paper_init(m) for m in layers)


# ------------------------------------------------------------------------------------ BaseModel.load, layer-aligned


def test_load_puts_every_tensor_in_its_own_layer_and_says_so(logged):
    source = trained_like()
    model = DetectionModel(dense_cfg(), nc=3, verbose=False)
    model.load(source)
    inserted = [i for i, m in enumerate(model.model) if isinstance(m, TripletAttention)]
    assert len(inserted) == 8
    keep = [i for i in range(len(model.model)) if i not in inserted]
    for old, new in enumerate(keep):
        for k, v in source.model[old].state_dict().items():
            assert torch.equal(model.model[new].state_dict()[k], v), (old, k)
    assert all(is_pass_through(model.model[i]) for i in inserted)
    n = len(source.state_dict())
    line = next(x for x in logged if x.startswith("Transferred"))
    assert line.startswith(f"Transferred {n}/{len(model.state_dict())} items from pretrained weights (layer-aligned")
    assert f"8 inserted TripletAttention layers ({', '.join(map(str, inserted))}) initialised to preserve" in line


def test_load_into_a_dense_model_keeps_the_source_outputs():
    """Eight inserted layers that each start at sigmoid(4)·x: the detections stay close to the source's."""
    source = trained_like()
    model = DetectionModel(dense_cfg(), nc=3, verbose=False)
    model.load(source)
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        want, got = source(x)[0], model.eval()(x)[0]
        paper = DetectionModel(dense_cfg(), nc=3, verbose=False)
        paper.load(source, verbose=False)
        for m in paper.modules():
            if isinstance(m, TripletAttention):
                for g in gates(m):
                    g.conv.bn.reset_parameters()
        fresh = paper.eval()(x)[0]

    def err(y):  # boxes relative to the image size, class scores absolute
        return max(((y[:, :4] - want[:, :4]).abs() / 96).max().item(), (y[:, 4:] - want[:, 4:]).abs().max().item())

    assert err(got) < 0.1 * err(fresh)  # what the paper's start would have done to the same weights


def test_opt_out_keeps_the_paper_initialisation(monkeypatch, logged):
    monkeypatch.setenv(ENV_PASS_THROUGH, "0")
    model = DetectionModel(yaml_model_load("yolov5n-triplet.yaml"), nc=3, verbose=False)
    model.load(trained_like())
    assert is_paper_init(model.model[9])
    assert "1 inserted TripletAttention layer (9) kept its initial values" in next(
        x for x in logged if x.startswith("Transferred"))


def test_triplet_checkpoint_gates_are_copied_and_nothing_is_reinitialised():
    source = trained_like("yolov5n-triplet.yaml")  # its layer 9 is a trained TripletAttention
    target = DetectionModel(insert_layers("yolov5n-triplet.yaml", after=[13]), nc=3, verbose=False)
    report = transfer_weights(target, source)
    assert report.empty_layers == report.pass_through == [14]
    for k, v in source.model[9].state_dict().items():
        assert torch.equal(target.model[9].state_dict()[k], v), k
    same = DetectionModel(yaml_model_load("yolov5n-triplet.yaml"), nc=3, verbose=False)
    same.load(source)  # one for one: ultralytics' own load, nothing re-initialised
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), source.state_dict().values()))


@pytest.mark.parametrize("case", [{"nc": 5}, {"ch": 1}, {"nc": 5, "ch": 1}])
def test_load_keeps_ultralytics_own_special_cases(case):
    """Another class count or input channel count: the triplet model gets what ultralytics gives the plain one."""
    source = trained_like(nc=3)
    torch.manual_seed(0)  # layer 0 is built first in both models: the same fresh first conv where nothing is carried
    plain = DetectionModel(yaml_model_load("yolov5n.yaml"), verbose=False, **{"nc": 3, **case})
    plain.load({"model": source}, verbose=False)  # one for one: ultralytics' own load, whatever this release does
    torch.manual_seed(0)
    model = DetectionModel(yaml_model_load("yolov5n-triplet.yaml"), verbose=False, **{"nc": 3, **case})
    model.load({"model": source}, verbose=False)  # a checkpoint dict, as ultralytics accepts
    for want, got, src in ((plain.model[0], model.model[0], source.model[0]),
                           (plain.model[-1], model.model[-1], source.model[-1])):
        s = src.state_dict()
        for k, v in got.state_dict().items():
            w = want.state_dict()[k]
            assert v.shape == w.shape, k
            carried = k in s and s[k].shape == w.shape and torch.equal(w, s[k])
            assert carried == (k in s and s[k].shape == v.shape and torch.equal(v, s[k])), k
    if case.get("ch") == 1:  # the first conv is adapted the same way (summed RGB filters where ultralytics does)
        torch.testing.assert_close(model.model[0].conv.weight, plain.model[0].conv.weight)
    assert is_pass_through(model.model[9])


def test_another_family_warns_in_python(logged):
    source = trained_like("yolov8n.yaml")
    model = DetectionModel(yaml_model_load("yolo11n-triplet.yaml"), nc=3, verbose=False)
    with pytest.warns(UserWarning, match=r"only \d+/23 layers of the source aligned"):
        report = transfer_weights(model, source)
    assert report.unused_share > 0.5
    model.load(source)
    assert any(re.search(r"only \d+/23 layers of the pretrained weights aligned", x) for x in logged)


# -------------------------------------------------------------------------------------------------- safe loading


needs_safe_load = pytest.mark.skipif(not hasattr(tasks, "_SafeLoad"), reason="ULTRALYTICS_SAFE_LOAD arrived in 8.4")


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


# ------------------------------------------------------------------------------------------------- the CLI route


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


# ----------------------------------------------------------------------- fresh processes that never import this package

BASE_IMGSZ = 64
ZERO_LR = ("optimizer=SGD", "lr0=0", "lrf=1", "warmup_epochs=0", "warmup_bias_lr=0", "mosaic=0")  # only the load and BN stats act


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
    data = make_shapes_dataset(root / "shapes", n_train=64, n_val=16, imgsz=BASE_IMGSZ, seed=0)
    model = YOLO("yolov5n.yaml")
    model.train(data=str(data), epochs=40, imgsz=BASE_IMGSZ, batch=16, workers=0, device="cpu", seed=0,
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
    from ultralytics.models.yolo.detect import DetectionTrainer

    from conftest import run_ddp_worker

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

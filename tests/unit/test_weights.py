"""Pretrained weights into triplet models (``ultralytics_triplet.weights``): layer-aligned ``transfer_weights`` and
``BaseModel.load``, the pass-through start, and ultralytics' own special cases, in this process."""

from __future__ import annotations

import copy
import logging
import re

import pytest
import torch
from helpers import dense_cfg, trained_like
from helpers import run_model as run
from torch import nn
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.utils import LOGGER

from ultralytics_triplet import TripletAttention, insert_layers
from ultralytics_triplet.nn import PASS_THROUGH_BIAS
from ultralytics_triplet.surgery import insert_layers_with_rows
from ultralytics_triplet.weights import ENV_PASS_THROUGH, TransferReport, transfer_weights

# each test is marked compat or newest_only itself: this file holds both
pytestmark = pytest.mark.usefixtures("one_thread")  # the machine is shared and the models are tiny


GATE = torch.sigmoid(torch.tensor(PASS_THROUGH_BIAS)).item()  # what a pass-through TripletAttention multiplies by


TA_TENSORS = 18  # 3 gates x (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked)


@pytest.fixture
def logged():
    """Lines ultralytics' LOGGER emits during the test."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    LOGGER.addHandler(handler)
    yield lines
    LOGGER.removeHandler(handler)


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


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Perturb every floating parameter and buffer (BN stats included) so a missed copy shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, t in model.state_dict(keep_vars=True).items():
            if k.endswith("num_batches_tracked"):
                t.fill_(7)
            elif k.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g) * 0.05)
    return model


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    """Equal structure and allclose values (atol 1e-5)."""
    return len(a) == len(b) and all(x.shape == y.shape and torch.allclose(x, y, atol=1e-5) for x, y in zip(a, b))


def bypass(model: nn.Module, rows: list[int], monkeypatch) -> None:
    """Make the inserted layers identities."""
    for i in rows:
        assert isinstance(model.model[i], TripletAttention)
        monkeypatch.setattr(model.model[i], "forward", lambda x: x)


# ---------------------------------------------------------------------------------------------- the pass-through start


@pytest.mark.compat
@pytest.mark.parametrize("no_spatial", [False, True])
def test_pass_through_start_scales_the_input_by_one_constant(no_spatial):
    m = TripletAttention(no_spatial=no_spatial)
    m.init_pass_through()
    x = torch.randn(2, 16, 9, 11) * 3
    for mode in (m.train, m.eval):
        mode()
        for grad in (True, False):
            with torch.set_grad_enabled(grad):  # exact up to rounding: a few float32 roundings, each within an ulp
                torch.testing.assert_close(m(x), x * GATE, rtol=1e-6, atol=1e-6)


@pytest.mark.compat
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


@pytest.mark.compat
def test_training_from_scratch_keeps_the_paper_initialisation():
    model = DetectionModel(yaml_model_load("yolov5n-triplet-neck.yaml"), nc=3, verbose=False)
    layers = [m for m in model.modules() if isinstance(m, TripletAttention)]
    assert len(layers) == 3 and all(is_paper_init(m) for m in layers)


# --------------------------------------------------------------------------------------- BaseModel.load, layer-aligned


@pytest.mark.compat
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


@pytest.mark.compat
def test_load_into_a_dense_model_keeps_the_source_outputs():
    """Eight inserted layers that each start at sigmoid(4)·x: the detections stay close to the source's.

    "Close" as the pass-through start promises it (docs/pretrained.md): to first order the outputs move with 1 − gate,
    0.018 here against about 0.5 for the paper's initialisation, so the deviation is about 0.036 of the paper's
    (0.036-0.037 over four seeds of the source); 0.1 leaves room for higher-order terms. A property of the function,
    far above float32 rounding, so it holds on any CPU.
    """
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


@pytest.mark.compat
def test_opt_out_keeps_the_paper_initialisation(monkeypatch, logged):
    monkeypatch.setenv(ENV_PASS_THROUGH, "0")
    model = DetectionModel(yaml_model_load("yolov5n-triplet.yaml"), nc=3, verbose=False)
    model.load(trained_like())
    assert is_paper_init(model.model[9])
    assert "1 inserted TripletAttention layer (9) kept its initial values" in next(
        x for x in logged if x.startswith("Transferred"))


@pytest.mark.compat
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


@pytest.mark.compat
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


@pytest.mark.compat
def test_another_family_warns_in_python(logged):
    source = trained_like("yolov8n.yaml")
    model = DetectionModel(yaml_model_load("yolo11n-triplet.yaml"), nc=3, verbose=False)
    with pytest.warns(UserWarning, match=r"only \d+/23 layers of the source aligned"):
        report = transfer_weights(model, source)
    assert report.unused_share > 0.5
    model.load(source)
    assert any(re.search(r"only \d+/23 layers of the pretrained weights aligned", x) for x in logged)


# ---------------------------------------------------------------------------------------------------- transfer_weights


@pytest.mark.newest_only
@pytest.mark.parametrize(
    "name, after",
    [
        ("yolov5n.yaml", [2, 6, 9, 13, 17, 20]),
        ("yolov8n.yaml", [2, 4, 9, 12, 15, 18]),
        ("yolo11n.yaml", [4, 6, 10, 13, 16, 19]),
    ],
)
def test_transfer_then_bypass_reproduces_the_plain_model(name, after, monkeypatch):
    """Proof: with the inserted layers bypassed, the transferred model computes exactly what the source computes."""
    plain = randomize(DetectionModel(name, verbose=False), seed=1)
    d, rows = insert_layers_with_rows(name, after=after)
    model = DetectionModel(d, verbose=False)
    bypass(model, rows, monkeypatch)
    x = torch.rand(2, 3, 64, 64)
    want = run(plain, x)
    assert not same(run(model, x), want)  # the test can fail: untransferred weights differ

    report = transfer_weights(model, plain)

    assert same(run(model, x), want)
    assert report.empty_layers == rows
    assert report.skipped == 0
    assert report.missing == TA_TENSORS * len(rows)
    assert report.transferred == len(plain.state_dict())
    keep = [i for i in range(len(model.model)) if i not in rows]
    for old, new in enumerate(keep):  # every tensor, buffers included, landed in its own layer
        for k, v in plain.model[old].state_dict().items():
            assert torch.equal(model.model[new].state_dict()[k], v), (old, k)


@pytest.mark.newest_only
def test_transfer_from_layer_sequential_and_report_text():
    """A bare nn.Sequential of layers is a valid source; the report prints one readable line."""
    plain = randomize(DetectionModel("yolov8n.yaml", verbose=False))
    d, rows = insert_layers_with_rows("yolov8n.yaml", after=[9])
    report = transfer_weights(DetectionModel(d, verbose=False), plain.model)
    assert isinstance(report, TransferReport) and report.empty_layers == rows == [10]
    text = str(report)
    assert "\n" not in text and f"{report.transferred}/" in text and "10" in text and "received none" in text


@pytest.mark.newest_only
def test_transfer_skips_shape_mismatches_in_matched_layers():
    """A source with another class count fills everything except the class-specific head tensors."""
    src = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    model = DetectionModel(insert_layers("yolov8n.yaml", after=[4]), verbose=False)
    randomize(src)
    report = transfer_weights(model, src)
    assert report.skipped == report.missing - TA_TENSORS > 0 and report.empty_layers == [5]
    for k, v in src.model[-1].state_dict().items():  # only the class branch (cv3, width depends on nc) differs
        assert k.startswith("cv3.") or torch.equal(model.model[-1].state_dict()[k], v), k
    head = model.model[-1].state_dict()
    assert all(k.startswith("cv3.") for k, v in src.model[-1].state_dict().items() if v.shape != head[k].shape)
    assert torch.equal(model.model[4].state_dict()["cv1.conv.weight"], src.model[4].state_dict()["cv1.conv.weight"])


@pytest.mark.newest_only
def test_transfer_refuses_sources_without_matching_layers():
    """Nothing in common: a ValueError, not a silent no-op."""
    model = DetectionModel("yolov8n.yaml", verbose=False)
    with pytest.raises(ValueError, match="no source tensor fits"):
        transfer_weights(model, nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="no layer list"):
        transfer_weights(model, nn.Linear(2, 2))


@pytest.mark.newest_only
@pytest.mark.parametrize("entry", ["model", "ema"])
def test_transfer_from_half_precision_checkpoint_path(entry, tmp_path, monkeypatch):
    """A checkpoint saved as ultralytics saves it (fp16 module) loads from its path and is upcast to fp32."""
    plain = randomize(DetectionModel("yolov5n.yaml", verbose=False), seed=2).half().float()  # fp16-exact values
    ckpt = {"epoch": -1, "model": None, "ema": None, "optimizer": None, "train_args": {}}
    ckpt[entry] = copy.deepcopy(plain).half()
    path = tmp_path / "plain.pt"
    torch.save(ckpt, path)
    d, rows = insert_layers_with_rows("yolov5n.yaml", after=[4, 9, 17])
    model = DetectionModel(d, verbose=False)
    report = transfer_weights(model, str(path))
    assert next(model.parameters()).dtype == torch.float32
    assert report.empty_layers == rows and report.skipped == 0
    bypass(model, rows, monkeypatch)
    x = torch.rand(1, 3, 64, 64)
    assert same(run(model, x), run(plain, x))

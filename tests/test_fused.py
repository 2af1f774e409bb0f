"""The memory-lean autograd Functions behind TripletAttention.forward: exact gradients, same results as plain ops."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

from ultralytics_triplet import _fused
from ultralytics_triplet._fused import gate_conv, triplet_scale, zpool3
from ultralytics_triplet.nn import TripletAttention

from reference import pair


def _plain_zpool3(x: torch.Tensor, spatial: bool = True) -> tuple[torch.Tensor, ...]:
    """What zpool3 returns, in plain differentiable ops."""
    out = (x, torch.stack((x.amax(2), x.mean(2)), 1), torch.stack((x.amax(3), x.mean(3)), 1).transpose(2, 3))
    return (*out, torch.stack((x.amax(1), x.mean(1)), 1)) if spatial else out


@pytest.fixture(params=["one slice", "per sample"])
def slicing(request, monkeypatch):
    """Run the full-size loops over the whole batch at once, and one sample per slice."""
    if request.param == "per sample":
        monkeypatch.setattr(_fused, "_SLICE_BYTES", 1)
    return request.param


def _paired_ties(shape: tuple[int, ...], dim: int, seed: int = 0) -> torch.Tensor:
    """Distinct integers, then each line along ``dim`` gets its maximum copied onto a neighbour: 2-way ties.

    A copied value occupies two positions on one line of ``dim`` only, so no line along any axis holds a 3-way tie,
    and a central difference at such a tie sees slope 1/2 per position, as amax's even split gives.
    """
    g = torch.Generator().manual_seed(seed)
    n = torch.Size(shape).numel()
    x = torch.randperm(n, generator=g).double().view(shape)
    idx = x.argmax(dim, keepdim=True)
    x.scatter_(dim, (idx + 1) % shape[dim], x.gather(dim, idx))
    for d in (1, 2, 3):
        assert (x == x.amax(d, keepdim=True)).sum(d).max() <= 2
    assert (x == x.amax(dim, keepdim=True)).sum(dim).min() == 2
    return x


@pytest.mark.parametrize("spatial, channels_last", [(True, False), (False, False), (True, True)])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 1, 3), (1, 1, 3, 1)])
def test_zpool3_gradcheck(shape, spatial, channels_last, slicing):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: zpool3(t, spatial, channels_last), (x,))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_zpool3_gradcheck_with_ties(dim):
    x = _paired_ties((2, 3, 4, 5), dim).requires_grad_()
    assert gradcheck(lambda t: zpool3(t, True), (x,))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_zpool3_matches_amax_autograd_with_many_ties(layout):
    x = torch.randint(0, 3, (2, 5, 6, 7)).float()  # many-way ties everywhere: gradient split as torch.amax does
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.randint(0, 3, (2, 5, 7, 12)).float()[..., ::2].transpose(2, 3)
    xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    ws = [torch.randn(p.shape) for p in _plain_zpool3(x)]
    outs, refs = zpool3(xo), _plain_zpool3(xr)
    for o, r in zip(outs, refs):
        torch.testing.assert_close(o, r, rtol=0, atol=0)
    sum((o * w).sum() for o, w in zip(outs, ws)).backward()
    sum((r * w).sum() for r, w in zip(refs, ws)).backward()
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spatial", [True, False])
def test_triplet_scale_gradcheck(spatial, slicing):
    kw = {"dtype": torch.float64, "requires_grad": True}
    x, a, b = torch.randn(2, 3, 4, 5, **kw), torch.rand(2, 3, 1, 5, **kw), torch.rand(2, 3, 4, 1, **kw)
    c = torch.rand(2, 1, 4, 5, **kw) if spatial else None
    assert gradcheck(lambda x, a, b, c: triplet_scale(x, a, b, c, 1 / 3), (x, a, b, c))


def test_triplet_scale_with_permuted_gate_views():
    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    g_hc = torch.rand(2, 1, 4, 3, requires_grad=True)  # as the hc gate comes out of its conv: (B, 1, H, C)
    a, c = torch.rand(2, 3, 1, 5), torch.rand(2, 1, 4, 5)
    y = triplet_scale(x, a, g_hc.permute(0, 3, 2, 1), c, 0.5)
    torch.testing.assert_close(y, x * (a + g_hc.permute(0, 3, 2, 1) + c) * 0.5)
    y.sum().backward()
    torch.testing.assert_close(g_hc.grad, (x.detach() * 0.5).sum(3, keepdim=True).permute(0, 3, 2, 1))


@pytest.mark.parametrize("no_spatial", [False, True])
@pytest.mark.parametrize(
    "shape, layout",
    [
        ((2, 8, 10, 12), "contiguous"),
        ((1, 3, 7, 5), "contiguous"),  # odd sides
        ((3, 1, 9, 9), "contiguous"),  # one channel
        ((2, 5, 1, 6), "contiguous"),  # one row
        ((2, 6, 8, 10), "channels_last"),
        ((2, 6, 8, 10), "strided"),
    ],
)
def test_module_gradients_and_bn_stats_match_reference(shape, layout, no_spatial, slicing):
    ref, ours = pair(no_spatial, seed=1)
    x = torch.randn(shape)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.randn(shape[0], shape[1], shape[3], 2 * shape[2])[..., ::2].transpose(2, 3)
    xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = torch.randn(shape)
    yr, yo = ref(xr), ours(xo)
    torch.testing.assert_close(yo, yr, rtol=1e-5, atol=1e-6)
    (yr * w).sum().backward()
    (yo * w).sum().backward()
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-4, atol=1e-4)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[name].grad, rtol=1e-4, atol=1e-4, msg=name)
    ref_buffers = dict(ref.named_buffers())
    for name, b in ours.named_buffers():  # num_batches_tracked exactly, running stats to float32 rounding
        torch.testing.assert_close(b, ref_buffers[name], rtol=1e-6, atol=1e-7, msg=name)


def test_module_ties_split_like_amax(slicing):
    ref, ours = pair(seed=2)
    x = torch.randint(0, 3, (2, 4, 6, 5)).float()
    xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = torch.randn(x.shape)
    (ref(xr) * w).sum().backward()
    (ours(xo) * w).sum().backward()
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("no_spatial", [False, True])
def test_eval_mode_matches_reference_and_plain_gates(no_spatial):
    ref, ours = pair(no_spatial, seed=3)
    ref.eval(), ours.eval()
    x = torch.randn(2, 7, 9, 11)
    with torch.no_grad():
        y = ours(x)
        torch.testing.assert_close(y, ref(x), rtol=1e-5, atol=1e-6)
        g = ours.gates(x)  # the public, plain gates give the same result
        torch.testing.assert_close(y, x * sum(g.values()) / len(g), rtol=1e-5, atol=1e-6)


def test_pooling_gradient_is_added_in_place_only_into_the_products_own_buffer():
    kw = {"dtype": torch.float64, "requires_grad": True}
    x, a, b, c = torch.randn(2, 3, 4, 5, **kw), torch.rand(2, 3, 1, 5, **kw), torch.rand(2, 3, 4, 1), None
    w = [torch.randn(s) for s in ((2, 2, 3, 5), (2, 2, 4, 3))]

    def f(x, a, extra_use):
        handoff = []
        xa, p_cw, p_hc = zpool3(x, False, False, handoff)
        y = triplet_scale(xa, a, b, c, 0.5, handoff)
        out = (y * y).sum() + (p_cw * w[0]).sum() + (p_hc * w[1]).sum()
        return out + (xa * 3).sum() if extra_use else out  # a second consumer of the alias: its gradient adds up

    for extra_use in (False, True):
        assert gradcheck(lambda x, a: f(x, a, extra_use), (x, a))


def test_triplet_scale_wants_gates_with_the_batch_of_x():
    with pytest.raises(ValueError, match="batch size 2"):
        triplet_scale(torch.randn(2, 3, 4, 5), torch.rand(1, 3, 1, 5), torch.rand(2, 3, 4, 1))


@pytest.mark.parametrize("k", [3, 7])
@pytest.mark.parametrize("shape", [(64, 2, 64, 9), (64, 2, 9, 64), (3, 2, 30, 30), (4, 2, 200, 48), (2, 2, 5, 1)])
def test_gate_conv_equals_conv2d(shape, k):
    p, w, b = torch.randn(shape), torch.randn(1, 2, k, k), torch.randn(1)
    torch.testing.assert_close(gate_conv(p, w), nn.functional.conv2d(p, w, padding=k // 2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gate_conv(p, w, b), nn.functional.conv2d(p, w, b, padding=k // 2), rtol=1e-5, atol=1e-5)


def test_eval_on_long_thin_maps_matches_reference():
    ref, ours = pair(seed=4)
    ref.eval(), ours.eval()
    x = torch.randn(32, 200, 6, 8)  # pooled maps (200, 8) and (6, 200): the GEMM conv path
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_backward_keeps_no_full_size_tensor_but_the_input():
    ours = TripletAttention()
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = ours(x)
    big = {t.untyped_storage().data_ptr() for t in saved if t.numel() >= x.numel()}
    assert big == {x.untyped_storage().data_ptr()}
    y.sum().backward()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace/script are deprecated, still supported
def test_plain_formulation_under_trace_script_and_onnx(monkeypatch):
    ours = TripletAttention().eval()
    x = torch.randn(1, 4, 6, 8)
    with torch.no_grad():
        eager = ours(x)
        traced = torch.jit.trace(ours, x)
        assert "PythonOp" not in str(traced.graph)  # the custom Functions were not recorded
        torch.testing.assert_close(traced(x), eager, rtol=1e-5, atol=1e-6)
        scripted = torch.jit.script(ours)
        torch.testing.assert_close(scripted(x), eager, rtol=1e-5, atol=1e-6)
        calls = []
        monkeypatch.setattr(_fused, "_ZPool3", _spy(_fused._ZPool3, calls))
        f = io.BytesIO()
        torch.onnx.export(ours, (x,), f, dynamo=False, opset_version=17)
        assert not calls  # the exporter saw the plain ops
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), eager, rtol=1e-4, atol=1e-5)


def _spy(fn_cls, calls):
    """A stand-in for an autograd Function class that records each ``apply``."""

    class Spy:
        @staticmethod
        def apply(*args):
            calls.append(args)
            return fn_cls.apply(*args)

    return Spy

"""The kernels of the eager formulations (``ultralytics_triplet._fused``): the memory-lean autograd Functions behind
the ``fused`` formulation (exact gradients, the same results as plain ops) and their no-autograd twins.

Which formulation runs where, and that each computes what the plain one does, is tested in ``test_formulation.py``.
"""

from __future__ import annotations

import pytest
import torch
from helpers import pair
from torch.autograd import gradcheck, gradgradcheck

from ultralytics_triplet import _fused
from ultralytics_triplet._fused import gate_product, triplet_scale, zpool3, zpool_maps
from ultralytics_triplet.nn import TripletAttention

pytestmark = pytest.mark.newest_only


# ---------------------------------------------------------------------------------------------- the autograd Functions


def _plain_zpool3(x: torch.Tensor, spatial: bool = True) -> tuple[torch.Tensor, ...]:
    """What zpool3 returns, in plain differentiable ops."""
    out = (x, torch.stack((x.amax(2), x.mean(2)), 1), torch.stack((x.amax(3), x.mean(3)), 1).transpose(2, 3))
    return (*out, torch.stack((x.amax(1), x.mean(1)), 1)) if spatial else out


def sums_agree(got: torch.Tensor, want: torch.Tensor, n: int, magnitude: torch.Tensor) -> None:
    """Two float32 computations of the same sums, in different orders, agree to float32 rounding.

    A sum whose every term meets at most ``n`` roundings (its own, then one per addition) is within γ_n·Σ|terms| of the
    exact value, γ_n = n·u / (1 − n·u), u = eps / 2, in any summation order (Higham, Accuracy and Stability of
    Numerical Algorithms, 3.1), so two of them differ by at most 2γ_n·Σ|terms|; ``magnitude`` is Σ|terms| per entry.
    """
    u = torch.finfo(torch.float32).eps / 2
    bound = 2 * n * u / (1 - n * u) * magnitude
    excess = (got - want).abs() - bound
    assert (excess <= 0).all(), f"{int((excess > 0).sum())} entries past float32 summation error, by {excess.max()}"


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


@pytest.mark.parametrize("spatial", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 1, 3), (1, 1, 3, 1), (1, 1, 33, 32)])  # the last: > 32x32
def test_zpool3_gradcheck(shape, spatial, slicing):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: zpool3(t, spatial), (x,))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_zpool3_gradcheck_with_ties(dim):
    x = _paired_ties((2, 3, 4, 5), dim).requires_grad_()
    assert gradcheck(lambda t: zpool3(t, True), (x,))


@pytest.mark.parametrize("side", [6, 40])  # both ways zpool_maps pools: from a channels-last copy, and directly
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_zpool3_matches_amax_autograd_with_many_ties(layout, side):
    x = torch.randint(0, 3, (2, 5, side, side + 1)).float()  # many-way ties everywhere: split as torch.amax does
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.randint(0, 3, (2, 5, side + 1, 2 * side)).float()[..., ::2].transpose(2, 3)
    xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    ws = [torch.randn(p.shape) for p in _plain_zpool3(x)]
    outs, refs = zpool3(xo), _plain_zpool3(xr)
    for o, r in zip(outs, refs):
        torch.testing.assert_close(o, r, rtol=0, atol=0)
    sum((o * w).sum() for o, w in zip(outs, ws)).backward()
    sum((r * w).sum() for r, w in zip(refs, ws)).backward()
    # An entry's gradient adds seven terms (x's own, the max and mean of three pooled maps), each rounded at most twice
    # (a share of w, a 1/n) before six additions: float32 rounding relative to Σ|terms|, which |w| backpropagates.
    xm = x.clone().requires_grad_()
    (magnitude,) = torch.autograd.grad(sum((r * w.abs()).sum() for r, w in zip(_plain_zpool3(xm), ws)), xm)
    sums_agree(xo.grad, xr.grad, 8, magnitude)


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
        xa, p_cw, p_hc = zpool3(x, False, handoff)
        y = triplet_scale(xa, a, b, c, 0.5, handoff)
        out = (y * y).sum() + (p_cw * w[0]).sum() + (p_hc * w[1]).sum()
        return out + (xa * 3).sum() if extra_use else out  # a second consumer of the alias: its gradient adds up

    for extra_use in (False, True):
        assert gradcheck(lambda x, a: f(x, a, extra_use), (x, a))  # noqa: B023


def test_triplet_scale_wants_gates_with_the_batch_of_x():
    with pytest.raises(ValueError, match="batch size 2"):
        triplet_scale(torch.randn(2, 3, 4, 5), torch.rand(1, 3, 1, 5), torch.rand(2, 3, 4, 1))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 8, 40, 36), (1, 16, 1, 7), (3, 1, 33, 31)])  # pooled 2 ways
def test_the_kernels_without_autograd_compute_the_plain_ops(shape, layout):
    x = torch.randn(shape).contiguous(memory_format=getattr(torch, layout.replace("contiguous", "contiguous_format")))
    for spatial in (True, False):
        for got, want in zip(zpool_maps(x, spatial), _plain_zpool3(x, spatial)[1:]):
            torch.testing.assert_close(got[:, 0], want[:, 0], rtol=0, atol=0)  # maxima: exact
            torch.testing.assert_close(got[:, 1], want[:, 1], rtol=1e-5, atol=1e-6)  # means: summed in another order
    a, b, c = torch.rand(shape[0], shape[1], 1, shape[3]), torch.rand(shape[0], shape[1], shape[2], 1), None
    for c in (None, torch.rand(shape[0], 1, *shape[2:])):
        y = gate_product(x, a, b, c, 0.5)
        assert y.stride() == x.stride()  # laid out as x is
        torch.testing.assert_close(y, x * (a + b + (0 if c is None else c)) * 0.5, rtol=1e-6, atol=1e-6)


def test_the_fused_formulation_keeps_no_full_size_tensor_but_the_input_for_backward():
    ours = TripletAttention()
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = ours.forward_fused(x)
    big = {t.untyped_storage().data_ptr() for t in saved if t.numel() >= x.numel()}
    assert big == {x.untyped_storage().data_ptr()}
    y.sum().backward()


def test_functions_second_derivatives():
    kw = {"dtype": torch.float64, "requires_grad": True}
    x = torch.randperm(24, dtype=torch.float64).view(1, 2, 3, 4).div(7).requires_grad_()  # no ties
    assert gradgradcheck(lambda t: zpool3(t, True)[1:], (x,))
    x, a, b, c = torch.randn(1, 2, 3, 4, **kw), torch.rand(1, 2, 1, 4, **kw), torch.rand(1, 2, 3, 1, **kw), None
    assert gradgradcheck(lambda x, a, b: triplet_scale(x, a, b, c, 0.5), (x, a, b))
    assert gradcheck(lambda x, a, b: triplet_scale(x, a, b, c, 0.5), (x, a, b))

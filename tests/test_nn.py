"""TripletAttention against the plain permute-based reference (``reference.py``), written from the paper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ultralytics_triplet import TripletAttention

from reference import pair

SHAPES = [(2, 8, 10, 12), (1, 3, 7, 5), (3, 1, 9, 9), (2, 16, 1, 6)]


def test_has_300_parameters_at_any_width():
    for c in (3, 64, 1024):
        assert sum(p.numel() for p in TripletAttention(c).parameters()) == 300
    assert sum(p.numel() for p in TripletAttention(no_spatial=True).parameters()) == 200
    assert sum(p.numel() for p in TripletAttention(kernel_size=3).parameters()) == 3 * (2 * 9 + 2)


def test_state_dict_keys_are_the_official_ones():
    keys = set(TripletAttention().state_dict())
    expected = {f"{g}.conv.{p}" for g in ("cw", "hc", "hw") for p in (
        "conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked")}
    assert keys == expected


@pytest.mark.parametrize("no_spatial", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("train", [False, True])
def test_forward_matches_reference(shape, no_spatial, train):
    ref, ours = pair(no_spatial)
    ref.train(train), ours.train(train)
    x = torch.randn(shape)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("no_spatial", [False, True])
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_gradients_and_bn_stats_match_reference(shape, no_spatial):
    ref, ours = pair(no_spatial, seed=1)
    x = torch.randn(shape)
    xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = torch.randn(shape)
    (ref(xr) * w).sum().backward()
    (ours(xo) * w).sum().backward()
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-4, atol=1e-5)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[name].grad, rtol=1e-4, atol=1e-5, msg=name)
    ref_buffers = dict(ref.named_buffers())
    for name, b in ours.named_buffers():
        torch.testing.assert_close(b, ref_buffers[name], msg=name)


def test_kernel_size_3_matches_reference():
    ref, ours = pair(k=3)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


def test_channels_last_and_non_contiguous_inputs():
    ref, ours = pair()
    ref.eval(), ours.eval()
    x = torch.randn(2, 6, 8, 10)
    torch.testing.assert_close(ours(x.to(memory_format=torch.channels_last)), ref(x), rtol=1e-5, atol=1e-6)
    xt = torch.randn(2, 6, 10, 8).transpose(2, 3)
    torch.testing.assert_close(ours(xt), ref(xt.contiguous()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_close_to_float32(dtype):
    _, ours = pair()
    ours.eval()
    x = torch.randn(2, 8, 12, 12)
    try:
        low = ours.to(dtype)(x.to(dtype))
    except RuntimeError as e:  # an op without a CPU kernel for this dtype on this build
        pytest.skip(f"{dtype} unsupported on this CPU build: {e}")
    exact = ours.float()(x)
    assert low.dtype == dtype
    torch.testing.assert_close(low.float(), exact, rtol=0.05, atol=0.05)


def test_keeps_paper_batchnorm_constants_inside_ultralytics_models():
    from ultralytics.utils.torch_utils import initialize_weights

    m = nn.Sequential(nn.BatchNorm2d(4), TripletAttention())
    initialize_weights(m)
    assert (m[0].eps, m[0].momentum) == (1e-3, 0.03)  # ultralytics' own BN is reset ...
    for gate in (m[1].cw, m[1].hc, m[1].hw):  # ... the gates keep the paper's values
        assert (gate.conv.bn.eps, gate.conv.bn.momentum) == (1e-5, 0.01)


def test_channel_count_is_recorded_not_used():
    m = TripletAttention(1024)
    assert m.c1 == 1024 and not m.no_spatial and hasattr(m, "hw")
    assert m(torch.randn(1, 5, 4, 4)).shape == (1, 5, 4, 4)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "64"])
def test_rejects_a_non_channel_first_argument(bad):
    # A bool first argument is no_spatial (the official signature; tests/test_conventions.py); nothing else is.
    with pytest.raises(TypeError, match="c1"):
        TripletAttention(bad)


@pytest.mark.parametrize("k", [0, 4, 7.0])
def test_rejects_bad_kernel_size(k):
    with pytest.raises(ValueError, match="kernel_size"):
        TripletAttention(kernel_size=k)

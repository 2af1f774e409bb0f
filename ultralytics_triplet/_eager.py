"""TripletAttention's eager CPU formulations: ``small``, ``fused`` and ``no_grad`` (see ``formulation.FORMULATIONS``).

Each is a function of the module and its input, run by the class's ``forward_<name>`` method, and computes what
``forward_plain`` does: the tests compare them on the same inputs and weights. They run on plain float32/float64 CPU
tensors with nothing hooked below the module (``TripletAttention.formulation``). The full-size steps, Z-pooling and
scaling, are the kernels of ``_fused.py``; each gate's 2 -> 1 convolution runs in the layout oneDNN runs fastest
(:func:`gate`), calling the gate's BatchNorm module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._fused import gate_product, triplet_scale, zpool3, zpool_last, zpool_maps

__all__ = ("fused", "gate", "no_grad", "small")


def gate(module: torch.nn.Module, pooled: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """``module(pooled)`` for an ``AttentionGate`` and a (B, 2, R, S) map, its convolution in oneDNN's fastest layout.

    oneDNN runs this 2 -> 1 channel convolution far slower on a tall map (R > S) than on its transpose, so a tall map
    is convolved transposed with the kernel transposed (a "same" convolution commutes with transposing both), and the
    gate transposed back. With gradients on, the map is laid out channels-last, where oneDNN's backward is faster.
    With ``transposed``, ``pooled`` is the transpose of the map the gate's weights are for, and so is the result.
    """
    weight = module.conv.conv.weight.transpose(2, 3) if transposed else module.conv.conv.weight
    tall = pooled.shape[2] > pooled.shape[3]
    if tall:
        pooled, weight = pooled.transpose(2, 3), weight.transpose(2, 3)
    grad = torch.is_grad_enabled() and (pooled.requires_grad or weight.requires_grad)
    pooled = pooled.contiguous(memory_format=torch.channels_last if grad else torch.contiguous_format)
    out = module.conv.bn(F.conv2d(pooled, weight, padding=weight.shape[-1] // 2)).sigmoid()
    return out.transpose(2, 3) if tall else out


def _is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is laid out channels-last (and not also contiguous, as a map with C = 1 or H = W = 1 is)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def fused(m, x: torch.Tensor) -> torch.Tensor:
    """Larger maps with gradients: Z-pooling and scaling as memory-lean autograd Functions (``zpool3``,
    ``triplet_scale``), which keep only ``x`` and pooled-size tensors for backward."""
    handoff = []  # lets the pooling's backward add into the product's fresh input-gradient buffer
    x, *pooled = zpool3(x, not m.no_spatial, handoff)
    g_cw = gate(m.cw, pooled[0]).transpose(1, 2)  # (B,1,C,W) -> (B,C,1,W)
    g_hc = gate(m.hc, pooled[1]).permute(0, 3, 2, 1)  # (B,1,H,C) -> (B,C,H,1)
    g_hw = None if m.no_spatial else gate(m.hw, pooled[2])  # (B,1,H,W)
    return triplet_scale(x, g_cw, g_hc, g_hw, 1 / len(pooled), handoff)


def no_grad(m, x: torch.Tensor) -> torch.Tensor:
    """Larger maps without gradients: the pooling (``zpool_maps``) and the scaling (``gate_product``, in cache-sized
    slices) as direct kernels."""
    pooled = zpool_maps(x, not m.no_spatial)
    g_cw = gate(m.cw, pooled[0]).transpose(1, 2)  # (B,1,C,W) -> (B,C,1,W)
    g_hc = gate(m.hc, pooled[1]).permute(0, 3, 2, 1)  # (B,1,H,C) -> (B,C,H,1)
    g_hw = None if m.no_spatial else gate(m.hw, pooled[2])  # (B,1,H,W)
    return gate_product(x, g_cw, g_hc, g_hw, 1 / len(pooled))


def small(m, x: torch.Tensor) -> torch.Tensor:
    """Small maps, where each kernel call costs more than its arithmetic: plain tensor ops on one channels-last copy of
    ``x``, in which every Z-pool reduces an outer axis and each gate comes out laid out for broadcasting against it;
    the product is put back in ``x``'s memory layout."""
    b, c, h, w = x.shape
    x_last = x.permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)
    s = 1 / (2 if m.no_spatial else 3)
    g_cw = gate(m.cw, zpool_last(x_last, 1), transposed=True)  # over H: the (W, C) map; (B,1,W,C)
    g_hc = gate(m.hc, zpool_last(x_last, 2))  # over W: the (H, C) map; (B,1,H,C)
    scale = g_cw * s + (g_hc * s).reshape(b, h, 1, c)
    if not m.no_spatial:
        scale = scale + (gate(m.hw, zpool_last(x_last, 3)) * s).reshape(b, h, w, 1)  # (B,1,H,W) -> (B,H,W,1)
    y = (x_last * scale).permute(0, 3, 1, 2)
    return y.contiguous(memory_format=torch.channels_last if _is_channels_last(x) else torch.contiguous_format)

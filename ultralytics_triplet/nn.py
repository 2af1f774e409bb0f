"""Triplet Attention, the paper in code.

Misra, Nalamada, Arasanipalai, Hou. "Rotate to Attend: Convolutional Triplet Attention Module", WACV 2021.
https://arxiv.org/abs/2010.03045

Three gates look at a feature map ``x`` of shape (B, C, H, W) from three sides. Each gate rotates ``x`` so that
one axis becomes the "channel" axis, Z-pools that axis away (max and mean, concatenated in that order), runs a
k×k conv (2 → 1, no bias), BatchNorm and a sigmoid, and scales ``x`` by the result:

    cw:  C–W interaction, pooled over H   ->  gate g_cw of shape (B, C, 1, W)
    hc:  H–C interaction, pooled over W   ->  gate g_hc of shape (B, C, H, 1)
    hw:  H–W (spatial), pooled over C     ->  gate g_hw of shape (B, 1, H, W)

    y = (x·g_cw + x·g_hc + x·g_hw) / 3        (the first two, / 2, when ``no_spatial``)

Each gate holds 2·k² conv weights and 2 BN affine parameters: 300 parameters at k=7 for any channel count.

The fast path: a rotated gate only needs ``x`` pooled along one axis, which is a small tensor, and its output is
``x`` times a broadcast gate. So no full-size permuted copy of ``x`` is ever made; the pooled maps are laid out the
way the official implementation's rotated tensors are, so its weights load unchanged (strict state-dict keys).
Eager float32/float64 on CPU also runs the two full-size steps (pool, scale) as custom autograd Functions
(``_fused.py``) that keep only ``x`` and pooled-size tensors for backward, and a long thin gate's conv as one GEMM
when no gradient is needed. It runs only where tests show it equals the plain formulation (``gates()`` and the
plain branch of ``forward``), which runs everywhere else: autocast, other devices and dtypes, scripting, tracing,
``torch.fx``, ``torch.func``, ``torch.compile``/export, dispatch modes; ``create_graph`` backward differentiates it.
Hooks: the fast path skips calling the gates' submodules, so it steps aside whenever any submodule (or the global
registry) has a hook; profilers such as thop and ultralytics' GFLOPs then see every conv, on the plain path.
"""

from __future__ import annotations

import torch
from torch import nn

from ._fused import _autocast, gate_conv, hooked, triplet_scale, use_fused, zpool3

__all__ = ("AttentionGate", "ConvBN", "GateBatchNorm2d", "TripletAttention", "zpool")


def zpool(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Z-pool: max and mean of ``x`` over ``dim``, stacked (max first) as a new axis 1.

    Args:
        x (torch.Tensor): Input of shape (B, C, H, W).
        dim (int): The axis to pool away (1, 2 or 3).

    Returns:
        (torch.Tensor): Shape (B, 2, ...) with the two remaining spatial axes in their original order.
    """
    return torch.stack((x.amax(dim), x.mean(dim)), 1)


class GateBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that keeps the paper's eps=1e-5 and momentum=0.01 inside ultralytics models.

    ultralytics' ``initialize_weights`` sets eps=1e-3, momentum=0.03 on every module whose type *is*
    ``nn.BatchNorm2d``; this subclass is not matched by that exact type test, so a gate trained inside YOLO
    normalizes exactly as the official module does and official weights mean the same thing here.
    """

    def __init__(self, num_features: int = 1) -> None:
        """Initialize with the paper's constants."""
        super().__init__(num_features, eps=1e-5, momentum=0.01)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        """Check real tensors only: ``torch.fx`` traces into this non-torch module, and a Proxy's ``dim()`` is symbolic."""
        if isinstance(input, torch.Tensor) and input.dim() != 4:  # BatchNorm2d's own check (super() won't script)
            raise ValueError("expected 4D input (got {}D input)".format(input.dim()))


class ConvBN(nn.Module):
    """Conv2d(2 → 1, k×k, padding k//2, no bias) followed by BatchNorm, as in the paper's gates.

    Attributes are named ``conv`` and ``bn`` so state-dict keys match the official implementation.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        """Initialize the 2-to-1 convolution and its BatchNorm."""
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = GateBatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve and normalize a (B, 2, h, w) Z-pooled map into (B, 1, h, w)."""
        return self.bn(self.conv(x))


class AttentionGate(nn.Module):
    """One branch of Triplet Attention: Z-pooled map -> conv -> BN -> sigmoid gate.

    Unlike the official module this gate takes the *pooled* map and returns the gate itself; the caller multiplies
    it into ``x`` by broadcasting, which is where the savings over full-size rotated copies come from.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        """Initialize the gate with a ``kernel_size`` × ``kernel_size`` convolution."""
        super().__init__()
        self.conv = ConvBN(kernel_size)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Return sigmoid(BN(conv(pooled))) of shape (B, 1, h, w)."""
        return self.conv(pooled).sigmoid()


def _low_precision_grad(x: torch.Tensor) -> bool:
    """Whether a gradient may flow through gates computed under autocast.

    Then the hc gate passes an identity ``index_select`` on its way back to (B, C, H, 1): its backward writes the
    gate's gradient into a fresh contiguous buffer, where a transposed view would send the bf16 conv's weight
    gradient down a less accurate kernel (relative error 0.2 vs the official module's 0.007, issue 10, torch 2.15).
    """
    return isinstance(x, torch.Tensor) and torch.is_grad_enabled() and _autocast(x.device.type)  # fx: a Proxy


def _gate_no_grad(gate: AttentionGate, pooled: torch.Tensor) -> torch.Tensor:
    """The same gate without autograd: its conv through ``gate_conv``, which is faster on long thin maps."""
    return gate.conv.bn(gate_conv(pooled, gate.conv.conv.weight)).sigmoid()


class TripletAttention(nn.Module):
    """Triplet Attention (Misra et al., WACV 2021): three rotated gates, averaged.

    Channel-preserving and channel-agnostic, so a YAML row needs no arguments:
    ``[-1, 1, TripletAttention, []]``; a channel count is accepted and only recorded:
    ``[-1, 1, TripletAttention, [1024]]``.

    Args:
        c1 (int | None): Input channels, recorded for information only; the module works at any width.
        no_spatial (bool): Drop the spatial (H–W) gate and average the two rotated gates.
        kernel_size (int): Side of each gate's convolution (odd; 7 in the paper).

    Examples:
        >>> m = TripletAttention(64)
        >>> m(torch.randn(2, 64, 20, 20)).shape
        torch.Size([2, 64, 20, 20])
        >>> sum(p.numel() for p in m.parameters())
        300
    """

    def __init__(self, c1: int | None = None, no_spatial: bool = False, kernel_size: int = 7) -> None:
        """Initialize the three gates (two when ``no_spatial``)."""
        super().__init__()
        if c1 is not None and (isinstance(c1, bool) or not isinstance(c1, int) or c1 < 1):
            raise TypeError(f"TripletAttention c1 must be a positive channel count or None, got {c1!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"TripletAttention kernel_size must be a positive odd integer, got {kernel_size!r}")
        self.c1 = c1
        self.no_spatial = bool(no_spatial)
        self.kernel_size = kernel_size
        self.cw = AttentionGate(kernel_size)  # C–W interaction (x rotated: H and C swapped)
        self.hc = AttentionGate(kernel_size)  # H–C interaction (x rotated: W and C swapped)
        if not self.no_spatial:
            self.hw = AttentionGate(kernel_size)  # H–W spatial attention (x as it is)

    def gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Compute the gates, each shaped to broadcast against ``x`` (B, C, H, W).

        Returns:
            (dict[str, torch.Tensor]): ``cw`` (B, C, 1, W), ``hc`` (B, C, H, 1) and, unless ``no_spatial``,
            ``hw`` (B, 1, H, W).
        """
        # Rotated maps as in the paper: cw sees a (C, W) map, hc an (H, C) map; gates rotate back by transposes.
        # Pooled maps are made contiguous, as the official rotated copies are (see _low_precision_grad for why).
        g_hc = self.hc(zpool(x, 3).transpose(2, 3).contiguous())  # (B,2,H,C) -> (B,1,H,C)
        if not torch.jit.is_scripting():  # TorchScript: no autocast check, the plain ops as they are
            if _low_precision_grad(x):
                g_hc = g_hc.index_select(1, torch.zeros(1, dtype=torch.long, device=x.device))  # identity, see there
        out = {
            "cw": self.cw(zpool(x, 2).contiguous()).transpose(1, 2),  # (B,2,C,W) -> (B,1,C,W) -> (B,C,1,W)
            "hc": g_hc.permute(0, 3, 2, 1),  # (B,1,H,C) -> (B,C,H,1)
        }
        if not self.no_spatial:
            out["hw"] = self.hw(zpool(x, 1).contiguous())  # (B,2,H,W) -> (B,1,H,W)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``x`` by the average of its gates; the output has the shape of ``x``."""
        if not torch.jit.is_scripting():  # TorchScript compiles only the plain formulation below
            if self._fast(x):
                return self._forward_fused(x)
        g = self.gates(x)
        # Summed in x's dtype: under autocast the bf16 gates' gradients are then rounded once, after their reduction
        # (as in the official module), not per element of a full-size bf16 sum.
        scale = g["cw"].to(x.dtype) + g["hc"].to(x.dtype)
        if not self.no_spatial:
            scale = scale + g["hw"].to(x.dtype)
        return x * (scale / len(g))

    @torch.jit.unused
    def _fast(self, x: torch.Tensor) -> bool:
        """Whether the fast path may run: a verified context (see ``use_fused``) and nothing hooked below us."""
        return use_fused(x) and not hooked(self)

    @torch.jit.unused
    def _forward_fused(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` with the memory-lean Functions: same gates, same result, only small tensors saved."""
        grad = torch.is_grad_enabled()
        handoff = []  # lets the pooling's backward add into the product's fresh input-gradient buffer
        # Pooled maps channels-last when training: oneDNN's conv backward is several times faster on that layout.
        x, *pooled = zpool3(x, not self.no_spatial, grad, handoff)
        gate = AttentionGate.__call__ if grad else _gate_no_grad  # training: autograd through conv, BN, sigmoid
        g_cw = gate(self.cw, pooled[0]).transpose(1, 2)  # (B,1,C,W) -> (B,C,1,W)
        g_hc = gate(self.hc, pooled[1]).permute(0, 3, 2, 1)  # (B,1,H,C) -> (B,C,H,1)
        g_hw = None if self.no_spatial else gate(self.hw, pooled[2])  # (B,1,H,W)
        return triplet_scale(x, g_cw, g_hc, g_hw, 1 / len(pooled), handoff)

    def extra_repr(self) -> str:
        """Show the arguments in ``print(model)``."""
        return f"c1={self.c1}, no_spatial={self.no_spatial}, kernel_size={self.kernel_size}"

"""The one reference the tests compare TripletAttention with: the paper's permute-based formulation, written here.

Each gate rotates ``x`` with a full-size ``permute().contiguous()`` copy, Z-pools its axis 1 (max and mean), runs
conv -> BN -> sigmoid and multiplies; the gated maps are rotated back and averaged, as the official module does.
The max is ``amax``, whose backward splits ties evenly (``torch.max(x, 1)[0]``, the official spelling, gives the same
values, and the same gradients wherever the maximum is unique). State-dict keys are the official ones.
"""

from __future__ import annotations

import torch
from torch import nn

from ultralytics_triplet import TripletAttention

__all__ = ("RefGate", "RefTriplet", "pair")


class RefConvBN(nn.Module):
    """Conv2d(2 -> 1, k×k, no bias) + BatchNorm(eps=1e-5, momentum=0.01), the official gate's ``conv``."""

    def __init__(self, k: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x):
        return self.bn(self.conv(x))


class RefGate(nn.Module):
    """Z-pool over dim 1 of an already rotated tensor, conv, BN, sigmoid, multiply."""

    def __init__(self, k: int = 7):
        super().__init__()
        self.conv = RefConvBN(k)

    def forward(self, x):
        z = torch.stack((x.amax(1), x.mean(1)), 1)
        return x * torch.sigmoid(self.conv(z))


class RefTriplet(nn.Module):
    """Triplet Attention with full-size rotated copies (what the official module computes)."""

    def __init__(self, no_spatial: bool = False, k: int = 7):
        super().__init__()
        self.cw, self.hc, self.no_spatial = RefGate(k), RefGate(k), no_spatial
        if not no_spatial:
            self.hw = RefGate(k)

    def forward(self, x):
        cw = self.cw(x.permute(0, 2, 1, 3).contiguous()).permute(0, 2, 1, 3)
        hc = self.hc(x.permute(0, 3, 2, 1).contiguous()).permute(0, 3, 2, 1)
        return (cw + hc) / 2 if self.no_spatial else (cw + hc + self.hw(x)) / 3


def pair(no_spatial: bool = False, k: int = 7, seed: int = 0) -> tuple[RefTriplet, TripletAttention]:
    """A reference and our module holding the same random weights (BN affine and running statistics included)."""
    torch.manual_seed(seed)
    ref = RefTriplet(no_spatial, k)
    with torch.no_grad():
        for name, t in ref.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t))
    ours = TripletAttention(no_spatial=no_spatial, kernel_size=k)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours

"""The official module's formulation, for comparison: full-size rotated copies, a Z-pool and a gate for each.

Misra, Nalamada, Arasanipalai, Hou. "Rotate to Attend: Convolutional Triplet Attention Module", WACV 2021.
https://arxiv.org/abs/2010.03045

Each gate rotates ``x`` with ``permute().contiguous()``, Z-pools the rotated tensor's axis 1 (max and mean,
concatenated), runs conv -> BN -> sigmoid and multiplies the rotated tensor; the gated maps are rotated back and
averaged. :class:`~ultralytics_triplet.nn.TripletAttention` computes the same function without the full-size copies;
the tests compare the two, and the benchmarks time them side by side. State-dict keys are the official ones, so
weights move between the two with ``load_state_dict(strict=True)``.

By default the max is ``amax``, whose backward splits a tie evenly between the tied entries, as this package's module
does; the tests compare gradients against it. ``official_max=True`` pools with the official code's own
``torch.max(x, 1)[0]``, which gives the same values, and the same gradients wherever the maximum is unique, but also
computes the indices of the maxima (several times slower than ``amax`` on CPU); the benchmarks time that form, the
module people run.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ("ReferenceGate", "ReferenceTriplet")


class ReferenceConvBN(nn.Module):
    """Conv2d(2 -> 1, k×k, no bias) + BatchNorm(eps=1e-5, momentum=0.01): the official gate's ``conv``."""

    def __init__(self, kernel_size: int = 7) -> None:
        """Initialize the convolution and its BatchNorm."""
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve and normalize a (B, 2, h, w) map."""
        return self.bn(self.conv(x))


class ReferenceGate(nn.Module):
    """Z-pool over axis 1 of an already rotated tensor, conv, BN, sigmoid, multiply."""

    def __init__(self, kernel_size: int = 7, official_max: bool = False) -> None:
        """Initialize the gate's conv + BN; ``official_max`` pools with ``torch.max(x, 1)[0]`` instead of ``amax``."""
        super().__init__()
        self.conv = ReferenceConvBN(kernel_size)
        self.official_max = official_max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` scaled by its gate."""
        peak = torch.max(x, 1)[0].unsqueeze(1) if self.official_max else x.amax(1, keepdim=True)
        pooled = torch.cat((peak, x.mean(1, keepdim=True)), dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class ReferenceTriplet(nn.Module):
    """Triplet Attention as the official module computes it: rotate, gate, rotate back, average.

    Args:
        c1 (int | None): Input channels, unused (accepted so that a YAML row written for TripletAttention builds it).
        no_spatial (bool): Drop the spatial (H–W) gate.
        kernel_size (int): Side of each gate's convolution.
        official_max (bool): Pool the max as the official code does, ``torch.max(x, 1)[0]``, instead of ``amax``.
    """

    def __init__(
        self, c1: int | None = None, no_spatial: bool = False, kernel_size: int = 7, official_max: bool = False
    ) -> None:
        """Initialize the three gates (two when ``no_spatial``)."""
        super().__init__()
        self.no_spatial = no_spatial
        self.cw, self.hc = ReferenceGate(kernel_size, official_max), ReferenceGate(kernel_size, official_max)
        if not no_spatial:
            self.hw = ReferenceGate(kernel_size, official_max)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Average the three gated maps; the output has the shape of ``x``."""
        cw = self.cw(x.permute(0, 2, 1, 3).contiguous()).permute(0, 2, 1, 3).contiguous()
        hc = self.hc(x.permute(0, 3, 2, 1).contiguous()).permute(0, 3, 2, 1).contiguous()
        if self.no_spatial:
            return 1 / 2 * (cw + hc)
        return 1 / 3 * (self.hw(x) + cw + hc)

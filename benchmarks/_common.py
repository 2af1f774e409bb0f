"""What the benchmarks that time TripletAttention against the official module share.

The official-style module as people run it, the feature maps the module benchmarks time, the bytes autograd keeps for
backward, and two small helpers. Import it after ``_checkout.use_checkout`` (it imports the package and torch).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ultralytics_triplet.reference import ReferenceTriplet

__all__ = ("MAPS", "OfficialTriplet", "flat", "geomean", "saved_bytes")

MAPS = [(64, 80, 80), (256, 40, 40), (512, 20, 20)]  # (C, H, W): P3, P4 and P5 of yolov5s at 640 px, P3 at 320


class OfficialTriplet(ReferenceTriplet):
    """The official module's forward, its max pooling ``torch.max(x, 1)[0]`` included."""

    def __init__(self, c1: int | None = None, no_spatial: bool = False, kernel_size: int = 7) -> None:
        """Build the reference module with the official max."""
        super().__init__(c1, no_spatial, kernel_size, official_max=True)


def saved_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd keeps for backward of ``module(x)``: each storage once, the input's storage excluded.

    Counted on what ``torch.autograd.graph.saved_tensors_hooks`` hands over, so it holds on any device and under
    autocast (run the call inside the autocast block to count what autocast makes autograd keep).
    """
    seen = {x.untyped_storage().data_ptr()}
    total = 0

    def pack(t):
        nonlocal total
        s = t.untyped_storage()
        if s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            total += s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = module(x)
    del y
    return total


def geomean(xs) -> float:
    """Geometric mean."""
    return math.exp(sum(math.log(v) for v in xs) / len(xs))


def flat(out) -> list[torch.Tensor]:
    """The tensors in a network's output (a tensor, or lists, tuples and dicts of them), in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in flat(o)]

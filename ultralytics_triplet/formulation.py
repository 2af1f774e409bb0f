"""TripletAttention's formulations: the table of them, and the public switch.

``TripletAttention`` computes one function in several formulations, each a ``forward_<name>`` method of the class;
``forward`` runs the one that ``TripletAttention.formulation(x)`` names for the call. :data:`FORMULATIONS` is the one
list of them: what each is, when it runs, what it computes differently from ``forward_plain``, and in which modes it
serves. The class's choice reads its thresholds here, the tests compare every entry with ``forward_plain``, and the
table on docs/module.md is generated from it (``python scripts/formulation_table.py``).

The switch, :func:`set_formulation` / :func:`get_formulation`, seeded from ``ULTRALYTICS_TRIPLET_FORMULATION``:
``auto`` (each call gets the formulation chosen for its context) or ``plain`` (every call calls each gate module on its
pooled map; to compare, profile or debug). Process-wide, like timm's ``set_fused_attn``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from . import _env

__all__ = ("FORMULATIONS", "SETTINGS", "Formulation", "get_formulation", "set_formulation")

SETTINGS = ("auto", "plain")  # values of set_formulation() and of ULTRALYTICS_TRIPLET_FORMULATION
SMALL_SIDE_PRODUCT = 64  # eager calls on maps of at most this many positions (H·W) run forward_small ...
SMALL_NUMEL = 1 << 15  # ... and so do those on maps of at most this many elements (B·C·H·W)

ANY_MODE = ((True, True), (True, False), (False, True), (False, False))  # (training, gradients on) pairs
NO_GRAD = ((True, False), (False, False))
EVAL_NO_GRAD = ((False, False),)


class Formulation(NamedTuple):
    """One row of the table: ``TripletAttention.forward_<name>``."""

    name: str
    runs: str  # when TripletAttention.formulation picks it
    computes: str  # how it computes the same function as forward_plain
    modes: tuple  # the (training, gradients on) pairs it serves, each compared with forward_plain by the tests


FORMULATIONS = (
    Formulation("plain", "everywhere the others do not: other devices and dtypes, TorchScript, `torch.compile`, "
                "`torch.export`, `torch.fx`, `torch.func` transforms, dispatch modes, a hook below the module; and "
                "after `set_formulation(\"plain\")`",
                "each gate module called on its Z-pooled map (`gates()`), `x` times the average of the gates; "
                "TorchScript compiles this one", ANY_MODE),
    Formulation("autocast", "under autocast",
                "`plain`, the gates summed in the input's dtype and the `hc` gate's gradient handed to its "
                "convolution contiguous", ANY_MODE),
    Formulation("small", f"eager, small maps (at most {SMALL_SIDE_PRODUCT} positions H·W, or at most "
                f"{SMALL_NUMEL:,} elements)",
                "plain tensor ops on one channels-last copy of `x`: each Z-pool reduces an outer axis, each gate "
                "comes out laid out for broadcasting against it, and the product is put back in `x`'s layout",
                ANY_MODE),
    Formulation("fused", "eager, larger maps, gradients on",
                "Z-pooling and scaling as memory-lean autograd Functions that keep only `x` and pooled-size tensors "
                "for backward (`_fused.py`)", ANY_MODE),
    Formulation("no_grad", "eager, larger maps, gradients off",
                "the same two steps as direct kernels: the scaling in cache-sized slices, the pools of maps up to "
                "32×32 from one channels-last copy", NO_GRAD),
    Formulation("export", "an eval-mode `torch.jit.trace` (the exporters'), each BatchNorm on running statistics, "
                "nothing hooked below the module",
                "each gate's BatchNorm folded into its convolution, max and mean by reductions; valid at every "
                "input size", EVAL_NO_GRAD),
    Formulation("export_onnx", "ultralytics' static-shape ONNX export",
                "`export` with the statistics over W and C reduced from one channels-last copy, over H by full-axis "
                "pooling, both rotated gates convolved as one depthwise convolution of their four maps, each sigmoid "
                "right after its convolution, a channels-last scaling; holds the traced size", EVAL_NO_GRAD),
    Formulation("export_openvino", "ultralytics' static-shape OpenVINO export",
                "`export` with full-axis pooling for the H and W statistics; holds the traced size", EVAL_NO_GRAD),
)


def _checked(name: str, source: str) -> str:
    """``name`` if it is one of ``SETTINGS`` (any case, spaces trimmed), else a one-line ValueError."""
    value = str(name).strip().lower()
    if value not in SETTINGS:
        raise ValueError(f"{source} must be one of {', '.join(SETTINGS)}, got {name!r}")
    return value


_setting = _checked(os.environ.get(_env.FORMULATION, "").strip() or "auto", _env.FORMULATION)


class _Restore:
    """What ``set_formulation`` returns: used in a ``with`` statement, it puts the previous setting back at the end."""

    def __init__(self, previous: str) -> None:
        self.previous = previous

    def __enter__(self) -> _Restore:
        return self

    def __exit__(self, *exc) -> None:
        global _setting
        _setting = self.previous


def set_formulation(name: str) -> _Restore:
    """Choose how every TripletAttention in this process computes: ``"auto"`` (the default) or ``"plain"``.

    ``"plain"`` runs the module-calling formulation everywhere (each gate's conv, BatchNorm and sigmoid modules called
    on its pooled map), to compare with, profile or debug. The setting applies at once; used as a context manager it
    is undone at the end of the block. Processes one does not start (DDP workers, Ray) read the initial setting from
    the environment variable ``ULTRALYTICS_TRIPLET_FORMULATION``.

    Args:
        name (str): ``"auto"`` or ``"plain"``.

    Returns:
        (object): A context manager that restores the previous setting on exit.

    Examples:
        >>> with set_formulation("plain"):
        ...     y = model(x)
    """
    global _setting
    restore = _Restore(_setting)
    _setting = _checked(name, "set_formulation(name)")
    return restore


def get_formulation() -> str:
    """The current setting: ``"auto"`` or ``"plain"``."""
    return _setting

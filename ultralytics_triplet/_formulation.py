"""Which formulation of TripletAttention a call runs: the public switch and the facts the choice reads.

``TripletAttention`` computes one function in several formulations, each a ``forward_*`` method of the class, and
``TripletAttention.formulation`` picks one per call from the facts below. This module holds those facts and the switch
that overrides the choice:

- :func:`set_formulation` / :func:`get_formulation`, seeded from ``ULTRALYTICS_TRIPLET_FORMULATION``: ``auto`` (each
  call gets the formulation chosen for its context) or ``plain`` (every call calls each gate module on its pooled map;
  to compare, profile or debug). Process-wide, like timm's ``set_fused_attn``;
- :func:`eager_fast_context`: whether a call may run the eager fast formulations (a plain float32/float64 CPU tensor,
  no tracer, compiler, transform or dispatch mode);
- :func:`hooked`: whether any hook could see a submodule the fast formulations do not call.

Which ultralytics export is tracing the module is an ultralytics internal: ``_compat.export_target``.
"""

from __future__ import annotations

import importlib
import os

import torch
from torch.nn.modules import module as _module

from . import _env

__all__ = ("FORMULATIONS", "get_formulation", "set_formulation")

FORMULATIONS = ("auto", "plain")  # values of set_formulation() and of ULTRALYTICS_TRIPLET_FORMULATION
_EAGER_DTYPES = (torch.float32, torch.float64)  # where the tests compare the eager fast formulations with the plain one


def _checked(name: str, source: str) -> str:
    """``name`` if it is one of ``FORMULATIONS`` (any case, spaces trimmed), else a one-line ValueError."""
    value = str(name).strip().lower()
    if value not in FORMULATIONS:
        raise ValueError(f"{source} must be one of {', '.join(FORMULATIONS)}, got {name!r}")
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


def plain_only() -> bool:
    """Whether the setting is ``"plain"``."""
    return _setting == "plain"


def _autocast_probe():
    """``torch.is_autocast_enabled(device_type)``, or its torch < 2.4 spelling, which takes no argument."""
    try:
        torch.is_autocast_enabled("cpu")
    except TypeError:
        return lambda device: torch.is_autocast_cpu_enabled() if device == "cpu" else torch.is_autocast_enabled()
    return torch.is_autocast_enabled


def _compiling_probe():
    """Whether dynamo is tracing (``torch.compile``, ``torch.export``); from ``torch._dynamo`` before torch 2.3."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):
        exporting = getattr(compiler, "is_exporting", None)
        if exporting is None:
            return compiler.is_compiling
        return lambda: compiler.is_compiling() or exporting()
    return importlib.import_module("torch._dynamo").is_compiling


def _fx_probe():
    """Whether ``torch.fx`` symbolic tracing is running (ultralytics' IMX export and FX quantization use it)."""
    tracer = getattr(torch.fx, "_symbolic_trace", None)
    probe = getattr(tracer, "is_fx_symbolic_tracing", None) or getattr(tracer, "is_fx_tracing", None)
    return probe if probe is not None else lambda: False


# Each probe is looked up once: the choice runs on every call.
_autocast_enabled, _is_compiling, _is_fx_tracing = _autocast_probe(), _compiling_probe(), _fx_probe()


def autocast_on(x) -> bool:
    """Whether autocast is on for ``x``'s device (False for a ``torch.fx`` Proxy: its graph holds no autocast)."""
    if not isinstance(x, torch.Tensor):
        return False
    return _autocast_enabled("cpu" if x.is_cpu else x.device.type)


def _in_transform() -> bool:
    """Whether a ``torch.func`` transform (grad, vjp, jvp, vmap, ...) or forward-mode AD (``dual_level``) is active."""
    peek = getattr(getattr(torch._C, "_functorch", None), "peek_interpreter_stack", None)
    return (peek is not None and peek() is not None) or getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0


def _in_mode() -> bool:
    """Whether a ``TorchDispatchMode`` or ``TorchFunctionMode`` is active (flop counters, fake tensors, export)."""
    return bool(torch._C._len_torch_dispatch_stack()) or torch._C._is_torch_function_mode_enabled()


def eager_fast_context(x) -> bool:
    """Whether the eager fast formulations may run for input ``x``: where the tests compare them with the plain one.

    That is eager mode (no ``torch.jit`` trace, no autocast: callers check those first) on a plain 4-D float32 or
    float64 CPU tensor, outside ``torch.compile``/``torch.export`` (the fast formulations' autograd Functions are
    opaque to them), ``torch.fx`` tracing, ``torch.func`` transforms and forward-mode AD, and dispatch or function
    modes (flop counters, fake tensors). Cheapest tests first: this runs on every call.
    """
    if type(x) is not torch.Tensor and type(x) is not torch.nn.Parameter:  # fx Proxy, tensor subclasses
        return False
    if not x.is_cpu or x.dtype not in _EAGER_DTYPES or x.dim() != 4:
        return False
    return not (_is_compiling() or _in_mode() or _in_transform() or _is_fx_tracing())


def hooked(module: torch.nn.Module) -> bool:
    """Whether a hook is registered on a submodule of ``module`` (not on ``module`` itself) or globally.

    The fast formulations compute a submodule's result without calling it, so anything hooked below the module would
    see nothing; the module's own hooks see the same input and output in every formulation.
    """
    if (
        _module._global_forward_hooks
        or _module._global_forward_pre_hooks
        or _module._global_backward_hooks
        or _module._global_backward_pre_hooks
    ):
        return True
    todo = list(module._modules.values())
    while todo:  # a plain walk: this runs on every call
        m = todo.pop()
        if m is not None:
            if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks:
                return True
            todo.extend(m._modules.values())
    return False

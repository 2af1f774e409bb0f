"""What ``TripletAttention.formulation`` asks torch on every call: probes of torch internals, each looked up once.

- :func:`autocast_on`: whether autocast is on for the input's device;
- :func:`eager_fast_context`: whether a call may run the eager fast formulations (a plain float32/float64 CPU tensor,
  no tracer, compiler, transform or dispatch mode);
- :func:`hooked`: whether any hook could see a submodule the fast formulations do not call.

Each spelling that moved between torch releases is resolved once, at import; the answers are asked per call, since
every one of them can change between two calls of the same module.
"""

from __future__ import annotations

import importlib

import torch
from torch.nn.modules import module as _module

__all__ = ("autocast_on", "eager_fast_context", "hooked")

_EAGER_DTYPES = (torch.float32, torch.float64)  # where the tests compare the eager fast formulations with the plain one


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


_autocast_enabled, _is_compiling, _is_fx_tracing = _autocast_probe(), _compiling_probe(), _fx_probe()
_peek_transform = getattr(getattr(torch._C, "_functorch", None), "peek_interpreter_stack", None) or (lambda: None)
_dispatch_modes, _function_mode_on = torch._C._len_torch_dispatch_stack, torch._C._is_torch_function_mode_enabled
_forward_ad = torch.autograd.forward_ad


def autocast_on(x) -> bool:
    """Whether autocast is on for ``x``'s device (False for a ``torch.fx`` Proxy: its graph holds no autocast)."""
    if not isinstance(x, torch.Tensor):
        return False
    return _autocast_enabled("cpu" if x.is_cpu else x.device.type)


def _in_transform() -> bool:
    """Whether a ``torch.func`` transform (grad, vjp, jvp, vmap, ...) or forward-mode AD (``dual_level``) is active."""
    return _peek_transform() is not None or getattr(_forward_ad, "_current_level", -1) >= 0


def _in_mode() -> bool:
    """Whether a ``TorchDispatchMode`` or ``TorchFunctionMode`` is active (flop counters, fake tensors, export)."""
    return bool(_dispatch_modes()) or _function_mode_on()


def eager_fast_context(x) -> bool:
    """Whether the eager fast formulations may run for input ``x``: where the tests compare them with the plain one.

    That is eager mode (no ``torch.jit`` trace, no autocast: callers check those first) on a plain 4-D float32 or
    float64 CPU tensor, outside ``torch.compile``/``torch.export`` (the fast formulations' autograd Functions are
    opaque to them), ``torch.fx`` tracing, ``torch.func`` transforms and forward-mode AD, and dispatch or function
    modes (flop counters, fake tensors). Cheapest tests first.
    """
    if type(x) is not torch.Tensor and type(x) is not torch.nn.Parameter:  # fx Proxy, tensor subclasses
        return False
    if not x.is_cpu or x.dtype not in _EAGER_DTYPES or x.dim() != 4:
        return False
    return not (_is_compiling() or _in_mode() or _in_transform() or _is_fx_tracing())


def hooked(module: torch.nn.Module) -> bool:
    """Whether a hook is registered on a submodule of ``module`` (not on ``module`` itself) or globally.

    The fast formulations compute a submodule's result without calling it, so anything hooked below the module would
    see nothing; the module's own hooks see the same input and output in every formulation. The submodules are walked
    on every call (a hook, or a submodule, may be added between two calls), reading each one's dict directly.
    """
    if (
        _module._global_forward_hooks
        or _module._global_forward_pre_hooks
        or _module._global_backward_hooks
        or _module._global_backward_pre_hooks
    ):
        return True
    todo = [*module._modules.values()]
    for m in todo:  # the list grows as the walk goes: every submodule, once
        if m is None:
            continue
        d = m.__dict__
        if d["_forward_hooks"] or d["_forward_pre_hooks"] or d["_backward_hooks"] or d["_backward_pre_hooks"]:
            return True
        todo += d["_modules"].values()
    return False

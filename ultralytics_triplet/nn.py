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

Each gate holds 2·k² conv weights and 2 BN affine parameters: 300 parameters at k=7 for any channel count. A rotated
gate only needs ``x`` pooled along one axis, and its output is ``x`` times a broadcast gate, so no formulation makes a
full-size rotated copy of ``x``; the pooled maps are laid out as the official implementation's rotated tensors are,
so its weights load unchanged (strict state-dict keys).

One function, several formulations. ``forward`` runs the one ``TripletAttention.formulation`` names for the call; each
is a ``forward_*`` method of the class, and the tests check every one against ``forward_plain`` on the same inputs and
weights:

    plain            each gate module called on its Z-pooled map (TorchScript, torch.fx, torch.compile/export, hooks
                     below the module, other devices and dtypes, ``set_formulation("plain")``)
    autocast         plain under autocast, the gates summed in the input's dtype
    small            eager CPU float32/float64 on small maps: plain tensor ops on a channels-last copy
    fused            eager CPU float32/float64 training on larger maps: pooling and scaling as memory-lean Functions
    no_grad          eager CPU float32/float64 inference on larger maps: pooling and scaling as direct kernels
    export           an eval-mode ``torch.jit.trace`` (the exporters'): BatchNorm folded, valid at every input size
    export_onnx      ultralytics' static-shape ONNX export: full-axis pooling, a channels-last scaling
    export_openvino  ultralytics' static-shape OpenVINO export: full-axis pooling
"""

from __future__ import annotations

import warnings
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

from . import _compat, _formulation
from ._fused import gate_product, triplet_scale, zpool3, zpool_last, zpool_maps

__all__ = ("AttentionGate", "ConvBN", "GateBatchNorm2d", "TripletAttention", "zpool")

PASS_THROUGH_BIAS = 4.0  # TripletAttention.init_pass_through: gates start at sigmoid(4) = 0.982
SMALL_SIDE_PRODUCT = 64  # eager calls on maps of at most this many positions (H·W) run forward_small ...
SMALL_NUMEL = 1 << 15  # ... and so do those on maps of at most this many elements (B·C·H·W)


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
        """Check real tensors only: ``torch.fx`` traces into this non-torch module; a Proxy's ``dim()`` is symbolic."""
        if isinstance(input, torch.Tensor) and input.dim() != 4:  # BatchNorm2d's own check (super() won't script)
            raise ValueError(f"expected 4D input (got {input.dim()}D input)")


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


def _foldable(gate: AttentionGate) -> bool:
    """Whether the gate's BatchNorm is an affine map with fixed statistics (eval mode, running stats, affine)."""
    bn = gate.conv.bn
    return not bn.training and bn.running_mean is not None and bn.running_var is not None and bn.affine


def _folded(gate: AttentionGate) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The gate's conv weight and bias with its eval-mode BatchNorm folded in; None where BN uses batch statistics.

    In eval mode the BatchNorm is an affine map with fixed statistics: BN(conv(p)) = conv(p, w·a) + (β − μ·a) with
    a = γ / sqrt(σ² + ε). A float16 or bfloat16 gate is folded in float32, then cast back.
    """
    if not _foldable(gate):
        return None
    conv, bn = gate.conv.conv, gate.conv.bn
    dtype = conv.weight.dtype
    low = dtype in (torch.float16, torch.bfloat16)
    w, gamma, beta, mean, var = (t.float() if low else t for t in (conv.weight, bn.weight, bn.bias, bn.running_mean,
                                                                   bn.running_var))
    scale = gamma * (var + bn.eps).rsqrt()
    weight, bias = w * scale.view(-1, 1, 1, 1), beta - mean * scale
    return (weight.to(dtype), bias.to(dtype)) if low else (weight, bias)


def _gate(gate: AttentionGate, pooled: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """``gate(pooled)`` for a (B, 2, R, S) map, its convolution in the layout oneDNN runs fastest, BatchNorm called.

    oneDNN runs this 2 -> 1 channel convolution far slower on a tall map (R > S) than on its transpose, so a tall map
    is convolved transposed with the kernel transposed (a "same" convolution commutes with transposing both), and the
    gate transposed back. With gradients on, the map is laid out channels-last, where oneDNN's backward is faster.
    With ``transposed``, ``pooled`` is the transpose of the map the gate's weights are for, and so is the result.
    """
    weight = gate.conv.conv.weight.transpose(2, 3) if transposed else gate.conv.conv.weight
    tall = pooled.shape[2] > pooled.shape[3]
    if tall:
        pooled, weight = pooled.transpose(2, 3), weight.transpose(2, 3)
    grad = torch.is_grad_enabled() and (pooled.requires_grad or weight.requires_grad)
    pooled = pooled.contiguous(memory_format=torch.channels_last if grad else torch.contiguous_format)
    out = gate.conv.bn(F.conv2d(pooled, weight, padding=weight.shape[-1] // 2)).sigmoid()
    return out.transpose(2, 3) if tall else out


def _is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is laid out channels-last (and not also contiguous, as a map with C = 1 or H = W = 1 is)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _traced_gate(gate: AttentionGate, pooled: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """sigmoid(conv(pooled)) with the gate's BatchNorm folded into the conv (``_folded``), for an exported graph.

    ``transposed`` as in ``_gate``. In an ONNX export the 2 -> 1 convolution is written as a depthwise one (each pooled
    channel with its own kernel) and a sum over the two channels, which ONNX Runtime runs faster than a convolution
    with one output channel.
    """
    weight, bias = _folded(gate)
    if transposed:
        weight = weight.transpose(2, 3)
    padding = gate.conv.conv.padding
    if torch.onnx.is_in_onnx_export():
        per_channel = F.conv2d(pooled, weight.reshape(2, 1, *weight.shape[2:]), padding=padding, groups=2)
        return (per_channel.sum(1, keepdim=True) + bias.view(1, 1, 1, 1)).sigmoid()
    # The bias is added after the convolution, not passed to it: a folded bias is computed, not a parameter, and
    # X2Paddle (ultralytics' PaddlePaddle export) reads a convolution's bias only as a constant or a parameter.
    return (F.conv2d(pooled, weight, padding=padding) + bias.view(1, 1, 1, 1)).sigmoid()


def _static_size(x: torch.Tensor) -> list[int]:
    """``x``'s sizes as plain ints, which a trace records as constants (its graph then holds that size only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # int() of a traced size: the intent here
        return [int(n) for n in x.shape]


def _pool_over_side(x: torch.Tensor, dim: int, side: int) -> torch.Tensor:
    """Max and mean of ``x`` over spatial axis ``dim`` (2 or 3) of size ``side``, by pooling with a kernel that spans
    it, concatenated on that axis: (B, C, 2, W) for H, (B, C, H, 2) for W."""
    kernel = (side, 1) if dim == 2 else (1, side)
    return torch.cat((F.max_pool2d(x, kernel), F.avg_pool2d(x, kernel)), dim)


_LEGACY_GATES = {"ChannelGateH": "cw", "ChannelGateW": "hc", "SpatialGate": "hw"}  # tutorial name -> official name
_FORMS = (
    "[], [no_spatial] e.g. [True], [channels] e.g. [1024], [channels, no_spatial] e.g. [1024, True], "
    "[channels, no_spatial, kernel_size]"
)


def _usage(problem: str) -> str:
    """One-line TypeError message: what was wrong and the accepted argument forms."""
    return f"TripletAttention: {problem}; accepted YAML args: {_FORMS}"


class TripletAttention(nn.Module):
    """Triplet Attention (Misra et al., WACV 2021): three rotated gates, averaged.

    Channel-preserving and channel-agnostic: a YAML row needs no arguments. ultralytics passes a row's args as
    written (``TripletAttention(*args)``), and the forms found in the wild are all accepted:

    ============================  ===============================================  ==============
    YAML args                     meaning                                          gates
    ============================  ===============================================  ==============
    ``[]``                        defaults                                         3
    ``[True]`` / ``[False]``      ``no_spatial`` (official root signature)         2 / 3
    ``[1024]``                    channel count, recorded only (tutorial)          3
    ``[1024, True]``              channel count, then ``no_spatial``               2
    ``[1024, False, 5]``          channel count, ``no_spatial``, ``kernel_size``   3
    ============================  ===============================================  ==============

    A bool first argument is ``no_spatial`` and must stand alone; an int first argument is the channel count.
    Anything else (``[True, 1024]``, ``[1024, 1024]``, the tutorial's ``reduction_ratio`` as in ``[1024, 16]``,
    strings, floats) is refused with a TypeError that lists these forms.

    State dicts load with ``strict=True`` in the official root layout (``cw.conv.conv.weight``, ``cw.conv.bn.*``,
    ``hc.*``, ``hw.*``: this module's own keys) and in the tutorial's/legacy official layout
    (``ChannelGateH.spatial.conv.weight``, ``ChannelGateH.spatial.bn.*``, ``ChannelGateW.*``, ``SpatialGate.*``),
    whose gates are ``cw``, ``hc`` and ``hw`` in that order.

    Args:
        c1 (int | bool | None): Input channels, recorded for information only (the module works at any width); a
            bool here is ``no_spatial`` (the official signature ``TripletAttention(no_spatial)``).
        no_spatial (bool | None): Drop the spatial (H–W) gate and average the two rotated gates (None: False).
        kernel_size (int): Side of each gate's convolution (odd; 7 in the paper).

    Examples:
        >>> m = TripletAttention(64)
        >>> m(torch.randn(2, 64, 20, 20)).shape
        torch.Size([2, 64, 20, 20])
        >>> sum(p.numel() for p in m.parameters()), sum(p.numel() for p in TripletAttention(True).parameters())
        (300, 200)
    """

    def __init__(self, c1: int | bool | None = None, no_spatial: bool | None = None, kernel_size: int = 7) -> None:
        """Initialize the three gates (two when ``no_spatial``)."""
        super().__init__()
        if isinstance(c1, bool):  # the official root signature: TripletAttention(no_spatial)
            if no_spatial is not None:
                raise TypeError(_usage(f"a bool first argument ({c1}) is no_spatial and takes no second one, got "
                                       f"{no_spatial!r}"))
            c1, no_spatial = None, c1
        if c1 is not None and not (isinstance(c1, Integral) and c1 >= 1):
            raise TypeError(_usage(f"the first argument (c1) must be a channel count or a bool, got {c1!r}"))
        if no_spatial is not None and not isinstance(no_spatial, bool):
            raise TypeError(_usage(f"no_spatial must be True or False, got {no_spatial!r}"))
        odd = isinstance(kernel_size, Integral) and not isinstance(kernel_size, bool) and kernel_size % 2 == 1
        if not (odd and kernel_size >= 1):
            raise ValueError(f"TripletAttention kernel_size must be a positive odd integer, got {kernel_size!r}")
        self.c1 = None if c1 is None else int(c1)
        self.no_spatial = bool(no_spatial)
        self.kernel_size = int(kernel_size)
        self.cw = AttentionGate(self.kernel_size)  # C–W interaction (x rotated: H and C swapped)
        self.hc = AttentionGate(self.kernel_size)  # H–C interaction (x rotated: W and C swapped)
        if not self.no_spatial:
            self.hw = AttentionGate(self.kernel_size)  # H–W spatial attention (x as it is)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Also accept the tutorial's (legacy official) key layout by renaming its keys to the official root ones.

        ``ChannelGateH.spatial.*`` (the gate on ``x.permute(0, 2, 1, 3)``) is ``cw.conv.*``, ``ChannelGateW.spatial.*``
        (on ``x.permute(0, 3, 2, 1)``) is ``hc.conv.*``, ``SpatialGate.spatial.*`` is ``hw.conv.*``. A key whose
        official name is also present, or whose gate this module lacks, is left alone: ``strict=True`` reports it.
        """
        for legacy, gate in _LEGACY_GATES.items():
            head = f"{prefix}{legacy}.spatial."
            if not hasattr(self, gate):  # no_spatial: a SpatialGate key stays as it is and is reported under its name
                continue
            for key in [k for k in state_dict if k.startswith(head)]:
                official = f"{prefix}{gate}.conv.{key[len(head):]}"
                if official not in state_dict:
                    state_dict[official] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Compute the gates with the gate modules, each shaped to broadcast against ``x`` (B, C, H, W).

        Returns:
            (dict[str, torch.Tensor]): ``cw`` (B, C, 1, W), ``hc`` (B, C, H, 1) and, unless ``no_spatial``,
            ``hw`` (B, 1, H, W).
        """
        return self._module_gates(x, False)

    def _module_gates(self, x: torch.Tensor, fresh_hc_grad: bool) -> dict[str, torch.Tensor]:
        """``gates``; with ``fresh_hc_grad``, the hc gate passes an identity ``index_select`` (``forward_autocast``)."""
        # Rotated maps as in the paper: cw sees a (C, W) map, hc an (H, C) map; gates rotate back by transposes.
        # Pooled maps are made contiguous, as the official rotated copies are (see forward_autocast for why).
        g_hc = self.hc(zpool(x, 3).transpose(2, 3).contiguous())  # (B,2,H,C) -> (B,1,H,C)
        if fresh_hc_grad:
            g_hc = g_hc.index_select(1, torch.zeros(1, dtype=torch.long, device=x.device))
        out = {
            "cw": self.cw(zpool(x, 2).contiguous()).transpose(1, 2),  # (B,2,C,W) -> (B,1,C,W) -> (B,C,1,W)
            "hc": g_hc.permute(0, 3, 2, 1),  # (B,1,H,C) -> (B,C,H,1)
        }
        if not self.no_spatial:
            out["hw"] = self.hw(zpool(x, 1).contiguous())  # (B,2,H,W) -> (B,1,H,W)
        return out

    def _scaled(self, x: torch.Tensor, g: dict[str, torch.Tensor]) -> torch.Tensor:
        """``x`` times the average of its broadcast gates; the 1/3 (1/2) scales the small gates, not their sum."""
        s = 1 / len(g)
        scale = g["cw"] * s + g["hc"] * s
        if not self.no_spatial:
            scale = scale + g["hw"] * s
        return x * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``x`` by the average of its gates; the output has the shape of ``x``.

        Runs ``forward_<name>`` for the name ``formulation(x)`` gives; all compute the same function.
        """
        if torch.jit.is_scripting():  # TorchScript compiles the plain formulation alone
            return self.forward_plain(x)
        return getattr(self, f"forward_{self.formulation(x)}")(x)

    @torch.jit.unused
    def formulation(self, x: torch.Tensor) -> str:
        """The formulation ``forward`` runs for ``x`` (the ``forward_<name>`` method): the one place it is chosen.

        - ``"autocast"`` under autocast;
        - ``"plain"`` after ``set_formulation("plain")``;
        - in a ``torch.jit.trace`` (the exporters'): ``"export"`` for an eval-mode module with nothing hooked below it
          and each BatchNorm on running statistics, or ``"export_onnx"`` / ``"export_openvino"`` when ultralytics'
          exporter traces it for a static-shape ONNX / OpenVINO export; else ``"plain"``;
        - in eager mode, on a plain float32/float64 CPU tensor with nothing hooked below the module, outside
          ``torch.compile``/``torch.export``, ``torch.fx``, ``torch.func`` transforms and dispatch modes
          (``_formulation.eager_fast_context``): ``"small"`` for maps of at most ``SMALL_SIDE_PRODUCT`` positions (H·W)
          or ``SMALL_NUMEL`` elements, else ``"fused"`` with gradients and ``"no_grad"`` without;
        - ``"plain"`` everywhere else.

        Each call asks again: hooks, autocast, tracing, modes, dtypes and devices can change between calls.
        """
        if _formulation.autocast_on(x):
            return "autocast"
        if _formulation.plain_only():
            return "plain"
        if torch.jit.is_tracing():
            return self._traced_formulation()
        if not _formulation.eager_fast_context(x) or _formulation.hooked(self):
            return "plain"
        if x.shape[2] * x.shape[3] <= SMALL_SIDE_PRODUCT or x.numel() <= SMALL_NUMEL:
            return "small"
        return "fused" if torch.is_grad_enabled() else "no_grad"

    @torch.jit.unused
    def _traced_formulation(self) -> str:
        """``formulation`` in a ``torch.jit.trace``: which exported graph, if the module's state allows one."""
        if self.training or _formulation.hooked(self) or not all(_foldable(g) for g in self._gate_modules()):
            return "plain"  # the trace records every module call, batch statistics and hooks as they are
        target = _compat.export_target()
        if target == ("openvino", False):
            return "export_openvino"
        if target == ("onnx", False) and torch.onnx.is_in_onnx_export():
            return "export_onnx"
        return "export"

    def _gate_modules(self) -> tuple[AttentionGate, ...]:
        """The gates: cw, hc and, unless ``no_spatial``, hw."""
        return (self.cw, self.hc) if self.no_spatial else (self.cw, self.hc, self.hw)

    # ----------------------------------------------------------------------------------------------- the formulations

    def forward_plain(self, x: torch.Tensor) -> torch.Tensor:
        """The paper in code: each gate module called on its Z-pooled map (``gates``), ``x`` scaled by their average.

        Every conv, BatchNorm and sigmoid is a module call, so hooks, profilers (thop, ultralytics' GFLOPs count),
        ``torch.fx``, ``torch.compile`` and ``torch.export`` see each gate; TorchScript compiles this formulation.
        """
        return self._scaled(x, self.gates(x))

    @torch.jit.unused
    def forward_autocast(self, x: torch.Tensor) -> torch.Tensor:
        """``forward_plain`` under autocast, which keeps each gate's weight gradient as accurate as the official
        module's: the gates (in autocast's dtype) are summed in ``x``'s dtype, so their gradients are rounded once,
        after their reduction; with gradients on, the hc gate passes an identity ``index_select``, whose backward hands
        its conv a contiguous gradient (a transposed view would send the bf16 conv's weight gradient down a less
        accurate kernel)."""
        g = self._module_gates(x, torch.is_grad_enabled())
        return self._scaled(x, {k: v.to(x.dtype) for k, v in g.items()})

    @torch.jit.unused
    def forward_fused(self, x: torch.Tensor) -> torch.Tensor:
        """Eager CPU on larger maps: Z-pooling and scaling as memory-lean autograd Functions (``zpool3``,
        ``triplet_scale``), which keep only ``x`` and pooled-size tensors for backward; each gate's conv in oneDNN's
        fastest layout (``_gate``)."""
        handoff = []  # lets the pooling's backward add into the product's fresh input-gradient buffer
        x, *pooled = zpool3(x, not self.no_spatial, handoff)
        g_cw = _gate(self.cw, pooled[0]).transpose(1, 2)  # (B,1,C,W) -> (B,C,1,W)
        g_hc = _gate(self.hc, pooled[1]).permute(0, 3, 2, 1)  # (B,1,H,C) -> (B,C,H,1)
        g_hw = None if self.no_spatial else _gate(self.hw, pooled[2])  # (B,1,H,W)
        return triplet_scale(x, g_cw, g_hc, g_hw, 1 / len(pooled), handoff)

    @torch.jit.unused
    def forward_small(self, x: torch.Tensor) -> torch.Tensor:
        """Eager CPU on small maps, where each kernel call costs more than its arithmetic: plain tensor ops on one
        channels-last copy of ``x``, in which every Z-pool reduces an outer axis and each gate comes out laid out
        for broadcasting against it; the product is put back in ``x``'s memory layout."""
        b, c, h, w = x.shape
        x_last = x.permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)
        s = 1 / len(self._gate_modules())
        g_cw = _gate(self.cw, zpool_last(x_last, 1), transposed=True)  # over H: the (W, C) map; (B,1,W,C)
        g_hc = _gate(self.hc, zpool_last(x_last, 2))  # over W: the (H, C) map; (B,1,H,C)
        scale = g_cw * s + (g_hc * s).reshape(b, h, 1, c)
        if not self.no_spatial:
            scale = scale + (_gate(self.hw, zpool_last(x_last, 3)) * s).reshape(b, h, w, 1)  # (B,1,H,W) -> (B,H,W,1)
        y = (x_last * scale).permute(0, 3, 1, 2)
        return y.contiguous(memory_format=torch.channels_last if _is_channels_last(x) else torch.contiguous_format)

    @torch.jit.unused
    def forward_no_grad(self, x: torch.Tensor) -> torch.Tensor:
        """Eager CPU without gradients: the pooling (``zpool_maps``) and the scaling (``gate_product``, in cache-sized
        slices) as direct kernels, each gate's conv in oneDNN's fastest layout (``_gate``)."""
        pooled = zpool_maps(x, not self.no_spatial)
        g_cw = _gate(self.cw, pooled[0]).transpose(1, 2)  # (B,1,C,W) -> (B,C,1,W)
        g_hc = _gate(self.hc, pooled[1]).permute(0, 3, 2, 1)  # (B,1,H,C) -> (B,C,H,1)
        g_hw = None if self.no_spatial else _gate(self.hw, pooled[2])  # (B,1,H,W)
        return gate_product(x, g_cw, g_hc, g_hw, 1 / len(pooled))

    @torch.jit.unused
    def forward_export(self, x: torch.Tensor) -> torch.Tensor:
        """An eval-mode trace, valid at every input size: each gate's BatchNorm folded into its conv (``_traced_gate``),
        max and mean over each axis by reductions."""
        pooled = [torch.cat((x.amax(d, keepdim=True), x.mean(d, keepdim=True)), d) for d in (2, 3, 1)]
        return self._scaled(x, self._export_gates(*pooled))

    @torch.jit.unused
    def forward_export_openvino(self, x: torch.Tensor) -> torch.Tensor:
        """ultralytics' static-shape OpenVINO export: ``forward_export`` with the max and mean over H and over W as
        pooling whose kernel spans the traced side (OpenVINO pools in its blocked layout; it reduces outside it).
        The graph holds the traced size."""
        _, _, h, w = _static_size(x)
        pooled_c = torch.cat((x.amax(1, keepdim=True), x.mean(1, keepdim=True)), 1)
        return self._scaled(x, self._export_gates(_pool_over_side(x, 2, h), _pool_over_side(x, 3, w), pooled_c))

    def _export_gates(self, pooled_h: torch.Tensor, pooled_w: torch.Tensor, pooled_c: torch.Tensor
                      ) -> dict[str, torch.Tensor]:
        """The gates of an exported graph from the max/mean pairs concatenated on the axis each pooled away.

        Both rotated gates convolve a map whose last axis is C (``cw`` the (W, C) map, its kernel transposed), which
        the runtimes' one-output-channel convolutions run faster than the tall (C, W) map; one transpose rotates each
        pair and one rotates its gate back.
        """
        out = {
            "cw": _traced_gate(self.cw, pooled_h.permute(0, 2, 3, 1), transposed=True).permute(0, 3, 1, 2),  # (W, C)
            "hc": _traced_gate(self.hc, pooled_w.permute(0, 3, 2, 1)).permute(0, 3, 2, 1),  # (H, C)
        }
        if not self.no_spatial:
            out["hw"] = _traced_gate(self.hw, pooled_c)  # (H, W)
        return out

    @torch.jit.unused
    def forward_export_onnx(self, x: torch.Tensor) -> torch.Tensor:
        """ultralytics' static-shape ONNX export, in the operations ONNX Runtime runs fastest; the graph holds the
        traced size.

        - max and mean over H and over W by pooling whose kernel spans the side (ONNX Runtime pools in its blocked
          layout; it reduces outside it);
        - max and mean over C as reductions over the last axis of the channels-last map reshaped to (B·H·W, C) (ONNX
          Runtime reduces the channel axis of an NCHW map several times slower; without the reshape its transpose
          optimizer folds the transpose back into that form);
        - the gates laid out channels-last with the 1/3 (1/2) applied, added by broadcasting and multiplied into the
          channels-last map, which is permuted back at the end.
        """
        b, c, h, w = _static_size(x)
        x_last = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        rows = x_last.reshape(b * h * w, c)
        pooled_c = torch.cat((rows.amax(1, keepdim=True), rows.mean(1, keepdim=True)), 1)  # (B·H·W, 2)
        s = 1 / len(self._gate_modules())
        g_cw = _traced_gate(self.cw, _pool_over_side(x, 2, h).permute(0, 2, 3, 1), transposed=True) * s  # (B,1,W,C)
        g_hc = _traced_gate(self.hc, _pool_over_side(x, 3, w).permute(0, 3, 2, 1)) * s  # (B,1,H,C)
        scale = g_cw + g_hc.reshape(b, h, 1, c)
        if not self.no_spatial:
            g_hw = _traced_gate(self.hw, pooled_c.reshape(b, h, w, 2).permute(0, 3, 1, 2)) * s  # (B,1,H,W)
            scale = scale + g_hw.reshape(b, h, w, 1)
        return (x_last * scale).permute(0, 3, 1, 2)


    @torch.no_grad()
    def init_pass_through(self, bias: float = PASS_THROUGH_BIAS) -> None:
        """Start the gates near 1, so the module passes its input on almost unchanged: y = sigmoid(bias)·x.

        Used when the module is inserted into a pretrained network (``weights.py``): each gate's BN scale is set to 0
        and its shift to ``bias``, so every gate is the constant sigmoid(bias) whatever the input, instead of the
        ≈0.5 a fresh gate gives (which halves the features the next pretrained layer was trained on). The function
        is still the paper's; only the starting values differ. The gates still learn: the BN scale gets a gradient
        at once (∝ sigmoid'(bias)), and the conv weights as soon as that scale moves from 0.

        Args:
            bias (float): The BN shift; the module starts as sigmoid(bias)·x (0.982·x at the default 4).
        """
        for gate in (self.cw, self.hc, getattr(self, "hw", None)):
            if gate is not None:
                gate.conv.bn.weight.zero_()
                gate.conv.bn.bias.fill_(bias)

    def extra_repr(self) -> str:
        """Show the arguments in ``print(model)``."""
        return f"c1={self.c1}, no_spatial={self.no_spatial}, kernel_size={self.kernel_size}"

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

Exports: ultralytics' ONNX, OpenVINO and NCNN exporters record the model with ``torch.jit.trace``. An eval-mode trace
with nothing hooked below the module records the plain gates with each BatchNorm folded into its conv, in the layout
ONNX Runtime and OpenVINO run fastest (``TripletAttention._traced_gates``); it holds no traced size, so dynamic-shape
exports stay right at every size.
"""

from __future__ import annotations

from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

from ._fused import _autocast, gate_conv, hooked, triplet_scale, use_fused, zpool3

__all__ = ("AttentionGate", "ConvBN", "GateBatchNorm2d", "TripletAttention", "zpool")

PASS_THROUGH_BIAS = 4.0  # TripletAttention.init_pass_through: gates start at sigmoid(4) = 0.982


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


def _under_autocast(x: torch.Tensor) -> bool:
    """Whether autocast is on for ``x``'s device, the one context where the gates' dtype differs from ``x``'s.

    False for a ``torch.fx`` Proxy: a traced graph holds the ops of a run without autocast.
    """
    return isinstance(x, torch.Tensor) and _autocast(x.device.type)  # fx: a Proxy


def _low_precision_grad(x: torch.Tensor) -> bool:
    """Whether a gradient may flow through gates computed under autocast.

    Then the hc gate passes an identity ``index_select`` on its way back to (B, C, H, 1): its backward writes the
    gate's gradient into a fresh contiguous buffer, where a transposed view would send the bf16 conv's weight
    gradient down a less accurate kernel (relative error 0.2 vs the official module's 0.007 with torch 2.15; the bf16
    autocast gradient test checks it).
    """
    return torch.is_grad_enabled() and _under_autocast(x)


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


def _gate_no_grad(gate: AttentionGate, pooled: torch.Tensor) -> torch.Tensor:
    """The same gate without autograd: its conv through ``gate_conv``, which is faster on long thin maps.

    In eval mode the BatchNorm is folded into the conv's weight and bias (``_folded``: one conv, no separate BatchNorm
    call; on the small pooled maps each call costs more than its arithmetic).
    """
    folded = _folded(gate)
    if folded is None:
        return gate.conv.bn(gate_conv(pooled, gate.conv.conv.weight)).sigmoid()
    return gate_conv(pooled, *folded).sigmoid_()


def _traced_gate(gate: AttentionGate, pooled: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """sigmoid(conv(pooled)) with the gate's BatchNorm folded into the conv (``_folded``).

    With ``transposed``, ``pooled`` is the transpose of the map the gate's weights are for; the kernel is transposed too
    (a "same" convolution commutes with transposing both map and kernel), so the result is the transposed gate.
    In an ONNX export the 2 -> 1 convolution is written as a depthwise one (each pooled channel with its own kernel)
    and a sum over the two channels, which ONNX Runtime runs faster than a convolution with one output channel.
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
        """Compute the gates, each shaped to broadcast against ``x`` (B, C, H, W).

        Returns:
            (dict[str, torch.Tensor]): ``cw`` (B, C, 1, W), ``hc`` (B, C, H, 1) and, unless ``no_spatial``,
            ``hw`` (B, 1, H, W).
        """
        if not torch.jit.is_scripting():  # TorchScript compiles the formulation below
            if self._traced_eval(x):
                return self._traced_gates(x)
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
        # (as in the official module), not per element of a full-size bf16 sum. Elsewhere the gates have x's dtype
        # already and no cast is made: torch.fx readers such as Sony's MCT (ultralytics' IMX export) refuse Tensor.to.
        cast = True  # TorchScript: no autocast check, the casts as they are
        if not torch.jit.is_scripting():
            cast = _under_autocast(x)
        if cast:
            g = {k: v.to(x.dtype) for k, v in g.items()}
        s = 1 / len(g)  # on the small gates, not on their full-size sum
        scale = g["cw"] * s + g["hc"] * s
        if not self.no_spatial:
            scale = scale + g["hw"] * s
        return x * scale

    @torch.jit.unused
    def _traced_eval(self, x: torch.Tensor) -> bool:
        """Whether ``torch.jit.trace`` (and so ``torch.onnx.export``, OpenVINO's and PNNX's converters) records an
        eval-mode forward with nothing hooked below the module and no autocast: then ``gates`` records the
        formulation the runtimes of exported graphs execute fastest (``_traced_gates``)."""
        if not torch.jit.is_tracing() or self.training or _under_autocast(x) or hooked(self):
            return False
        gates = (self.cw, self.hc) if self.no_spatial else (self.cw, self.hc, self.hw)
        return all(_foldable(g) for g in gates)  # a check only: folding here would be recorded in the trace

    @torch.jit.unused
    def _traced_gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``gates`` for an exported eval-mode graph: the same gates, in the layout the runtimes run fastest.

        Each gate's BatchNorm is folded into its conv (what ultralytics' ``fuse()`` does for its own Conv layers). Both
        rotated gates convolve a map whose last axis is C, which ONNX Runtime's and OpenVINO's convolutions of one
        output channel run faster than the tall (C, W) map (``cw`` with its kernel transposed for that). Each pooled
        pair is concatenated on the axis it pooled away, so one transpose rotates it and one rotates the gate back.
        """

        def pool(d: int) -> torch.Tensor:  # (max, mean) over axis d, concatenated along d
            return torch.cat((x.amax(d, keepdim=True), x.mean(d, keepdim=True)), d)

        out = {
            "cw": _traced_gate(self.cw, pool(2).permute(0, 2, 3, 1), transposed=True).permute(0, 3, 1, 2),  # (W, C)
            "hc": _traced_gate(self.hc, pool(3).permute(0, 3, 2, 1)).permute(0, 3, 2, 1),  # (H, C)
        }
        if not self.no_spatial:
            out["hw"] = _traced_gate(self.hw, pool(1))  # (H, W)
        return out

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

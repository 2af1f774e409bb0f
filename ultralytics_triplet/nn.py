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

One function, several formulations, each a ``forward_<name>`` method: ``forward_plain`` is the paper's; the others
compute the same function as their context runs it fastest (eager CPU: ``_eager.py``; exported graphs: ``_export.py``).
``formulation.FORMULATIONS`` lists them, and the tests check every one against ``forward_plain``.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import nn

from . import _eager, _export, _probes
from .formulation import SMALL_NUMEL, SMALL_SIDE_PRODUCT, get_formulation

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


_LEGACY_GATES = {"ChannelGateH": "cw", "ChannelGateW": "hc", "SpatialGate": "hw"}  # tutorial name -> official name
_FORMS = ("[], [no_spatial] e.g. [True], [channels] e.g. [1024], [channels, no_spatial] e.g. [1024, True], "
          "[channels, no_spatial, kernel_size]")


def _usage(problem: str) -> str:
    """One-line TypeError message: what was wrong and the accepted argument forms."""
    return f"TripletAttention: {problem}; accepted YAML args: {_FORMS}"


class TripletAttention(nn.Module):
    """Triplet Attention (Misra et al., WACV 2021): three rotated gates, averaged.

    Channel-preserving and channel-agnostic: a YAML row needs no arguments. ultralytics passes a row's args as
    written (``TripletAttention(*args)``), and the forms found in the wild are all accepted: ``[]`` (defaults),
    ``[True]`` / ``[False]`` (``no_spatial``, the official root signature), ``[1024]`` (the channel count, recorded
    only: the tutorial's signature), ``[1024, True]`` (channels, ``no_spatial``) and ``[1024, False, 5]`` (channels,
    ``no_spatial``, ``kernel_size``). A bool first argument is ``no_spatial`` and must stand alone; an int first
    argument is the channel count. Anything else (``[True, 1024]``, ``[1024, 1024]``, the tutorial's
    ``reduction_ratio`` as in ``[1024, 16]``, strings, floats) is refused with a TypeError that lists these forms.

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

    # (format, dynamic) of the ultralytics export preparing this module: set by the exporter (integration.py), removed
    # after it, as ultralytics sets `export`/`format` on its heads; it picks the graph a trace records (_export.py)
    export_target = None

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

    def scale_by(self, x: torch.Tensor, gates: dict[str, torch.Tensor]) -> torch.Tensor:
        """``x`` times the average of its broadcast ``gates``; the 1/3 (1/2) scales the small gates, not their sum."""
        s = 1 / len(gates)
        scale = gates["cw"] * s + gates["hc"] * s
        if not self.no_spatial:
            scale = scale + gates["hw"] * s
        return x * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``x`` by the average of its gates, in the formulation ``formulation(x)`` names (``forward_<name>``)."""
        if torch.jit.is_scripting():  # TorchScript compiles the plain formulation alone
            return self.forward_plain(x)
        return getattr(self, f"forward_{self.formulation(x)}")(x)

    @torch.jit.unused
    def formulation(self, x: torch.Tensor) -> str:
        """The formulation ``forward`` runs for ``x`` (a name in ``formulation.FORMULATIONS``), chosen here only, every
        call, from what can change between calls (autocast, the switch, tracing, hooks, the input, gradient mode)."""
        if _probes.autocast_on(x):
            return "autocast"
        if get_formulation() == "plain":
            return "plain"
        if torch.jit.is_tracing():
            return self._traced_formulation()
        if not _probes.eager_fast_context(x) or _probes.hooked(self):
            return "plain"
        if x.shape[2] * x.shape[3] <= SMALL_SIDE_PRODUCT or x.numel() <= SMALL_NUMEL:
            return "small"
        return "fused" if torch.is_grad_enabled() else "no_grad"

    @torch.jit.unused
    def _traced_formulation(self) -> str:
        """``formulation`` in a ``torch.jit.trace``: the graph for ``export_target`` if the module's state allows it."""
        if self.training or _probes.hooked(self) or not _export.foldable(self):
            return "plain"  # the trace records every module call, batch statistics and hooks as they are
        return _export.graph_for(self.export_target)

    # ----------------------------------------------------------------------------------------------- the formulations

    def forward_plain(self, x: torch.Tensor) -> torch.Tensor:
        """The paper in code: each gate module called on its Z-pooled map (``gates``), ``x`` scaled by their average.

        Every conv, BatchNorm and sigmoid is a module call, so hooks, profilers (thop, ultralytics' GFLOPs count),
        ``torch.fx``, ``torch.compile`` and ``torch.export`` see each gate; TorchScript compiles this formulation.
        """
        return self.scale_by(x, self.gates(x))

    @torch.jit.unused
    def forward_autocast(self, x: torch.Tensor) -> torch.Tensor:
        """``forward_plain`` under autocast, each gate's weight gradient as accurate as the official module's: the gates
        are summed in ``x``'s dtype, so their gradients are rounded once, after their reduction; with gradients on, the
        hc gate passes an identity ``index_select``, whose backward hands its conv a contiguous gradient (a transposed
        view would send the bf16 conv's weight gradient down a less accurate kernel)."""
        g = self._module_gates(x, torch.is_grad_enabled())
        return self.scale_by(x, {k: v.to(x.dtype) for k, v in g.items()})

    # The formulations for other contexts, each a function of (module, x) in a module named for its context: the eager
    # CPU ones (_eager.py) and the graphs an export records (_export.py); `formulation` says which runs when.
    forward_small = torch.jit.unused(_eager.small)
    forward_fused = torch.jit.unused(_eager.fused)
    forward_no_grad = torch.jit.unused(_eager.no_grad)
    forward_export = torch.jit.unused(_export.export)
    forward_export_onnx = torch.jit.unused(_export.export_onnx)
    forward_export_openvino = torch.jit.unused(_export.export_openvino)

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

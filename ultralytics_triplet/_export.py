"""The graphs an export of TripletAttention records: ``export``, ``export_onnx`` and ``export_openvino`` (see
``formulation.FORMULATIONS``).

ultralytics' exports (ONNX, OpenVINO, NCNN, TorchScript, CoreML, ...) record the model with ``torch.jit.trace``. A trace
of an eval-mode module whose gates' BatchNorms use running statistics records one of these: each gate's BatchNorm
folded into its convolution (:func:`folded`), in the operations the target runtime runs fastest. ``export`` holds no
traced size; ``export_onnx`` and ``export_openvino``, for ultralytics' static-shape exports (``export_target``, which
the exporter sets on each module), hold it in their pooling kernels and reshapes. Each is a function of the module and
its input, run by the class's ``forward_<name>`` method; the tests compare them with ``forward_plain``.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

__all__ = ("export", "export_onnx", "export_openvino", "foldable", "graph_for")


def foldable(m) -> bool:
    """Whether each gate's BatchNorm is an affine map with fixed statistics (eval mode, running statistics)."""
    gates = (m.cw, m.hc) if m.no_spatial else (m.cw, m.hc, m.hw)
    return all(not bn.training and bn.running_mean is not None and bn.running_var is not None and bn.affine
               for bn in (g.conv.bn for g in gates))


def graph_for(target: tuple[str, bool] | None) -> str:
    """The formulation a foldable module's trace records for its export target ``(format, dynamic)`` (or None)."""
    if target == ("openvino", False):
        return "export_openvino"
    if target == ("onnx", False) and torch.onnx.is_in_onnx_export():
        return "export_onnx"
    return "export"


def folded(gate: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The gate's conv weight and bias with its eval-mode BatchNorm folded in (its module must be :func:`foldable`).

    In eval mode the BatchNorm is an affine map with fixed statistics: BN(conv(p)) = conv(p, w·a) + (β − μ·a) with
    a = γ / sqrt(σ² + ε). A float16 or bfloat16 gate is folded in float32, then cast back.
    """
    conv, bn = gate.conv.conv, gate.conv.bn
    dtype = conv.weight.dtype
    low = dtype in (torch.float16, torch.bfloat16)
    w, gamma, beta, mean, var = (t.float() if low else t for t in (conv.weight, bn.weight, bn.bias, bn.running_mean,
                                                                   bn.running_var))
    scale = gamma * (var + bn.eps).rsqrt()
    weight, bias = w * scale.view(-1, 1, 1, 1), beta - mean * scale
    return (weight.to(dtype), bias.to(dtype)) if low else (weight, bias)


def _gate(gate: torch.nn.Module, pooled: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """sigmoid(conv(pooled)) with the gate's BatchNorm folded into the conv, for an exported graph.

    With ``transposed``, ``pooled`` is the transpose of the map the gate's weights are for, and so is the result. In an
    ONNX export the 2 -> 1 convolution is written as a depthwise one (each pooled channel with its own kernel) and a
    sum over the two channels, which ONNX Runtime runs faster than a convolution with one output channel.
    """
    weight, bias = folded(gate)
    if transposed:
        weight = weight.transpose(2, 3)
    padding = gate.conv.conv.padding
    if torch.onnx.is_in_onnx_export():
        per_channel = F.conv2d(pooled, weight.reshape(2, 1, *weight.shape[2:]), padding=padding, groups=2)
        return (per_channel.sum(1, keepdim=True) + bias.view(1, 1, 1, 1)).sigmoid()
    # The bias is added after the convolution, not passed to it: a folded bias is computed, not a parameter, and
    # X2Paddle (ultralytics' PaddlePaddle export) reads a convolution's bias only as a constant or a parameter.
    return (F.conv2d(pooled, weight, padding=padding) + bias.view(1, 1, 1, 1)).sigmoid()


def _gates(m, pooled_h: torch.Tensor, pooled_w: torch.Tensor, pooled_c: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gates from the max/mean pairs concatenated on the axis each pooled away, shaped to broadcast against x.

    Both rotated gates convolve a map whose last axis is C (``cw`` the (W, C) map, its kernel transposed), which the
    runtimes' one-output-channel convolutions run faster than the tall (C, W) map; one transpose rotates each pair and
    one rotates its gate back.
    """
    out = {
        "cw": _gate(m.cw, pooled_h.permute(0, 2, 3, 1), transposed=True).permute(0, 3, 1, 2),  # (W, C) -> (B,C,1,W)
        "hc": _gate(m.hc, pooled_w.permute(0, 3, 2, 1)).permute(0, 3, 2, 1),  # (H, C) -> (B,C,H,1)
    }
    if not m.no_spatial:
        out["hw"] = _gate(m.hw, pooled_c)  # (H, W): (B,1,H,W)
    return out


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


def export(m, x: torch.Tensor) -> torch.Tensor:
    """An eval-mode trace, valid at every input size: max and mean over each axis by reductions."""
    pooled = [torch.cat((x.amax(d, keepdim=True), x.mean(d, keepdim=True)), d) for d in (2, 3, 1)]
    return m.scale_by(x, _gates(m, *pooled))


def export_openvino(m, x: torch.Tensor) -> torch.Tensor:
    """ultralytics' static-shape OpenVINO export: :func:`export` with the max and mean over H and over W as pooling
    whose kernel spans the traced side (OpenVINO pools in its blocked layout; it reduces outside it)."""
    _, _, h, w = _static_size(x)
    pooled_c = torch.cat((x.amax(1, keepdim=True), x.mean(1, keepdim=True)), 1)
    return m.scale_by(x, _gates(m, _pool_over_side(x, 2, h), _pool_over_side(x, 3, w), pooled_c))


def export_onnx(m, x: torch.Tensor) -> torch.Tensor:
    """ultralytics' static-shape ONNX export, in the operations ONNX Runtime runs fastest.

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
    s = 1 / (2 if m.no_spatial else 3)
    g_cw = _gate(m.cw, _pool_over_side(x, 2, h).permute(0, 2, 3, 1), transposed=True) * s  # (B,1,W,C)
    g_hc = _gate(m.hc, _pool_over_side(x, 3, w).permute(0, 3, 2, 1)) * s  # (B,1,H,C)
    scale = g_cw + g_hc.reshape(b, h, 1, c)
    if not m.no_spatial:
        g_hw = _gate(m.hw, pooled_c.reshape(b, h, w, 2).permute(0, 3, 1, 2)) * s  # (B,1,H,W)
        scale = scale + g_hw.reshape(b, h, w, 1)
    return (x_last * scale).permute(0, 3, 1, 2)

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


def _stacked(pieces: tuple[torch.Tensor, ...], b: int, *tail: int) -> torch.Tensor:
    """``pieces``, each holding the B images one after another along its first axis, as one (B, len(pieces), *tail)
    tensor: one concatenation and one reshape (and, for more than one image, one transpose)."""
    t = torch.cat(pieces, 0)
    return t.reshape(1, len(pieces), *tail) if b == 1 else t.reshape(len(pieces), b, *tail).transpose(0, 1)


def _padded(t: torch.Tensor, b: int, n: int, side: int) -> torch.Tensor:
    """(B·n, C) rows, each image's n rows followed by side − n rows of zeros: (B·side, C)."""
    if n == side:
        return t
    c = t.shape[-1]
    return torch.cat((t.reshape(b, n, c), t.new_zeros(b, side - n, c)), 1).reshape(b * side, c)


def _rotated_gates(m, over_h: tuple[torch.Tensor, torch.Tensor], over_w: tuple[torch.Tensor, torch.Tensor],
                   size: tuple[int, int, int, int], s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The cw and hc gates times ``s`` from the max/mean pairs over H ((B·W, C) each) and over W ((B·H, C) each) of a
    map of ``size`` (B, C, H, W).

    Both gates' maps are stacked (the shorter side padded with zeros, which is what the convolution's own padding
    reads) and convolved by one depthwise convolution of the four maps; one grouped 1×1 convolution sums each gate's two
    and adds its folded bias, and the sigmoid after it fuses into it. Returns the gates shaped to broadcast against the
    channels-last map: cw (B, 1, W, C), hc (B, H, 1, C).
    """
    b, c, h, w = size
    side = max(h, w)
    pooled = _stacked((*(_padded(t, b, w, side) for t in over_h), *(_padded(t, b, h, side) for t in over_w)),
                      b, side, c)  # (B, 4, side, C): the (W, C) maps of cw, then the (H, C) maps of hc
    (w_cw, b_cw), (w_hc, b_hc) = folded(m.cw), folded(m.hc)
    k = m.kernel_size  # a plain int: older tracers record a weight's shape as a tensor, which padding refuses
    kernels = torch.cat((w_cw.transpose(2, 3), w_hc), 0).reshape(4, 1, k, k)  # cw's (C, W) kernel on its (W, C) map
    per_map = F.conv2d(pooled, kernels, padding=k // 2, groups=4)
    ones = torch.ones(2, 2, 1, 1, dtype=pooled.dtype, device=pooled.device)
    g_cw, g_hc = (F.conv2d(per_map, ones, torch.cat((b_cw, b_hc)), groups=2).sigmoid() * s).split(1, 1)
    if w < side:
        g_cw = g_cw[:, :, :w]
    if h < side:
        g_hc = g_hc[:, :, :h]
    return g_cw, g_hc.reshape(b, h, 1, c)


def export_onnx(m, x: torch.Tensor) -> torch.Tensor:
    """ultralytics' static-shape ONNX export, in few nodes and the operations ONNX Runtime runs fastest.

    - the statistics over W and over C as reductions of the inner axes of one channels-last copy of ``x`` seen as rows
      (B·H, W, C), reshaped so that ONNX Runtime's transpose optimizer does not move the transpose after the reductions
      (it would reduce the channel axis of an NCHW map, several times slower); over H by pooling whose kernel spans H
      (ONNX Runtime pools in its blocked layout; it reduces an outer axis slowly), each pooled map converted
      channels-last in the same step;
    - the cw and hc gates' convolutions as one depthwise convolution of their four maps, which ONNX Runtime runs in its
      blocked layout, and one grouped 1×1 convolution with the sigmoid after it (:func:`_rotated_gates`);
    - the hw gate's convolution over a 5-D map: a 4-D one with one output channel would be made a blocked convolution
      with 16 output channels, twice as slow;
    - each BatchNorm folded into the convolution before its sigmoid (Conv + sigmoid is one fused kernel), the gates
      times 1/3 (1/2), added by broadcasting in the order ONNX Runtime adds fastest, multiplied into the channels-last
      map, which is permuted back at the end.
    """
    b, c, h, w = _static_size(x)
    s = 1 / (2 if m.no_spatial else 3)
    x_last = x.permute(0, 2, 3, 1)  # (B, H, W, C)
    rows = x_last.reshape(b * h, w, c)
    over_h = tuple(pool(x, (h, 1)).permute(0, 2, 3, 1).reshape(b * w, c) for pool in (F.max_pool2d, F.avg_pool2d))
    g_cw, g_hc = _rotated_gates(m, over_h, (rows.amax(1), rows.mean(1)), (b, c, h, w), s)
    scale = g_hc
    if not m.no_spatial:
        weight, bias = folded(m.hw)
        k = m.kernel_size
        pooled_c = _stacked((rows.amax(2), rows.mean(2)), b, 1, h, w)  # (B, 2, 1, H, W)
        g_hw = F.conv3d(pooled_c, weight.unsqueeze(2), bias, padding=(0, k // 2, k // 2)).sigmoid() * s
        scale = g_hw.reshape(b, h, w, 1) + scale
    return (x_last * (scale + g_cw)).permute(0, 3, 1, 2)

"""Kernels of TripletAttention's eager CPU formulations: its two full-size steps, as memory-lean autograd Functions and
without autograd.

Only two steps touch tensors the size of ``x``: Z-pooling ``x`` and scaling ``x`` by its gates. The 7×7 convs,
BatchNorms and sigmoids run on pooled maps that are a fraction of that size and stay in ordinary autograd. Each
Function here saves ``x`` (already alive as the layer's input) plus small pooled-size tensors, and rebuilds what it
needs in ``backward`` with a few passes over fresh buffers, instead of letting autograd keep full-size intermediates
(permuted copies, broadcast products).

Functions:
    zpool3(x, spatial): ``x`` and its three Z-pools (over H, over W, and over C when ``spatial``) in one Function.
    triplet_scale(x, a, b, c, scale): ``x * (a + b + c) * scale`` with broadcast gates, saving only ``x`` and gates.
    zpool_maps, gate_product: the same two steps without autograd.

Full-size passes run a few samples at a time (about ``_SLICE_BYTES`` of ``x``), so the buffers a step reads back
are still in cache. These serve the eager formulations ``fused`` and ``no_grad`` (``_eager.py``), which run only where
the tests compare them with the plain formulation (see ``TripletAttention.formulation``). A backward run with
``create_graph=True`` differentiates the plain formulation of its step, so higher-order gradients are the plain ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ("gate_product", "triplet_scale", "zpool3", "zpool_last", "zpool_maps")

_SLICE_BYTES = 1 << 20  # bytes of x per slice in the full-size loops: about half a core's L2 on current x86
_LAST_POOL_POSITIONS = 1024  # zpool_maps pools maps of at most this many positions (H·W) from a channels-last copy


def _amax_h(x: torch.Tensor) -> torch.Tensor:
    """Max over H of a (B, C, H, W) tensor, shape (B, C, W).

    ``amax`` over a middle axis is slow on CPU; a NCHW-contiguous ``x`` is the channels-last layout of a
    (B·C, W, H, 1) tensor, whose H-pooling the vectorized channels-last max-pool kernel does in one read.
    """
    b, c, h, w = x.shape
    if x.is_contiguous() and w > 1 and x.device.type == "cpu":
        v = x.as_strided((b * c, w, h, 1), (h * w, 1, w, w))
        return F.max_pool2d(v, (h, 1)).view(b, c, w)
    if x.is_contiguous(memory_format=torch.channels_last) and x.device.type == "cpu":
        return F.max_pool2d(x, (h, 1)).view(b, c, w)
    return x.amax(2)


def _amax_w(x: torch.Tensor) -> torch.Tensor:
    """Max over W of a (B, C, H, W) tensor, shape (B, C, H)."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() and x.device.type == "cpu":
        return F.max_pool2d(x, (1, x.shape[3])).view(x.shape[:3])
    return x.amax(3)


class _ZPool3(torch.autograd.Function):
    """Z-pools over H, W (and C): max and mean stacked on a new axis 1, as the three gates consume them.

    Forward: max_d x and mean_d x for d in (H, W, C); saves x and the pooled maps it returns, nothing full-size.
    Backward: dx = g_x + Σ_d [ g_mean,d / |d| + g_max,d · 1[x = max_d x] / #ties_d ], each term broadcast along d
    (ties share the gradient evenly, exactly as ``torch.amax``'s backward does).

    ``x`` itself is passed through as the first output and the gates' product consumes that alias, so its gradient
    g_x arrives here and the pooling terms are added to it in place: no separate full-size pooling gradient, and no
    accumulation pass by the autograd engine. In place only when g_x is the very buffer ``_TripletScale.backward``
    created and reported through the shared ``handoff`` list; any other incoming gradient is left untouched.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, spatial: bool, handoff: list | None):
        """Return x, then the maps of ``zpool_maps``, laid out for the gates' convolutions to save them."""
        out = zpool_maps(x, spatial, channels_last=True)
        ctx.save_for_backward(x, *out)
        ctx.handoff, ctx.spatial = handoff, spatial
        return (x, *out)  # autograd returns x as a view of itself with this Function as its grad_fn

    @staticmethod
    def backward(ctx, g_x: torch.Tensor | None, *grads: torch.Tensor | None):
        """Add each pooled map's gradient, spread back over the axis it pooled away, to g_x (see class docstring)."""
        if not ctx.needs_input_grad[0]:
            return None, None, None
        x, *pooled = ctx.saved_tensors
        owned = ctx.handoff is not None and g_x is not None and g_x.data_ptr() in ctx.handoff
        if ctx.handoff is not None:
            ctx.handoff.clear()
        if torch.is_grad_enabled():  # backward(create_graph=True): the plain ops' gradient, itself differentiable
            return _plain_grad(lambda t: (t, *_plain_zpool3(t, ctx.spatial)), (x,), (g_x, *grads)) + (None,) * 2
        if owned:
            gx = g_x
        elif g_x is None:
            gx = torch.zeros_like(x)
        else:
            gx = torch.empty_like(x).copy_(g_x)
        c, h, w = x.shape[1:]
        # (max map, grad of max, grad of mean / axis length, axis pooled away), each shaped (B, C|1, H|1, W|1) and
        # laid out like x so the full-size loops below run contiguous, for every map that got a gradient.
        terms = []
        for i, (p, g, d, n) in enumerate(zip(pooled, grads, (2, 3, 1), (h, w, c))):
            if g is not None:
                p, g = (p, g) if i != 1 else (p.transpose(2, 3), g.transpose(2, 3))  # hc maps: (B,2,H,C) -> C,H
                m, g_max, g_mean = (_like(t.unsqueeze(d), x) for t in (p[:, 0], g[:, 0], g[:, 1] / n))
                terms.append((m, g_max, g_mean, d))
        if not terms:
            return gx, None, None
        scratch = torch.empty_like(x[: _slice_len(x)])  # the mask, for one slice at a time
        for sl in _slices(x):
            xi, gi, mask = x[sl], gx[sl], scratch[: sl.stop - sl.start]
            for _, _, g_mean, _ in terms:  # mean parts: broadcast adds
                gi.add_(g_mean[sl])
            for m, g_max, _, d in terms:  # max parts: mask of the maximal positions (float), ties counted per line
                torch.eq(xi, m[sl], out=mask)
                gi.addcmul_(mask, g_max[sl] / mask.sum(d, keepdim=True))
        return gx, None, None


class _TripletScale(torch.autograd.Function):
    """y = x · (a + b + c) · scale, with gates a (B,C,1,W), b (B,C,H,1), c (B,1,H,W) broadcast against x.

    Forward: one fresh buffer, filled in place; saves x and the gates only (the full-size sum is never kept).
    Backward: dx = g · (a + b + c) · scale (rebuilt in place); da, db, dc = scale · Σ(g · x) over the broadcast axes.
    """

    @staticmethod
    def forward(ctx, x, a, b, c, scale: float, handoff: list | None):
        """Scale ``x`` by the average of its broadcast gates."""
        ctx.scale, ctx.handoff = scale, handoff
        ctx.save_for_backward(x, a, b, c)
        return gate_product(x, a, b, c, scale)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        """Gradients for x and for each gate (see class docstring)."""
        x, a, b, c = ctx.saved_tensors
        if torch.is_grad_enabled():  # backward(create_graph=True): the plain ops' gradient, itself differentiable
            s = ctx.scale
            if c is None:
                return _plain_grad(lambda x, a, b: (x * ((a + b) * s),), (x, a, b), (g,), ctx) + (None,) * 3
            return _plain_grad(lambda x, a, b, c: (x * ((a + b + c) * s),), (x, a, b, c), (g,), ctx) + (None,) * 2
        need_x = ctx.needs_input_grad[0]
        # For each gate that needs a gradient: (gate index, the axis it broadcasts over, a buffer for its gradient).
        wanted = [
            (i, d, x.new_empty(t.shape))
            for i, (t, d) in enumerate(((a, 2), (b, 3), (c, 1)))
            if t is not None and ctx.needs_input_grad[1 + i]
        ]
        gx = torch.empty_like(x) if need_x else None
        gates = _scaled(x, ctx.scale, a, b, c) if need_x else ()
        scratch = torch.empty_like(x[: _slice_len(x)]) if wanted else None  # g·x, for one slice at a time
        for sl in _slices(x):
            if wanted:
                p = torch.mul(g[sl], x[sl], out=scratch[: sl.stop - sl.start])
                for _, d, out in wanted:
                    torch.sum(p, d, keepdim=True, out=out[sl])
            if need_x:
                _mul_gate_sum(gx[sl], g[sl], *(t[sl] for t in gates))
        if need_x and ctx.handoff is not None:
            ctx.handoff.append(gx.data_ptr())  # a fresh buffer that _ZPool3.backward may add into
        grads = [None, None, None]
        for i, _, out in wanted:
            grads[i] = out.mul_(ctx.scale)
        return (gx, *grads, None, None)


def _plain_zpool3(x: torch.Tensor, spatial: bool) -> tuple[torch.Tensor, ...]:
    """What ``_ZPool3`` returns after ``x``, in plain differentiable ops."""
    maps = [torch.stack((x.amax(2), x.mean(2)), 1), torch.stack((x.amax(3), x.mean(3)), 1).transpose(2, 3)]
    return (*maps, torch.stack((x.amax(1), x.mean(1)), 1)) if spatial else tuple(maps)


def _plain_grad(fn, inputs: tuple, grads: tuple, ctx=None) -> tuple:
    """Vector-Jacobian product of ``fn(*inputs)`` with ``grads``, as a differentiable graph (for create_graph).

    Returns one gradient per input (None where ``ctx`` says it is not needed or it does not depend on the outputs).
    """
    need = [t is not None and (ctx is None or ctx.needs_input_grad[i]) for i, t in enumerate(inputs)]
    with torch.enable_grad():
        outs = fn(*inputs)
        pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
        wrt = [t for t, n in zip(inputs, need) if n]
        if not pairs or not wrt:
            return tuple(None for _ in inputs)
        outs, grads = zip(*pairs)
        got = iter(torch.autograd.grad(outs, wrt, grads, create_graph=True, allow_unused=True))
    return tuple(next(got) if n else None for n in need)


def _scaled(x: torch.Tensor, scale: float, *gates: torch.Tensor | None) -> list[torch.Tensor]:
    """The gates times ``scale``, laid out like ``x`` (see ``_like``); None gates dropped."""
    return [_like(t * scale, x) for t in gates if t is not None]


def _mul_gate_sum(out: torch.Tensor, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c=None) -> torch.Tensor:
    """out = x · (a + b + c), in place in ``out``: three passes over a slice small enough to stay in cache."""
    torch.add(a, b, out=out)
    if c is not None:
        out.add_(c)
    return out.mul_(x)


def _slice_len(x: torch.Tensor) -> int:
    """Samples per slice of the full-size loops: about ``_SLICE_BYTES`` of x, at least one sample (CPU only)."""
    if x.device.type != "cpu":  # on an accelerator every slice is a kernel launch: one slice
        return max(1, len(x))
    per_sample = x[0].numel() * x.element_size() if len(x) else 1
    return max(1, min(len(x), _SLICE_BYTES // max(1, per_sample)))


def _slices(x: torch.Tensor) -> list[slice]:
    """Slices of the batch axis, ``_slice_len(x)`` samples each (the last may be shorter)."""
    n = _slice_len(x)
    return [slice(i, min(i + n, len(x))) for i in range(0, len(x), n)]


def _like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A small broadcastable 4-D map laid out like ``x`` (contiguous along x's innermost axis), copied if needed.

    Full-size elementwise loops vectorize only when every operand is unit-stride (or broadcast) along that axis.
    """
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return t.contiguous(memory_format=torch.channels_last)
    return t.contiguous()


def _stacked(pair: tuple[torch.Tensor, torch.Tensor], channels_last: bool) -> torch.Tensor:
    """Max and mean maps (B, R, S) stacked as channels 0 and 1 of a (B, 2, R, S) map, laid out so that the orientation
    a gate convolves it in (its longer side last) is contiguous or, with ``channels_last``, channels-last."""
    tall = pair[0].shape[1] > pair[0].shape[2]
    if tall:
        pair = tuple(t.transpose(1, 2) for t in pair)
    out = torch.stack(pair, -1).permute(0, 3, 1, 2) if channels_last else torch.stack(pair, 1)
    return out.transpose(2, 3) if tall else out


def zpool_last(x_last: torch.Tensor, dim: int, channels_last: bool = False) -> torch.Tensor:
    """Z-pool of a channels-last map ``x_last`` (B, H, W, C) over ``dim``: (B, 2, ., .), the other axes in order."""
    return _stacked((x_last.amax(dim), x_last.mean(dim)), channels_last)


def zpool_maps(x: torch.Tensor, spatial: bool = True, channels_last: bool = False) -> tuple[torch.Tensor, ...]:
    """The Z-pooled maps of ``x`` (B, C, H, W): (B,2,C,W) pooled over H, (B,2,H,C) pooled over W and, when
    ``spatial``, (B,2,H,W) pooled over C; channel 0 of each is the max, channel 1 the mean.

    On maps of at most ``_LAST_POOL_POSITIONS`` positions the pools are taken from one channels-last copy of ``x``,
    where each reduces an outer axis (vectorized along C); on larger maps, where the copy costs more than it saves,
    from ``x`` itself. Each map is laid out for its gate's convolution (``_stacked``); with ``channels_last``, in the
    layout the convolutions train on, so that they save these very tensors for backward instead of copies.
    """
    if x.shape[2] * x.shape[3] <= _LAST_POOL_POSITIONS:
        x_last = x.permute(0, 2, 3, 1).contiguous()  # (B, H, W, C); no copy for a channels-last x
        pairs = [(x_last.amax(1).transpose(1, 2), x_last.mean(1).transpose(1, 2)), (x_last.amax(2), x_last.mean(2))]
        if spatial:
            pairs.append((x_last.amax(3), x_last.mean(3)))
    else:
        pairs = [(_amax_h(x), x.mean(2)), (_amax_w(x).transpose(1, 2), x.mean(3).transpose(1, 2))]
        if spatial:
            pairs.append((x.amax(1), x.mean(1)))
    return tuple(_stacked(p, channels_last) for p in pairs)


def gate_product(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None,
                 scale: float = 1.0) -> torch.Tensor:
    """``x * (a + b + c) * scale`` without autograd, in a fresh buffer, a few samples at a time (see ``triplet_scale``
    for the shapes)."""
    gates = _scaled(x, scale, a, b, c)
    y = torch.empty_like(x)
    for sl in _slices(x):
        _mul_gate_sum(y[sl], x[sl], *(t[sl] for t in gates))
    return y


def zpool3(x: torch.Tensor, spatial: bool = True, handoff: list | None = None) -> tuple[torch.Tensor, ...]:
    """Z-pool ``x`` (B, C, H, W) for all gates at once; see ``_ZPool3``.

    Args:
        x (torch.Tensor): Input of shape (B, C, H, W), any memory layout.
        spatial (bool): Also pool over C, for the spatial (H-W) gate.
        handoff (list | None): The same empty list given to ``triplet_scale`` when the alias of ``x`` feeds it.

    Returns:
        (tuple[torch.Tensor, ...]): ``x`` (an alias to compute with in its place, see ``_ZPool3``), then (B,2,C,W)
        pooled over H, (B,2,H,C) pooled over W and, when ``spatial``, (B,2,H,W) pooled over C; channel 0 of each
        map is the max, channel 1 the mean.
    """
    return _ZPool3.apply(x, spatial, handoff)


def triplet_scale(
    x: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor | None = None,
    scale: float = 1.0,
    handoff: list | None = None,
) -> torch.Tensor:
    """Return ``x * (a + b + c) * scale`` for gates broadcastable to ``x``; see ``_TripletScale``.

    Args:
        x (torch.Tensor): Input of shape (B, C, H, W).
        a, b, c (torch.Tensor): Gates of shapes (B, C, 1, W), (B, C, H, 1) and (B, 1, H, W); ``c`` may be None.
        scale (float): Factor applied to the gate sum (1/3 for three gates).
        handoff (list | None): The list given to the ``zpool3`` call that produced this ``x``, if it did.
    """
    for t in (a, b, c):
        if t is not None and (t.dim() != 4 or t.shape[0] != x.shape[0]):
            raise ValueError(f"triplet_scale gates need x's batch size {x.shape[0]} and 4 dims, got {tuple(t.shape)}")
    return _TripletScale.apply(x, a, b, c, scale, handoff)

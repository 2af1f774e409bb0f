"""The fast path against the plain formulation in every mode this machine runs, and the tools that need the plain one.

Each comparison runs two copies of one module: one as users run it (fast path where verified), one inside
``_fused.plain()``. A spy on ``TripletAttention._forward_fused`` shows which path ran, so no comparison is vacuous.
No GPU here: CUDA and CUDA AMP are not tested (the fast path does not run on them, see ``use_fused``).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from ultralytics_triplet import _fused
from ultralytics_triplet._fused import triplet_scale, zpool3
from ultralytics_triplet.nn import TripletAttention

from reference import pair


@pytest.fixture
def fast_calls(monkeypatch) -> list:
    """A list that gets one entry per call of the fast path."""
    calls, original = [], TripletAttention._forward_fused

    def spy(self, x):
        calls.append(tuple(x.shape))
        return original(self, x)

    monkeypatch.setattr(TripletAttention, "_forward_fused", spy)
    return calls


def twins(no_spatial: bool = False, dtype=torch.float32, seed: int = 0) -> tuple[TripletAttention, TripletAttention]:
    """Two TripletAttention modules with the same random weights and BN statistics."""
    _, m = pair(no_spatial, seed=seed)
    m = m.to(dtype)
    return m, copy.deepcopy(m)


def run(m: TripletAttention, x: torch.Tensor, w: torch.Tensor, grad: bool, plain: bool) -> dict:
    """Forward (and backward of ``(y * w).sum()`` when ``grad``); returns output, gradients and buffers."""
    x = x.clone().requires_grad_(grad)
    with _fused.plain() if plain else torch.enable_grad(), torch.set_grad_enabled(grad):
        y = m(x)
    if grad:
        (y * w).sum().backward()
    out = {"y": y.detach(), **{f"buffer {n}": b.clone() for n, b in m.named_buffers()}}
    if grad:
        out["x.grad"] = x.grad
        out.update({f"grad {n}": p.grad for n, p in m.named_parameters()})
    return out


MODES = {  # name: (dtype, memory format, train, grad)
    "fp32 train": (torch.float32, torch.contiguous_format, True, True),
    "fp64 train": (torch.float64, torch.contiguous_format, True, True),
    "channels_last train": (torch.float32, torch.channels_last, True, True),
    "no_grad train (BN batch statistics)": (torch.float32, torch.contiguous_format, True, False),
    "eval with gradients": (torch.float32, torch.contiguous_format, False, True),
    "eval no_grad": (torch.float32, torch.contiguous_format, False, False),
    "eval no_grad channels_last": (torch.float32, torch.channels_last, False, False),
    "fp64 eval no_grad": (torch.float64, torch.contiguous_format, False, False),
}
SHAPES = [(2, 8, 10, 12), (1, 3, 7, 5), (16, 64, 6, 8)]  # the last one's pooled maps take the GEMM conv when no grad


@pytest.mark.parametrize("no_spatial", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", MODES)
def test_fast_and_plain_paths_agree(mode, shape, no_spatial, fast_calls):
    dtype, fmt, train, grad = MODES[mode]
    fast, plain = twins(no_spatial, dtype)
    fast.train(train), plain.train(train)
    x = torch.randn(shape, dtype=dtype).contiguous(memory_format=fmt)
    w = torch.randn(shape, dtype=dtype)
    a = run(fast, x, w, grad, plain=False)
    assert fast_calls == [shape]  # the fast path ran here ...
    b = run(plain, x, w, grad, plain=True)
    assert fast_calls == [shape]  # ... and not there
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=k)


def test_inference_mode_takes_the_fast_path_and_agrees(fast_calls):
    fast, plain = twins()
    fast.eval(), plain.eval()
    x = torch.randn(2, 8, 10, 12)
    with torch.inference_mode():
        y = fast(x)
        with _fused.plain():
            y_plain = plain(x)
    assert fast_calls == [tuple(x.shape)]
    torch.testing.assert_close(y, y_plain, rtol=1e-5, atol=1e-6)


def _conv_weight_grads(m, x, w, autocast: bool) -> dict[str, torch.Tensor]:
    m.zero_grad(set_to_none=True)
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        y = m(x)
    (y.float() * w).sum().backward()
    return {n.split(".")[0]: p.grad.clone() for n, p in m.named_parameters() if n.endswith("conv.conv.weight")}


@pytest.mark.parametrize("shape", [(2, 16, 20, 24), (4, 64, 40, 40)])
def test_bf16_autocast_gate_gradients_no_further_from_fp32_than_official(shape, fast_calls):
    ref, ours = pair()
    x, w = torch.randn(shape), torch.randn(shape)
    err = {}
    for name, m in (("official", ref), ("ours", ours)):
        g32, g16 = _conv_weight_grads(m, x, w, False), _conv_weight_grads(m, x, w, True)
        err[name] = {k: ((g16[k] - g32[k]).norm() / g32[k].norm()).item() for k in g32}
    assert fast_calls == [shape]  # fp32 took the fast path, autocast did not
    for gate in ("cw", "hc", "hw"):  # 5% slack: the two differ in float32 summation order only
        assert err["ours"][gate] <= 1.05 * err["official"][gate], (gate, err)
    assert max(err["official"].values()) < 0.05  # the comparison is one between accurate results


def test_autocast_output_close_to_official_under_autocast(fast_calls):
    ref, ours = pair()
    ref.eval(), ours.eval()
    x = torch.randn(2, 16, 12, 10)
    with torch.autocast("cpu", torch.bfloat16), torch.no_grad():
        y, y_ref = ours(x), ref(x)
    assert not fast_calls and y.dtype == y_ref.dtype == torch.float32
    torch.testing.assert_close(y, y_ref, rtol=0.02, atol=0.02)


def _hook_all(m: torch.nn.Module, fired: list) -> list:
    handles = []
    for name, sub in m.named_modules():
        if name:
            handles.append(sub.register_forward_pre_hook(lambda mod, args, n=name: fired.append(("pre", n))))
            handles.append(sub.register_forward_hook(lambda mod, args, out, n=name: fired.append(("post", n))))
    return handles


@pytest.mark.parametrize("train, grad", [(True, True), (False, False), (False, True), (True, False)])
def test_hooks_on_every_submodule_fire(train, grad, fast_calls):
    m = twins()[0].train(train)
    x = torch.randn(2, 8, 10, 12)
    names = [n for n, _ in m.named_modules() if n]
    fired = []
    handles = _hook_all(m, fired)
    with torch.set_grad_enabled(grad):
        y_hooked = m(x)
        for h in handles:
            h.remove()
        y = copy.deepcopy(m)(x)  # the same state (BN statistics included), unhooked
    assert sorted(fired) == sorted((k, n) for n in names for k in ("pre", "post"))
    assert len(fast_calls) == 1  # only the unhooked copy took the fast path
    torch.testing.assert_close(y_hooked, y, rtol=1e-5, atol=1e-6)


def test_global_hooks_fire_and_own_hooks_keep_the_fast_path(fast_calls):
    m = twins()[0].eval()
    x = torch.randn(2, 8, 10, 12)
    seen = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda mod, i, o: seen.append(type(mod).__name__))
    try:
        with torch.no_grad():
            m(x)
    finally:
        handle.remove()
    assert seen.count("Conv2d") == 3 and seen.count("GateBatchNorm2d") == 3 and not fast_calls
    own = m.register_forward_hook(lambda mod, i, o: seen.append("own"))
    with torch.no_grad():
        m(x)
    own.remove()
    assert seen[-1] == "own" and len(fast_calls) == 1  # a hook on the module itself sees the same either way


def test_ultralytics_gflops_count_the_gates_as_the_plain_path_does():
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    net, base = DetectionModel("yolov5n-triplet.yaml", verbose=False), DetectionModel("yolov5n.yaml", verbose=False)
    if get_flops(base, 160) == 0:
        pytest.skip("ultralytics' get_flops needs thop (ultralytics-thop), which is not installed")
    added = get_flops(net, 160) - get_flops(base, 160)
    with _fused.plain():
        added_plain = get_flops(net, 160) - get_flops(base, 160)
    # The one TripletAttention (before SPPF: 256 x 5 x 5 at 160 px) has three 7x7 2->1 convs: 2*98*(C*W+H*C+H*W) FLOPs.
    convs = 2 * 98 * (256 * 5 + 5 * 256 + 5 * 5) / 1e9
    assert added_plain >= 0.95 * convs
    assert abs(added - added_plain) <= 0.05 * added_plain, (added, added_plain)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("no_spatial", [False, True])
def test_fx_symbolic_trace_equals_eager(train, no_spatial):
    m, twin = twins(no_spatial)
    m.train(train), twin.train(train)
    gm = torch.fx.symbolic_trace(m)
    x = torch.randn(2, 8, 10, 12)
    xg, xe = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_traced, y = gm(xg), twin(xe)
    torch.testing.assert_close(y_traced, y, rtol=1e-5, atol=1e-6)
    y_traced.sum().backward(), y.sum().backward()
    torch.testing.assert_close(xg.grad, xe.grad, rtol=1e-4, atol=1e-5)
    assert {n.op for n in gm.graph.nodes} >= {"call_module", "call_function"}  # a real graph, not one opaque call


@pytest.mark.parametrize("no_spatial", [False, True])
def test_fx_graph_has_no_dtype_casts(no_spatial):
    # Sony's MCT (ultralytics' IMX export) builds its graph from torch.fx and refuses Tensor.to calls
    gm = torch.fx.symbolic_trace(twins(no_spatial)[0])
    assert [n.name for n in gm.graph.nodes if n.op == "call_method" and n.target in {"to", "type", "type_as"}] == []


def test_torch_func_grad_vmap_jvp_and_functional_call(fast_calls):
    m = twins()[0].eval()
    x = torch.randn(2, 8, 10, 12, requires_grad=True)
    m(x).pow(2).sum().backward()  # fast path, ordinary autograd
    assert len(fast_calls) == 1
    g = torch.func.grad(lambda t: m(t).pow(2).sum())(x.detach())
    torch.testing.assert_close(g, x.grad, rtol=1e-4, atol=1e-5)
    xs = torch.randn(3, 2, 8, 10, 12)
    with torch.no_grad():
        looped = torch.stack([m(t) for t in xs])
    torch.testing.assert_close(torch.func.vmap(m)(xs), looped, rtol=1e-5, atol=1e-6)
    v = torch.randn_like(x)
    _, tangent = torch.func.jvp(m, (x.detach(),), (v,))
    _, vjp = torch.autograd.functional.vjp(m, x.detach(), v)  # ordinary autograd, for the adjoint check below
    torch.testing.assert_close((tangent * v).sum(), (vjp * v).sum(), rtol=1e-4, atol=1e-4)  # <Jv, v> = <v, J^T v>
    params = dict(m.named_parameters())
    m.zero_grad()
    m(x.detach()).sum().backward()
    pg = torch.func.grad(lambda p: torch.func.functional_call(m, p, (x.detach(),)).sum())(
        {k: v.detach() for k, v in params.items()}
    )
    for k, p in params.items():
        torch.testing.assert_close(pg[k], p.grad, rtol=1e-4, atol=1e-5, msg=k)


def test_forward_mode_ad_takes_the_plain_path(fast_calls):
    import torch.autograd.forward_ad as fwad

    m = twins()[0].eval()
    x, v = torch.randn(2, 8, 10, 12), torch.randn(2, 8, 10, 12)
    with fwad.dual_level():
        tangent = fwad.unpack_dual(m(fwad.make_dual(x, v))).tangent
    assert not fast_calls
    eps = 1e-6  # central difference in float64 of the same module (small: the max switches at kinks)
    m64 = copy.deepcopy(m).double()
    with torch.no_grad():
        fd = (m64(x.double() + eps * v.double()) - m64(x.double() - eps * v.double())) / (2 * eps)
    torch.testing.assert_close(tangent.double(), fd, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("train", [True, False])
def test_double_backward_equals_the_plain_formulation(train, fast_calls):
    results = []
    for m, plain in zip(twins(seed=5), (False, True)):
        m.train(train)
        x = torch.randn(2, 6, 7, 9, generator=torch.Generator().manual_seed(1), requires_grad=True)
        with _fused.plain() if plain else torch.enable_grad():
            y = m(x)
            (gx,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
            gx.pow(2).sum().backward()  # a gradient penalty: second-order terms through the module
        results.append({"gx": gx.detach(), "x.grad": x.grad, **{n: p.grad for n, p in m.named_parameters()}})
    assert len(fast_calls) == 1
    for k in results[0]:
        torch.testing.assert_close(results[0][k], results[1][k], rtol=1e-4, atol=1e-5, msg=k)


def test_functions_second_derivatives():
    kw = {"dtype": torch.float64, "requires_grad": True}
    x = torch.randperm(24, dtype=torch.float64).view(1, 2, 3, 4).div(7).requires_grad_()  # no ties
    assert gradgradcheck(lambda t: zpool3(t, True)[1:], (x,))
    x, a, b, c = torch.randn(1, 2, 3, 4, **kw), torch.rand(1, 2, 1, 4, **kw), torch.rand(1, 2, 3, 1, **kw), None
    assert gradgradcheck(lambda x, a, b: triplet_scale(x, a, b, c, 0.5), (x, a, b))
    assert gradcheck(lambda x, a, b: triplet_scale(x, a, b, c, 0.5), (x, a, b))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torch_export_sees_the_plain_ops(fast_calls):
    m = twins()[0].eval()
    x = torch.randn(1, 4, 6, 8)
    ep = torch.export.export(m, (x,))
    assert not fast_calls
    assert not [n for n in ep.graph.nodes if "autograd_function" in str(n.target) or "PythonOp" in str(n.target)]
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), m(x), rtol=1e-5, atol=1e-6)


def test_torch_compile_sees_the_plain_ops(fast_calls):
    m = twins()[0].train()
    twin = copy.deepcopy(m)
    x = torch.randn(2, 8, 10, 12)
    xc, xe = x.clone().requires_grad_(), x.clone().requires_grad_()
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)  # fullgraph: no break back into eager code
    yc = compiled(xc)
    assert not fast_calls
    ye = twin(xe)
    torch.testing.assert_close(yc, ye, rtol=1e-5, atol=1e-6)
    yc.sum().backward(), ye.sum().backward()
    torch.testing.assert_close(xc.grad, xe.grad, rtol=1e-4, atol=1e-5)


def test_dispatch_modes_and_other_dtypes_take_the_plain_path(fast_calls):
    from torch.utils.flop_counter import FlopCounterMode

    m = twins()[0].eval()
    x = torch.randn(2, 8, 10, 12)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        m(x)
    assert counter.get_total_flops() == 2 * 2 * 98 * (8 * 12 + 10 * 8 + 10 * 12)  # the three 7x7 convs, as convs
    with torch.no_grad():
        m.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert not fast_calls

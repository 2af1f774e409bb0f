"""TripletAttention's formulations (``forward_*``, listed in ``ultralytics_triplet.formulation.FORMULATIONS``), the
choice between them (``formulation``) and the public switch (``set_formulation``); the environment variable that seeds
the switch is read at import, so its test starts a process (``tests/integration/test_formulation.py``).

``test_every_formulation_computes_what_the_plain_one_does`` holds the math in one place: every formulation of the table
against ``forward_plain`` on the same inputs and weights. The other tests check which formulation each context gets,
call by call (a spy on ``TripletAttention.formulation`` shows it, so no comparison is vacuous), and that tools see every
gate module where they need to. No GPU here: CUDA and CUDA AMP are not tested (the eager fast formulations run on CPU
only)."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from helpers import close_at_scale, pair

from ultralytics_triplet import get_formulation, set_formulation
from ultralytics_triplet.formulation import FORMULATIONS, SMALL_NUMEL, SMALL_SIDE_PRODUCT
from ultralytics_triplet.nn import TripletAttention

pytestmark = pytest.mark.newest_only

TABLE = {f.name: f for f in FORMULATIONS}


def test_the_table_lists_every_forward_method_once():
    methods = sorted(name[len("forward_"):] for name in dir(TripletAttention) if name.startswith("forward_"))
    assert sorted(TABLE) == methods and len(TABLE) == len(FORMULATIONS)
    assert all(f.runs and f.computes and f.modes for f in FORMULATIONS)


def twins(no_spatial: bool = False, dtype=torch.float32, seed: int = 0) -> tuple[TripletAttention, TripletAttention]:
    """Two TripletAttention modules with the same random weights and BN statistics."""
    _, m = pair(no_spatial, seed=seed)
    m = m.to(dtype)
    return m, copy.deepcopy(m)


def run(m: TripletAttention, name: str, x: torch.Tensor, w: torch.Tensor, grad: bool) -> dict:
    """``forward_<name>`` (and the backward of ``(y * w).sum()`` when ``grad``): output, gradients and buffers."""
    x = x.clone().requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        y = getattr(m, f"forward_{name}")(x)
    if grad:
        (y * w).sum().backward()
    layout = torch.tensor([y.is_contiguous(), y.is_contiguous(memory_format=torch.channels_last)])
    out = {"y": y.detach(), "y layout": layout, **{f"buffer {n}": b.clone() for n, b in m.named_buffers()}}
    if grad:
        out["x.grad"] = x.grad
        out.update({f"grad {n}": p.grad for n, p in m.named_parameters()})
    return out


CASES = [  # (shape, dtype, layout): odd sides, one channel, one row, channels-last and strided inputs, float64, and a
    # map over 32x32, which zpool_maps pools from x itself rather than from a channels-last copy
    ((2, 8, 10, 12), torch.float32, "contiguous"),
    ((1, 3, 7, 5), torch.float32, "contiguous"),
    ((3, 1, 9, 9), torch.float32, "contiguous"),
    ((2, 5, 1, 6), torch.float32, "contiguous"),
    ((2, 6, 8, 10), torch.float32, "channels_last"),
    ((2, 6, 8, 10), torch.float32, "strided"),
    ((2, 6, 8, 10), torch.float64, "contiguous"),
    ((1, 4, 33, 34), torch.float32, "contiguous"),
]


def make_input(shape, dtype, layout) -> torch.Tensor:
    """A random input of ``shape`` laid out as ``layout`` says."""
    if layout == "strided":
        return torch.randn(shape[0], shape[1], shape[3], 2 * shape[2], dtype=dtype)[..., ::2].transpose(2, 3)
    x = torch.randn(shape, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


@pytest.mark.parametrize("no_spatial", [False, True])
@pytest.mark.parametrize("case", range(len(CASES)), ids=lambda i: "{}-{}-{}".format(*CASES[i]))
@pytest.mark.parametrize("name", sorted(set(TABLE) - {"plain"}))
def test_every_formulation_computes_what_the_plain_one_does(name, case, no_spatial):
    """Outputs (values, and their memory layout in eager mode), input and parameter gradients, and BatchNorm buffers, in
    every (train, grad) mode the table says the formulation serves, against ``forward_plain`` on a twin module (same
    weights and statistics)."""
    shape, dtype, layout = CASES[case]
    torch.manual_seed(case)
    x, w = make_input(shape, dtype, layout), torch.randn(shape, dtype=dtype)
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    for train, grad in TABLE[name].modes:
        m, plain = twins(no_spatial, dtype)
        m.train(train), plain.train(train)
        got, want = run(m, name, x, w, grad), run(plain, "plain", x, w, grad)
        assert got.keys() == want.keys()
        for k in got:
            if k == "y layout":  # in eager mode a contiguous / channels-last x gives an output laid out as x is
                eager = not name.startswith("export") and layout != "strided"
                assert not eager or torch.equal(got[k], want[k]), (name, train, grad, got[k], want[k])
            else:
                close_at_scale(got[k], want[k], rtol, f"{name} train={train} grad={grad}: {k}")


# ------------------------------------------------------------------------------------------------ which one runs when


@pytest.fixture
def chosen(monkeypatch) -> list:
    """The names ``TripletAttention.formulation`` returns, one entry per call."""
    names, original = [], TripletAttention.formulation

    def spy(self, x):
        name = original(self, x)
        names.append(name)
        return name

    monkeypatch.setattr(TripletAttention, "formulation", spy)
    return names


SMALL = (2, 8, 5, 6)  # H·W = 30 <= SMALL_SIDE_PRODUCT
LARGE = (4, 64, 12, 12)  # H·W = 144, 36,864 elements: above both thresholds


def test_the_size_thresholds_pick_the_small_formulation_on_small_maps_only(chosen):
    assert SMALL[2] * SMALL[3] <= SMALL_SIDE_PRODUCT
    assert LARGE[2] * LARGE[3] > SMALL_SIDE_PRODUCT and torch.Size(LARGE).numel() > SMALL_NUMEL
    m = twins()[0]
    for shape in (SMALL, LARGE, (1, 8, 20, 20)):  # the last: H·W = 400 but 3,200 elements
        x = torch.randn(shape)
        m(x)
        with torch.no_grad():
            m(x)
    assert chosen == ["small", "small", "fused", "no_grad", "small", "small"]


def test_each_call_follows_hooks_as_they_come_and_go(chosen):
    m, x = twins()[0].eval(), torch.randn(LARGE)
    fired = []
    with torch.no_grad():
        m(x)
        hook = m.hc.conv.bn.register_forward_hook(lambda *args: fired.append(1))
        m(x)
        hook.remove()
        m(x)
        glob = torch.nn.modules.module.register_module_forward_hook(lambda *args: fired.append(2))
        try:
            m(x)
        finally:
            glob.remove()
        own = m.register_forward_hook(lambda *args: fired.append(3))  # the module's own hook sees the same either way
        m(x)
        own.remove()
    assert chosen == ["no_grad", "plain", "no_grad", "plain", "no_grad"]
    assert fired[0] == 1 and 2 in fired and fired[-1] == 3


def test_each_call_follows_autocast_dtype_and_mode_changes(chosen):
    m, x = twins()[0], torch.randn(LARGE)
    m(x)
    with torch.autocast("cpu", torch.bfloat16):
        m(x)
    m.double()
    m(x.double())
    with torch.no_grad():
        m(x.double())
    m.to(torch.bfloat16)
    m(x.to(torch.bfloat16))  # verified for float32 and float64 only
    m.float().eval()
    with torch.inference_mode():
        m(x)
    assert chosen == ["fused", "autocast", "fused", "no_grad", "plain", "no_grad"]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace is deprecated, still what exporters call
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # a training-mode BatchNorm checks its batch size
def test_each_call_follows_tracing(chosen):
    m, x = twins()[0].eval(), torch.randn(SMALL)
    with torch.no_grad():
        m(x)
        torch.jit.trace(m, x, check_trace=False)
        m.train()
        torch.jit.trace(m, x, check_trace=False)  # training: batch statistics, nothing to fold
        m.eval()
        m.hw.conv.bn.train()
        torch.jit.trace(m, x, check_trace=False)  # one BatchNorm on batch statistics
        m.eval()
        hook = m.cw.conv.register_forward_hook(lambda *args: None)
        torch.jit.trace(m, x, check_trace=False)  # a hooked submodule: the trace records its call
        hook.remove()
        m(x)
    assert chosen == ["small", "export", "plain", "plain", "plain", "small"]


def test_set_formulation_applies_at_once_and_as_a_context_manager(chosen):
    m, x = twins()[0], torch.randn(SMALL)
    assert get_formulation() == "auto"
    with set_formulation("plain"):
        assert get_formulation() == "plain"
        m(x)
        with torch.autocast("cpu", torch.bfloat16):
            m(x)  # the plain formulation with autocast's dtype handling
    assert get_formulation() == "auto"
    m(x)
    try:
        set_formulation(" PLAIN ")
        m(x)
    finally:
        set_formulation("auto")
    m(x)
    assert chosen == ["plain", "autocast", "small", "plain", "small"]
    with pytest.raises(ValueError, match=r"set_formulation\(name\) must be one of auto, plain, got 'fast'"):
        set_formulation("fast")
    assert get_formulation() == "auto"


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_the_export_target_picks_the_runtimes_graph(chosen):
    """What ultralytics' exporter tells the module (``export_target``) picks the graph an eval trace records: a static
    ONNX export's inside ``torch.onnx.export`` only, a static OpenVINO export's, else the graph valid at every size."""
    m, x = twins()[0].eval(), torch.randn(SMALL)
    for target in [("openvino", False), ("openvino", True), ("onnx", False), ("torchscript", False), None]:
        m.export_target = target
        torch.jit.trace(m, x, check_trace=False)
    for target in [("onnx", False), ("onnx", True)]:
        m.export_target = target
        torch.onnx.export(m, (x,), io.BytesIO(), dynamo=False)
    del m.export_target
    assert chosen == ["export_openvino", "export", "export", "export", "export", "export_onnx", "export"]
    assert m.export_target is None and "export_target" not in vars(m)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_static_export_formulation_is_traced_at_its_size_and_a_dynamic_one_at_any(chosen):
    m = twins(seed=3)[0].eval()
    ref = copy.deepcopy(m)
    x = torch.randn(2, 6, 7, 9)
    with torch.no_grad():
        m.export_target = ("openvino", False)
        static = torch.jit.trace(m, x, check_trace=False)
        m.export_target = ("openvino", True)
        dynamic = torch.jit.trace(m, x, check_trace=False)
        torch.testing.assert_close(static(x), ref(x), rtol=1e-5, atol=1e-6)
        for shape in [(2, 6, 7, 9), (1, 6, 12, 5)]:
            y = torch.randn(shape)
            torch.testing.assert_close(dynamic(y), ref(y), rtol=1e-5, atol=1e-6)
    kinds = {n.kind() for n in static.inlined_graph.nodes()}
    assert "aten::max_pool2d" in kinds and "aten::avg_pool2d" in kinds  # full-axis pooling, the traced size in it
    assert "aten::max_pool2d" not in {n.kind() for n in dynamic.inlined_graph.nodes()}


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("no_spatial", [False, True])
def test_the_static_onnx_graph_runs_in_onnxruntime_at_square_and_oblong_sizes_and_batches(chosen, no_spatial):
    """``export_onnx`` stacks both rotated gates' maps into one convolution, padding the shorter side with zeros when
    H ≠ W, and lays batches out image by image: exported at each size as ultralytics' static ONNX export records it, it
    computes in ONNX Runtime what ``forward_plain`` does."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m = twins(no_spatial, seed=4)[0].eval()
    ref = copy.deepcopy(m)
    shapes = [(1, 8, 12, 12), (2, 8, 12, 12), (1, 8, 7, 12), (2, 8, 12, 7), (1, 3, 1, 6)]
    m.export_target = ("onnx", False)
    for shape in shapes:
        x, f = torch.randn(shape), io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(m, (x,), f, dynamo=False, input_names=["x"])
            want = ref.forward_plain(x)
        session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"x": x.numpy()})
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-5,
                                   msg=lambda e, s=shape: f"{s}: {e}")
    del m.export_target
    assert chosen == ["export_onnx"] * len(shapes)


# ------------------------------------------------------------------------------- what tools see, context by context


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace/script are deprecated, still supported
def test_plain_ops_under_trace_script_and_onnx(chosen):
    ours = TripletAttention().eval()
    x = torch.randn(1, 4, 6, 8)
    with torch.no_grad():
        eager = ours(x)
        traced = torch.jit.trace(ours, x, check_trace=False)  # as ultralytics traces: once
        assert "PythonOp" not in str(traced.graph)  # no custom Function was recorded
        torch.testing.assert_close(traced(x), eager, rtol=1e-5, atol=1e-6)
        scripted = torch.jit.script(ours)  # compiles forward_plain alone
        torch.testing.assert_close(scripted(x), eager, rtol=1e-5, atol=1e-6)
        f = io.BytesIO()
        torch.onnx.export(ours, (x,), f, dynamo=False, opset_version=17)
    assert chosen[0] == "small" and set(chosen[1:]) == {"export"}
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), eager, rtol=1e-4, atol=1e-5)


def _conv_weight_grads(m, x, w, autocast: bool) -> dict[str, torch.Tensor]:
    m.zero_grad(set_to_none=True)
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        y = m(x)
    (y.float() * w).sum().backward()
    return {n.split(".")[0]: p.grad.clone() for n, p in m.named_parameters() if n.endswith("conv.conv.weight")}


@pytest.mark.parametrize("shape", [(2, 16, 20, 24), (4, 64, 40, 40)])
def test_bf16_autocast_gate_gradients_no_further_from_fp32_than_official(shape, chosen):
    ref, ours = pair()
    x, w = torch.randn(shape), torch.randn(shape)
    err = {}
    for name, m in (("official", ref), ("ours", ours)):
        g32, g16 = _conv_weight_grads(m, x, w, False), _conv_weight_grads(m, x, w, True)
        err[name] = {k: ((g16[k] - g32[k]).norm() / g32[k].norm()).item() for k in g32}
    assert chosen == ["small" if x.numel() <= SMALL_NUMEL else "fused", "autocast"]
    # The same bf16 kernels: the two errors differ where a pooled value, summed in another float32 order, rounds to
    # the neighbouring bf16 value (a few percent: at most 2.4% on one machine). A 25% bound holds that anywhere and
    # still fails the less accurate kernel a transposed gate view selects (forward_autocast: 0.2 against 0.007).
    for gate in ("cw", "hc", "hw"):
        assert err["ours"][gate] <= 1.25 * err["official"][gate], (gate, err)
    assert max(err["official"].values()) < 0.05  # the comparison is one between accurate results


def test_autocast_output_close_to_official_under_autocast(chosen):
    ref, ours = pair()
    ref.eval(), ours.eval()
    x = torch.randn(2, 16, 12, 10)
    with torch.autocast("cpu", torch.bfloat16), torch.no_grad():
        y, y_ref = ours(x), ref(x)
    assert chosen == ["autocast"] and y.dtype == y_ref.dtype == torch.float32
    torch.testing.assert_close(y, y_ref, rtol=0.02, atol=0.02)


def _hook_all(m: torch.nn.Module, fired: list) -> list:
    handles = []
    for name, sub in m.named_modules():
        if name:
            handles.append(sub.register_forward_pre_hook(lambda mod, args, n=name: fired.append(("pre", n))))
            handles.append(sub.register_forward_hook(lambda mod, args, out, n=name: fired.append(("post", n))))
    return handles


@pytest.mark.parametrize("shape", [SMALL, LARGE])
@pytest.mark.parametrize("train, grad", [(True, True), (False, False), (False, True), (True, False)])
def test_hooks_on_every_submodule_fire(train, grad, shape, chosen):
    m = twins()[0].train(train)
    x = torch.randn(shape)
    names = [n for n, _ in m.named_modules() if n]
    fired = []
    handles = _hook_all(m, fired)
    with torch.set_grad_enabled(grad):
        y_hooked = m(x)
        for h in handles:
            h.remove()
        y = copy.deepcopy(m)(x)  # the same state (BN statistics included), unhooked
    assert sorted(fired) == sorted((k, n) for n in names for k in ("pre", "post"))
    assert chosen[0] == "plain" and chosen[1] != "plain"  # only the unhooked copy took a fast formulation
    torch.testing.assert_close(y_hooked, y, rtol=1e-5, atol=1e-6)


def test_ultralytics_gflops_count_the_gates_as_the_plain_formulation_does():
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    net, base = DetectionModel("yolov5n-triplet.yaml", verbose=False), DetectionModel("yolov5n.yaml", verbose=False)
    if get_flops(base, 160) == 0:
        pytest.skip("ultralytics' get_flops needs thop (ultralytics-thop), which is not installed")
    added = get_flops(net, 160) - get_flops(base, 160)
    with set_formulation("plain"):
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


def test_torch_func_grad_vmap_jvp_and_functional_call(chosen):
    m = twins()[0].eval()
    x = torch.randn(2, 8, 10, 12, requires_grad=True)
    m(x).pow(2).sum().backward()  # a fast formulation, ordinary autograd
    assert chosen == ["small"]
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
    transformed = [name for name in chosen if name == "plain"]
    assert transformed, chosen  # the transforms ran the plain formulation


def test_forward_mode_ad_takes_the_plain_formulation(chosen):
    import torch.autograd.forward_ad as fwad

    m = twins()[0].eval()
    x, v = torch.randn(2, 8, 10, 12), torch.randn(2, 8, 10, 12)
    with fwad.dual_level():
        tangent = fwad.unpack_dual(m(fwad.make_dual(x, v))).tangent
    assert chosen == ["plain"]
    eps = 1e-6  # central difference in float64 of the same module (small: the max switches at kinks)
    m64 = copy.deepcopy(m).double()
    with torch.no_grad():
        fd = (m64(x.double() + eps * v.double()) - m64(x.double() - eps * v.double())) / (2 * eps)
    torch.testing.assert_close(tangent.double(), fd, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("shape", [SMALL, LARGE])
@pytest.mark.parametrize("train", [True, False])
def test_double_backward_equals_the_plain_formulation(train, shape, chosen):
    results = []
    for m, plain in zip(twins(seed=5), (False, True)):
        m.train(train)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(1), requires_grad=True)
        with set_formulation("plain" if plain else "auto"):
            y = m(x)
            (gx,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
            gx.pow(2).sum().backward()  # a gradient penalty: second-order terms through the module
        results.append({"gx": gx.detach(), "x.grad": x.grad, **{n: p.grad for n, p in m.named_parameters()}})
    assert chosen == ["small" if shape == SMALL else "fused", "plain"]
    for k in results[0]:
        close_at_scale(results[0][k], results[1][k], 1e-4, k)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torch_export_sees_the_plain_ops(chosen):
    m = twins()[0].eval()
    x = torch.randn(1, 4, 6, 8)
    ep = torch.export.export(m, (x,))
    assert set(chosen) == {"plain"}
    assert not [n for n in ep.graph.nodes if "autograd_function" in str(n.target) or "PythonOp" in str(n.target)]
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), m(x), rtol=1e-5, atol=1e-6)


def test_torch_compile_sees_the_plain_ops(chosen):
    m = twins()[0].train()
    twin = copy.deepcopy(m)
    x = torch.randn(LARGE)
    xc, xe = x.clone().requires_grad_(), x.clone().requires_grad_()
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)  # fullgraph: no break back into eager code
    yc = compiled(xc)
    assert set(chosen) == {"plain"}
    ye = twin(xe)
    torch.testing.assert_close(yc, ye, rtol=1e-5, atol=1e-6)
    yc.sum().backward(), ye.sum().backward()
    torch.testing.assert_close(xc.grad, xe.grad, rtol=1e-4, atol=1e-5)


def test_dispatch_modes_and_other_dtypes_take_the_plain_formulation(chosen):
    from torch.utils.flop_counter import FlopCounterMode

    m = twins()[0].eval()
    x = torch.randn(2, 8, 10, 12)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        m(x)
    assert counter.get_total_flops() == 2 * 2 * 98 * (8 * 12 + 10 * 8 + 10 * 12)  # the three 7x7 convs, as convs
    with torch.no_grad():
        m.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert chosen == ["plain", "plain"]


def test_a_call_leaves_nothing_behind_in_the_module():
    """The choice reads the call's context and the module as it is: no cache rides along into checkpoints (which
    pickle the module) or deep copies."""
    m = twins()[0]
    for shape in (SMALL, LARGE):
        m(torch.randn(shape))
        with torch.no_grad():
            m.eval()(torch.randn(shape))
    assert set(vars(m)) == set(vars(TripletAttention()))

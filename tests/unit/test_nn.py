"""TripletAttention (``ultralytics_triplet.nn``): the paper's function against the permute-based reference
(``reference.py``), the argument forms and state-dict layouts found in the wild, and ultralytics' ``fuse()``.

The layout tests' two reference modules are written here from the paper (Misra et al., WACV 2021) in the two layouts
that circulate: the official repository's current one (gates ``cw``, ``hc``, ``hw``, each ``conv`` = conv + BN) and the
tutorial's / legacy official one (``ChannelGateH``, ``ChannelGateW``, ``SpatialGate``, each ``spatial`` = conv + BN).
Both rotate the map with full permutes, as the paper describes; this package's module must compute their function
after loading their weights with ``strict=True``.
"""

from __future__ import annotations

from copy import deepcopy

import pytest
import torch
from helpers import IMGSZ, pair
from torch import nn
from ultralytics.nn.tasks import parse_model

from ultralytics_triplet import TripletAttention
from ultralytics_triplet.reference import ReferenceConvBN as BasicConv  # conv + BN: the gates' building block

pytestmark = pytest.mark.newest_only


SHAPES = [(2, 8, 10, 12), (1, 3, 7, 5), (3, 1, 9, 9), (2, 16, 1, 6)]


def test_has_300_parameters_at_any_width():
    for c in (3, 64, 1024):
        assert sum(p.numel() for p in TripletAttention(c).parameters()) == 300
    assert sum(p.numel() for p in TripletAttention(no_spatial=True).parameters()) == 200
    assert sum(p.numel() for p in TripletAttention(kernel_size=3).parameters()) == 3 * (2 * 9 + 2)


def test_state_dict_keys_are_the_official_ones():
    keys = set(TripletAttention().state_dict())
    expected = {f"{g}.conv.{p}" for g in ("cw", "hc", "hw") for p in (
        "conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked")}
    assert keys == expected


@pytest.mark.parametrize("no_spatial", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("train", [False, True])
def test_forward_matches_reference(shape, no_spatial, train):
    ref, ours = pair(no_spatial)
    ref.train(train), ours.train(train)
    x = torch.randn(shape)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("no_spatial", [False, True])
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_gradients_and_bn_stats_match_reference(shape, no_spatial):
    ref, ours = pair(no_spatial, seed=1)
    x = torch.randn(shape)
    xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = torch.randn(shape)
    (ref(xr) * w).sum().backward()
    (ours(xo) * w).sum().backward()
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-4, atol=1e-5)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[name].grad, rtol=1e-4, atol=1e-5, msg=name)
    ref_buffers = dict(ref.named_buffers())
    for name, b in ours.named_buffers():
        torch.testing.assert_close(b, ref_buffers[name], msg=name)


def test_official_max_pooling_gives_the_same_function_and_routes_a_tie_to_one_entry():
    from ultralytics_triplet.reference import ReferenceTriplet

    ref, ours = pair(seed=2)
    official = ReferenceTriplet(official_max=True)
    official.load_state_dict(ref.state_dict(), strict=True)
    x, w = torch.randn(2, 8, 10, 12), torch.randn(2, 8, 10, 12)  # continuous values: every maximum is unique
    grads = []
    for m in (official, ours):
        xi = x.clone().requires_grad_()
        (m(xi) * w).sum().backward()
        grads.append(xi.grad)
    torch.testing.assert_close(ours(x), official(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5)

    tie = torch.ones(1, 4, 5, 5)  # every position ties: amax splits the max's gradient, torch.max picks one entry
    per_entry = []
    for m in (official.eval(), ref.eval()):
        xi = tie.clone().requires_grad_()
        m(xi).sum().backward()
        per_entry.append(xi.grad)
    assert not torch.allclose(per_entry[0], per_entry[1])


def test_kernel_size_3_matches_reference():
    ref, ours = pair(k=3)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


def test_channels_last_and_non_contiguous_inputs():
    ref, ours = pair()
    ref.eval(), ours.eval()
    x = torch.randn(2, 6, 8, 10)
    torch.testing.assert_close(ours(x.to(memory_format=torch.channels_last)), ref(x), rtol=1e-5, atol=1e-6)
    xt = torch.randn(2, 6, 10, 8).transpose(2, 3)
    torch.testing.assert_close(ours(xt), ref(xt.contiguous()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_close_to_float32(dtype):
    _, ours = pair()
    ours.eval()
    x = torch.randn(2, 8, 12, 12)
    try:
        low = ours.to(dtype)(x.to(dtype))
    except RuntimeError as e:  # an op without a CPU kernel for this dtype on this build
        pytest.skip(f"{dtype} unsupported on this CPU build: {e}")
    exact = ours.float()(x)
    assert low.dtype == dtype
    torch.testing.assert_close(low.float(), exact, rtol=0.05, atol=0.05)


def test_keeps_paper_batchnorm_constants_inside_ultralytics_models():
    from ultralytics.utils.torch_utils import initialize_weights

    m = nn.Sequential(nn.BatchNorm2d(4), TripletAttention())
    initialize_weights(m)
    assert (m[0].eps, m[0].momentum) == (1e-3, 0.03)  # ultralytics' own BN is reset ...
    for gate in (m[1].cw, m[1].hc, m[1].hw):  # ... the gates keep the paper's values
        assert (gate.conv.bn.eps, gate.conv.bn.momentum) == (1e-5, 0.01)


def test_channel_count_is_recorded_not_used():
    m = TripletAttention(1024)
    assert m.c1 == 1024 and not m.no_spatial and hasattr(m, "hw")
    assert m(torch.randn(1, 5, 4, 4)).shape == (1, 5, 4, 4)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "64"])
def test_rejects_a_non_channel_first_argument(bad):
    # A bool first argument is no_spatial (the official signature; the YAML-form tests below); nothing else is.
    with pytest.raises(TypeError, match="c1"):
        TripletAttention(bad)


@pytest.mark.parametrize("k", [0, 4, 7.0])
def test_rejects_bad_kernel_size(k):
    with pytest.raises(ValueError, match="kernel_size"):
        TripletAttention(kernel_size=k)


# -------------------------------------------------------------------------- state-dict layouts and YAML argument forms


class RotatedGate(nn.Module):
    """Z-pool over axis 1 (max, then mean), conv + BN, sigmoid, scale the input; ``attr`` names the conv + BN."""

    def __init__(self, attr: str):
        super().__init__()
        self.attr = attr
        setattr(self, attr, BasicConv())

    def forward(self, x):
        pooled = torch.cat((x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)), 1)
        return x * getattr(self, self.attr)(pooled).sigmoid()


class ReferenceTriplet(nn.Module):
    """The paper's module with permuted copies: gate 1 sees x.permute(0, 2, 1, 3) (C–W), gate 2 x.permute(0, 3, 2, 1)
    (H–C), gate 3 x itself (H–W); ``names`` and ``attr`` choose the state-dict layout."""

    def __init__(self, names: tuple[str, str, str], attr: str, no_spatial: bool = False):
        super().__init__()
        self.names, self.no_spatial = names, no_spatial
        for name in names[: 2 if no_spatial else 3]:
            setattr(self, name, RotatedGate(attr))

    def forward(self, x):
        a, b, c = self.names
        out = [getattr(self, a)(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3),
               getattr(self, b)(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)]
        if not self.no_spatial:
            out.append(getattr(self, c)(x))
        return sum(out) / len(out)


LAYOUTS = {
    "official root": (("cw", "hc", "hw"), "conv"),
    "tutorial/legacy": (("ChannelGateH", "ChannelGateW", "SpatialGate"), "spatial"),
}


def randomized(m: nn.Module, seed: int) -> nn.Module:
    """Give every parameter and BN running statistic distinct random values, so a swapped gate cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in m.state_dict().values():
            if t.is_floating_point():
                positive = t.shape == (1,)  # BN weight, bias and running statistics: keep the variance positive
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if positive else torch.randn(t.shape, generator=g))
    return m


@pytest.mark.parametrize("no_spatial", [False, True])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_state_dict_of_each_layout_loads_strictly_and_computes_the_same_function(layout, no_spatial):
    names, attr = LAYOUTS[layout]
    reference = randomized(ReferenceTriplet(names, attr, no_spatial), seed=1).eval()
    assert any(k.startswith(f"{names[0]}.{attr}.conv.") for k in reference.state_dict())  # the layout under test
    ours = TripletAttention(no_spatial).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 6, 5, 7)  # C, H, W all different: a gate on the wrong axis would fail on shape or value
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


def test_tutorial_gates_are_not_interchangeable():
    # The mapping must be ChannelGateH -> cw, ChannelGateW -> hc: with the two swapped, the function differs.
    reference = randomized(ReferenceTriplet(*LAYOUTS["tutorial/legacy"]), seed=2).eval()
    sd = reference.state_dict()
    swap = {"ChannelGateH": "ChannelGateW", "ChannelGateW": "ChannelGateH"}
    swapped = {swap.get(k.split(".")[0], k.split(".")[0]) + k[k.index("."):]: v for k, v in sd.items()}
    ours = TripletAttention().eval()
    ours.load_state_dict(swapped, strict=True)
    x = torch.randn(2, 6, 5, 7)
    with torch.no_grad():
        assert not torch.allclose(ours(x), reference(x), atol=1e-4)


def test_legacy_keys_load_inside_a_whole_model_with_strict_loading():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), TripletAttention(4)).eval()
    legacy = randomized(ReferenceTriplet(*LAYOUTS["tutorial/legacy"]), seed=3)
    sd = {f"0.{k}": v for k, v in net[0].state_dict().items()}
    sd.update({f"1.{k}": v for k, v in legacy.state_dict().items()})
    net.load_state_dict(sd, strict=True)
    torch.testing.assert_close(net[1].cw.conv.conv.weight, legacy.ChannelGateH.spatial.conv.weight)
    torch.testing.assert_close(net[1].hw.conv.bn.running_var, legacy.SpatialGate.spatial.bn.running_var)


def test_a_key_given_in_both_layouts_is_reported_not_silently_chosen():
    sd = TripletAttention().state_dict()
    sd["ChannelGateH.spatial.conv.weight"] = torch.zeros_like(sd["cw.conv.conv.weight"])
    with pytest.raises(RuntimeError, match="Unexpected key.*ChannelGateH.spatial.conv.weight"):
        TripletAttention().load_state_dict(sd, strict=True)


def test_legacy_state_dict_for_three_gates_does_not_fit_a_two_gate_module():
    legacy = ReferenceTriplet(*LAYOUTS["tutorial/legacy"]).state_dict()
    with pytest.raises(RuntimeError, match="Unexpected key.*SpatialGate"):
        TripletAttention(True).load_state_dict(legacy, strict=True)


def build_row(args: list) -> TripletAttention:
    """Build a one-row model whose TripletAttention row has ``args`` exactly as a YAML would write them."""
    d = {"nc": 1, "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "TripletAttention", args]],
         "head": [[-1, 1, "Conv", [8, 1, 1]]]}
    model, _ = parse_model(deepcopy(d), ch=3, verbose=False)
    return model[1]


@pytest.mark.parametrize(
    ("args", "gates", "c1"),
    [([], 3, None), ([True], 2, None), ([False], 3, None), ([1024], 3, 1024), ([1024, True], 2, 1024),
     ([1024, False], 3, 1024), ([None, True], 2, None)],
)
def test_yaml_forms_build_the_documented_module(args, gates, c1):
    m = build_row(args)
    assert isinstance(m, TripletAttention) and m.c1 == c1
    assert sum(p.numel() for p in m.parameters()) == 100 * gates
    assert len([c for c in m.children()]) == gates


def test_yaml_form_with_kernel_size():
    m = build_row([1024, False, 5])
    assert m.kernel_size == 5 and m.cw.conv.conv.weight.shape == (1, 2, 5, 5)


@pytest.mark.parametrize("args", [[True, 1024], [True, False], [1024, 1024], [1024, 16], ["abc"], [1024.0],
                                  [0], [1024, "abc"], [1024, 1]])
def test_ambiguous_yaml_forms_are_refused_with_the_accepted_forms(args):
    with pytest.raises(TypeError, match=r"^TripletAttention: .*; accepted YAML args: \[\], \[no_spatial\] .*"
                                        r"\[channels, no_spatial\] e.g. \[1024, True\]"):
        build_row(args)


def test_python_constructor_keeps_channels_first():
    assert TripletAttention(1024).c1 == 1024 and not TripletAttention(1024).no_spatial
    assert TripletAttention(64, no_spatial=True).no_spatial
    assert TripletAttention(no_spatial=True).c1 is None
    for bad in ("1024", 1024.0):  # a YAML string is literal-evaluated by ultralytics first; Python gets it as is
        with pytest.raises(TypeError, match="accepted YAML args"):
            TripletAttention(bad)
    with pytest.raises(ValueError, match="kernel_size must be a positive odd integer"):
        TripletAttention(kernel_size=4)


# ------------------------------------------------------------------------------------------------- ultralytics' fuse()


def test_fuse_keeps_the_gates_and_the_outputs():
    from ultralytics.nn.tasks import DetectionModel

    net = DetectionModel("yolov5n-triplet.yaml", verbose=False).eval()
    torch.manual_seed(0)
    for m in net.modules():  # non-trivial BN statistics, so a wrong fold would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 1.5)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    with torch.no_grad():
        before = net(x)[0]
        net.fuse(verbose=False)
        after = net(x)[0]
    assert net.is_fused()
    gates = [g for m in net.modules() if type(m).__name__ == "TripletAttention" for g in (m.cw, m.hc, m.hw)]
    assert gates and all(hasattr(g.conv, "bn") for g in gates)  # ultralytics folds its own Conv classes only
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------------------- what torch.jit.trace records


def _traced_ops(m: nn.Module, x: torch.Tensor) -> tuple[torch.jit.ScriptModule, set[str]]:
    with torch.no_grad():
        traced = torch.jit.trace(m, x)
    return traced, {n.kind() for n in traced.inlined_graph.nodes()}


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace is deprecated, still what exporters call
@pytest.mark.parametrize(("no_spatial", "k"), [(False, 7), (True, 7), (False, 3)])
def test_an_eval_trace_folds_each_gates_batchnorm_and_computes_the_same_at_other_sizes(no_spatial, k):
    ref, ours = pair(no_spatial, k=k, seed=6)
    ref.eval(), ours.eval()
    traced, ops = _traced_ops(ours, torch.randn(2, 6, 7, 9))
    assert "aten::batch_norm" not in ops and "aten::_convolution" in ops  # BN folded into the gate convs
    for shape in [(2, 6, 7, 9), (1, 6, 12, 5), (3, 6, 4, 4)]:  # the trace holds no size: other maps are right too
        x = torch.randn(shape)
        with torch.no_grad():
            torch.testing.assert_close(traced(x), ref(x), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_trace_keeps_the_gate_modules_when_a_submodule_is_hooked_or_in_training():
    ref, ours = pair(seed=7)
    x = torch.randn(2, 6, 7, 9)
    fired = []
    hook = ours.hc.conv.bn.register_forward_hook(lambda *args: fired.append(1))
    try:
        _, ops = _traced_ops(ours.eval(), x)
    finally:
        hook.remove()
    assert fired and "aten::batch_norm" in ops  # the hook saw the BN it is registered on
    ours.hc.conv.bn.train()  # one gate's BN on batch statistics: nothing may be folded
    _, ops = _traced_ops(ours, x)
    assert "aten::batch_norm" in ops
    ref.train(), ours.train()
    traced, ops = _traced_ops(ours, x)
    assert "aten::batch_norm" in ops
    with torch.no_grad():
        torch.testing.assert_close(traced(x), ref(x), rtol=1e-5, atol=1e-6)  # batch statistics, as in training


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_onnx_export_with_dynamic_axes_runs_at_other_sizes():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import io

    ref, ours = pair(seed=8)
    ref.eval(), ours.eval()
    f = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(ours, (torch.randn(1, 6, 8, 8),), f, dynamo=False, opset_version=17, input_names=["x"],
                          dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}})
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    for shape in [(1, 6, 8, 8), (2, 6, 5, 11), (1, 6, 16, 3)]:
        x = torch.randn(shape)
        (got,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(got), ref(x), rtol=1e-4, atol=1e-5)

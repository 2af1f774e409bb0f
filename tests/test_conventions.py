"""The argument forms and state-dict layouts found in the wild: each one accepted, or refused with the accepted forms.

The two reference modules below are written here from the paper (Misra et al., WACV 2021) in the two layouts that
circulate: the official repository's current one (gates ``cw``, ``hc``, ``hw``, each ``conv`` = conv + BN) and the
tutorial's / legacy official one (``ChannelGateH``, ``ChannelGateW``, ``SpatialGate``, each ``spatial`` = conv + BN).
Both rotate the map with full permutes, as the paper describes; this package's module must compute their function
after loading their weights with ``strict=True``.
"""

from __future__ import annotations

from copy import deepcopy

import pytest
import torch
from torch import nn
from ultralytics.nn.tasks import parse_model

from reference import RefConvBN as BasicConv  # conv + BN, the gates' building block in both layouts
from ultralytics_triplet import TripletAttention


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

"""Feature pyramid necks: `fpn` against torchvision's FeaturePyramidNetwork (strict state_dict
load, equal outputs), `densefpn` and the `weighted_sum` fusion against their formulas written
here, and the densefpn zoo spec: pyramid shapes as the FPN paper gives them (P_l: 256 channels at
stride 2^l), a backbone into which torchvision's resnet50 weights load, and its parameter count.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet50
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

import archgraph
from archgraph.builder import Builder, Value
from archgraph.errors import SpecError
from archgraph.ir.weights import count_params, init_weights, param_specs
from tests.reference import max_relative_error, randomize_state

GEN = torch.Generator().manual_seed(0)
RESNET50_PARAMS = 25_557_032  # ../shared/REFERENCE.md
RESNET50_FC = 2048 * 1000 + 1000


def _pyramid_inputs(b: Builder, channels: list[int], sizes: list[int]) -> list[Value]:
    return [
        b.input(f"c{i + 2}", [c, s, s])
        for i, (c, s) in enumerate(zip(channels, sizes, strict=True))
    ]


def _features(channels: list[int], sizes: list[int], batch: int = 2) -> list[torch.Tensor]:
    return [
        torch.randn(batch, c, s, s, generator=GEN) for c, s in zip(channels, sizes, strict=True)
    ]


# ---- the fusion op ----------------------------------------------------------------------------
def test_weighted_sum_equals_fast_normalized_fusion() -> None:
    b = Builder("fusion")
    xs = [b.input(f"x{i}", [4, 5, 6]) for i in range(3)]
    b.output(b.node("weighted_sum", *xs, name="fuse"))
    graph = b.build()
    w = torch.tensor([0.7, -0.4, 1.9])  # the negative weight must drop out
    module = archgraph.compile(graph, weights={"fuse.weight": w}).eval()
    inputs = [torch.randn(2, 4, 5, 6, generator=GEN) for _ in range(3)]
    with torch.no_grad():
        got = module(*inputs)
    # out = sum_i relu(w_i) x_i / (eps + sum_j relu(w_j)), eps = 1e-4 (BiFPN)
    expected = (0.7 * inputs[0] + 0.0 * inputs[1] + 1.9 * inputs[2]) / (1e-4 + 0.7 + 1.9)
    torch.testing.assert_close(got, expected)
    # untrained (weights 1): the mean, up to eps
    fresh = archgraph.compile(graph).eval()
    with torch.no_grad():
        mean = fresh(*inputs)
    torch.testing.assert_close(mean, sum(inputs) / (3 + 1e-4))


def test_weighted_sum_rejects_inputs_of_different_shapes() -> None:
    b = Builder("fusion")
    x, y = b.input("x", [4, 8, 8]), b.input("y", [4, 4, 4])
    with pytest.raises(SpecError, match="one shape") as err:
        b.node("weighted_sum", x, y, name="fuse")
    assert err.value.node == "fuse" and "'y'" in str(err.value.found)


# ---- fpn: torchvision's FeaturePyramidNetwork ------------------------------------------------
def test_fpn_block_loads_torchvision_fpn_strictly_and_outputs_match() -> None:
    channels, sizes, width = [16, 24, 40, 64], [25, 13, 7, 4], 32  # odd sizes: nearest resize
    reference = FeaturePyramidNetwork(channels, width, extra_blocks=LastLevelMaxPool()).eval()
    state = randomize_state(reference, seed=3)
    b = Builder("fpn")
    b.block("fpn", *_pyramid_inputs(b, channels, sizes), name="fpn", channels=width)
    b.output(*[b.value(f"fpn.layer_blocks.{i}.0") for i in range(4)], b.value("fpn.pool"))
    module = archgraph.compile(b.build(), weights={f"fpn.{k}": v for k, v in state.items()}).eval()
    feats = _features(channels, sizes)
    with torch.no_grad():
        expected = list(reference({f"c{i}": f for i, f in enumerate(feats)}).values())
        got = module(*feats)
    assert len(got) == len(expected) == 5
    for out, ref in zip(got, expected, strict=True):
        assert max_relative_error(out, ref) < 1e-5


# ---- densefpn ---------------------------------------------------------------------------------
def _densefpn_reference(
    feats: list[torch.Tensor], state: dict[str, torch.Tensor], levels: list[int]
) -> list[torch.Tensor]:
    """Every P_t: 1x1 laterals of all levels, resized to level t (nearest upsampling from
    coarser, stride-2^k max pooling from finer), fast-normalized weighted sum, 3x3 conv; then
    P_last+1 by subsampling."""
    lat = {
        s: F.conv2d(f, state[f"neck.lateral{s}.weight"], state[f"neck.lateral{s}.bias"])
        for s, f in zip(levels, feats, strict=True)
    }
    outs = []
    for t in levels:
        resized = []
        for s in levels:
            if s > t:
                resized.append(F.interpolate(lat[s], size=lat[t].shape[2:], mode="nearest"))
            elif s < t:
                k = 2 ** (t - s)
                resized.append(F.max_pool2d(lat[s], k, k, ceil_mode=True))
            else:
                resized.append(lat[s])
        w = torch.relu(state[f"neck.fuse{t}.weight"])
        fused = sum(wi * x for wi, x in zip(w, resized, strict=True)) / (w.sum() + 1e-4)
        outs.append(
            F.conv2d(fused, state[f"neck.p{t}.weight"], state[f"neck.p{t}.bias"], padding=1)
        )
    outs.append(outs[-1][:, :, ::2, ::2])
    return outs


def test_densefpn_block_equals_its_formula() -> None:
    # 300x300 input sizes (75, 38, 19, 10): pooling must round up as the strided convs do
    channels, sizes, width, levels = [8, 16, 24, 32], [75, 38, 19, 10], 12, [2, 3, 4, 5]
    b = Builder("densefpn")
    b.block("densefpn", *_pyramid_inputs(b, channels, sizes), name="neck", channels=width)
    b.output(*[b.value(f"neck.p{t}") for t in [*levels, 6]])
    graph = b.build()
    state = init_weights(graph, seed=1)
    for t in levels:  # learned fusion weights, some negative
        state[f"neck.fuse{t}.weight"] = torch.randn(4, generator=GEN)
        state[f"neck.fuse{t}.weight"][t - 2] = -0.5
    module = archgraph.compile(graph, weights=state).eval()
    feats = _features(channels, sizes)
    with torch.no_grad():
        got = module(*feats)
    expected = _densefpn_reference(feats, state, levels)
    for t, out, ref in zip([*levels, 6], got, expected, strict=True):
        assert out.shape == (2, width, math.ceil(300 / 2**t), math.ceil(300 / 2**t))
        assert max_relative_error(out, ref) < 1e-5, f"P{t}"


def test_densefpn_rejects_levels_that_do_not_halve() -> None:
    b = Builder("bad")
    feats = _pyramid_inputs(b, [8, 8, 8], [32, 16, 4])
    with pytest.raises(SpecError, match="halve"):
        b.block("densefpn", *feats, name="neck", channels=8)


# ---- the zoo spec: resnet50 + densefpn --------------------------------------------------------
@pytest.mark.parametrize("image_size", [224, 320])
def test_pyramid_levels_have_the_papers_shapes(image_size: int) -> None:
    graph = archgraph.load("densefpn", image_size=image_size)
    module = archgraph.compile(graph).eval()
    with torch.no_grad():
        outs = module(torch.randn(1, 3, image_size, image_size, generator=GEN))
    assert len(outs) == len(graph.outputs) == 5
    for level, out in zip(range(2, 7), outs, strict=True):
        side = image_size // 2**level if level < 6 else math.ceil(image_size / 64)
        assert tuple(out.shape) == (1, 256, side, side), f"P{level}"
    if image_size == 224:
        assert [tuple(o.shape[2:]) for o in outs[:4]] == [(56, 56), (28, 28), (14, 14), (7, 7)]


@pytest.fixture(scope="module")
def torchvision_resnet50() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    model = resnet50(weights=None).eval()
    return model, randomize_state(model, seed=5)


def test_torchvision_resnet50_weights_load_into_the_backbone(
    torchvision_resnet50: tuple[torch.nn.Module, dict[str, torch.Tensor]],
) -> None:
    reference, state = torchvision_resnet50
    graph = archgraph.load("densefpn")
    specs = param_specs(graph)
    backbone = {k for k in specs if not k.startswith("neck.")}
    assert backbone == {k for k in state if not k.startswith("fc.")}
    weights = init_weights(graph, seed=0)
    for key in backbone:
        assert tuple(state[key].shape) == specs[key].shape, key
        weights[key] = state[key]
    # C2..C5 as extra outputs: the backbone maps the neck's laterals read
    stages = [graph[f"neck.lateral{level}"].inputs[0] for level in range(2, 6)]
    tapped = graph.copy()
    tapped.outputs.extend(stages)
    module = archgraph.compile(tapped, weights=weights).eval()
    x = torch.randn(2, 3, 224, 224, generator=GEN)
    layers = create_feature_extractor(reference, {f"layer{i}": f"c{i + 1}" for i in range(1, 5)})
    with torch.no_grad():
        expected = layers(x)
        got = module(x)
    for i, c in enumerate(got[5:]):
        assert max_relative_error(c, expected[f"c{i + 2}"]) < 1e-4, f"C{i + 2}"


def test_parameter_count_is_resnet50_without_fc_plus_the_neck() -> None:
    graph = archgraph.load("densefpn")
    width = 256
    laterals = sum(c * width + width for c in (256, 512, 1024, 2048))
    fusion = 4 * 4  # one weight per input level at each of the 4 levels
    outputs = 4 * (9 * width * width + width)
    assert count_params(graph) == RESNET50_PARAMS - RESNET50_FC + laterals + fusion + outputs

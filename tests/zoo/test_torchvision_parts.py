"""The parts torchvision's other classification families are made of, written as archgraph specs
and blocks and checked against torchvision's (and timm's) own modules: ConvNeXt's block (depthwise
7x7, channels-last layernorm, GELU MLP, layer scale at the block's `layer_scale`, stochastic
depth) and its downsampling LayerNorm2d + conv, EfficientNet's MBConv (inverted residual, SiLU,
SE), squeeze-excitation with SiLU / hard-sigmoid,
ShuffleNet's channel shuffle, transposed convolution, timm's LayerScale `gamma`; stochastic depth
random in training and the identity in eval."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from timm.layers import LayerScale
from torch import nn
from torchvision.models.shufflenetv2 import channel_shuffle
from torchvision.ops import SqueezeExcitation

import archgraph
from archgraph.ir.weights import param_specs
from archgraph.profile.costs import node_costs
from archgraph.spec import load_spec_text
from tests.reference import max_relative_error, randomize_state, reference_macs

# ConvNeXt-T's features.1 (three blocks of width 96) and features.2 (LayerNorm2d, 2x2 conv),
# as a user writes them from torchvision's convnext.py
CONVNEXT_PIECE = """
name: convnext_piece
inputs: {x: [96, 14, 14]}
blocks:
  layernorm2d:
    params: {eps: 1.0e-6}
    nodes:
      .: {op: layernorm2d, in: input, eps: $eps}     # owns <call id>.weight and .bias
  cnblock:
    params: {sd_prob: 0.0}
    nodes:
      block.0: {op: conv2d, in: input, out_channels: $in_channels, kernel_size: 7, padding: 3, groups: $in_channels}
      block.1: {op: permute, dims: [0, 2, 3, 1]}
      block.2: {op: layernorm, axis: -1, eps: 1.0e-6}
      block.3: {op: linear, out_features: "${4 * in_channels}"}
      block.4: {op: gelu}
      block.5: {op: linear, out_features: $in_channels}
      block.6: {op: permute, dims: [0, 3, 1, 2]}
      layer_scale: {op: layer_scale, keepdims: true}
      stochastic_depth: {op: stochastic_depth, p: $sd_prob}
      add: {op: add, in: [stochastic_depth, input]}
nodes:
  features.1: {block: cnblock, in: x, repeat: 3, sd_prob: "${0.05 * i}"}
  features.2.0: {block: layernorm2d}
  features.2.1: {op: conv2d, out_channels: 192, kernel_size: 2, stride: 2}
"""


@pytest.fixture(scope="module")
def convnext() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    model = torchvision.models.convnext_tiny(weights=None).eval()
    return model, randomize_state(model, seed=7)


@pytest.mark.parametrize("opt_level", [0, 2])
def test_convnext_blocks_and_downsample_match_torchvision(convnext, opt_level: int) -> None:
    model, state = convnext
    graph = load_spec_text(CONVNEXT_PIECE, "convnext_piece.yaml")
    keys = [k for k in state if k.startswith(("features.1.", "features.2."))]
    # the same names (torchvision registers each block's layer_scale before its layers)
    assert sorted(param_specs(graph)) == sorted(keys)
    assert "features.1.2.layer_scale" in keys and "features.2.0.weight" in keys
    module = archgraph.compile(graph, opt_level, weights={k: state[k] for k in keys}).eval()
    x = torch.randn(2, 96, 14, 14, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        expected = model.features[2](model.features[1](x))
        assert max_relative_error(module(x), expected) <= 1e-4


# EfficientNet-B0's features.2 (two MBConv blocks, 16 -> 24 channels): SiLU, depthwise conv,
# squeeze-excitation with SiLU, stochastic depth, a residual where the shape allows
EFFICIENTNET_PIECE = """
name: efficientnet_piece
inputs: {x: [16, 28, 28]}
blocks:
  mbconv:
    params: {out_channels: null, stride: 1, expand: 6, sd_prob: 0.0}
    nodes:
      block.0.0: {op: conv2d, in: input, out_channels: "${in_channels * expand}", kernel_size: 1, bias: false}
      block.0.1: {op: batchnorm}
      block.0.2: {op: silu}
      block.1.0: {op: conv2d, out_channels: "${in_channels * expand}", kernel_size: 3, stride: $stride, padding: 1, groups: "${in_channels * expand}", bias: false}
      block.1.1: {op: batchnorm}
      block.1.2: {op: silu}
      block.2: {block: squeeze_excite, rd_channels: "${max(1, in_channels // 4)}", act: silu}
      block.3.0: {op: conv2d, out_channels: $out_channels, kernel_size: 1, bias: false}
      block.3.1: {op: batchnorm}
      stochastic_depth: {op: stochastic_depth, p: $sd_prob}
      add: {op: add, in: [stochastic_depth, input], when: "${stride == 1 and in_channels == out_channels}"}
nodes:
  features.2: {block: mbconv, in: x, repeat: 2, out_channels: 24, stride: "${2 if i == 0 else 1}", sd_prob: "${0.0125 * (i + 1)}"}
"""


@pytest.mark.parametrize("opt_level", [0, 2])
def test_efficientnet_mbconv_blocks_match_torchvision(opt_level: int) -> None:
    model = torchvision.models.efficientnet_b0(weights=None).eval()
    state = randomize_state(model, seed=11)
    graph = load_spec_text(EFFICIENTNET_PIECE, "efficientnet_piece.yaml")
    keys = [k for k in state if k.startswith("features.2.")]
    assert list(param_specs(graph)) == keys
    assert graph["features.2.1.stochastic_depth"].args["p"] == pytest.approx(0.025)
    module = archgraph.compile(graph, opt_level, weights={k: state[k] for k in keys}).eval()
    x = torch.randn(2, 16, 28, 28, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        assert max_relative_error(module(x), model.features[2](x)) <= 1e-4


def test_stochastic_depth_is_random_in_training_and_the_identity_in_eval() -> None:
    b = archgraph.Builder("sd")
    b.output(b.stochastic_depth(b.input("x", [4, 3, 3]), name="sd", p=0.5))
    module = archgraph.compile(b.build())
    x = torch.randn(256, 4, 3, 3) + 5.0
    module.eval()
    assert torch.equal(module(x), x)
    module.train()
    torch.manual_seed(0)
    y = module(x)
    dropped = (y == 0).flatten(1).all(1)
    kept = torch.isclose(y, 2.0 * x).flatten(1).all(1)  # survivors are divided by 1 - p
    assert bool((dropped | kept).all())
    assert 64 < int(dropped.sum()) < 192  # about half of 256 rows, per sample (mode row)
    torch.manual_seed(1)
    b = archgraph.Builder("sd_batch")
    b.output(b.stochastic_depth(b.input("x", [4]), name="sd", p=0.5, mode="batch"))
    batch_module = archgraph.compile(b.build()).train()
    outs = [batch_module(torch.ones(8, 4)) for _ in range(32)]
    assert all(o.unique().numel() == 1 for o in outs)  # the whole batch at once
    assert {float(o[0, 0]) for o in outs} == {0.0, 2.0}


def test_stochastic_depth_rejects_a_rate_outside_0_1() -> None:
    b = archgraph.Builder("sd")
    with pytest.raises(archgraph.SpecError, match="drop rate") as e:
        b.stochastic_depth(b.input("x", [4]), name="sd", p=1.5)
    assert e.value.node == "sd" and e.value.loc is not None


@pytest.mark.parametrize(
    ("act", "gate", "activation", "scale_activation"),
    [
        ("silu", "sigmoid", nn.SiLU, nn.Sigmoid),  # EfficientNet's
        ("relu", "hardsigmoid", nn.ReLU, nn.Hardsigmoid),  # MobileNetV3's
    ],
)
def test_squeeze_excite_takes_torchvisions_activations(
    act: str, gate: str, activation: type, scale_activation: type
) -> None:
    ref = SqueezeExcitation(96, 24, activation, scale_activation).eval()
    state = randomize_state(ref, seed=4)
    b = archgraph.Builder("se")
    b.output(
        b.block(
            "squeeze_excite",
            b.input("x", [96, 5, 5]),
            name="se",
            rd_channels=24,
            act=act,
            gate=gate,
        )
    )
    graph = b.build()
    assert graph["se.act"].op == act and graph["se.gate"].op == gate
    module = archgraph.compile(graph, weights={f"se.{k}": v for k, v in state.items()}).eval()
    x = torch.randn(2, 96, 5, 5, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert max_relative_error(module(x), ref(x)) <= 1e-4


def test_channel_shuffle_is_torchvisions() -> None:
    b = archgraph.Builder("shuffle")
    b.output(b.channel_shuffle(b.input("x", [12, 3, 3]), name="s", groups=3))
    module = archgraph.compile(b.build())
    x = torch.randn(2, 12, 3, 3)
    assert torch.equal(module(x), channel_shuffle(x, 3))
    with pytest.raises(archgraph.SpecError, match="divide into groups"):
        b.channel_shuffle(b.value("x"), name="bad", groups=5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
        {"kernel_size": 4, "stride": 2, "padding": 1, "groups": 2, "bias": False},
        {"kernel_size": (3, 2), "dilation": 2},
    ],
)
def test_conv_transpose2d_matches_torch(kwargs: dict) -> None:
    ref = nn.ConvTranspose2d(16, 8, **kwargs).eval()
    state = randomize_state(ref, seed=9)
    b = archgraph.Builder("up")
    b.output(b.conv_transpose2d(b.input("x", [16, 7, 9]), name="up", out_channels=8, **kwargs))
    graph = b.build()
    module = archgraph.compile(graph, weights={f"up.{k}": v for k, v in state.items()})
    x = torch.randn(1, 16, 7, 9, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = ref(x)
        assert graph["up"].type.shape == tuple(expected.shape)
        assert max_relative_error(module(x), expected) <= 1e-5
    assert sum(c.macs for c in node_costs(graph)) == reference_macs(ref, x)


def test_conv_transpose2d_output_padding_must_be_below_the_stride() -> None:
    b = archgraph.Builder("up")
    with pytest.raises(archgraph.SpecError, match="output_padding") as e:
        b.conv_transpose2d(
            b.input("x", [4, 5, 5]), name="up", out_channels=4, kernel_size=3, output_padding=1
        )
    assert e.value.node == "up"


def test_conv_transpose2d_channels_prune() -> None:
    """An ungrouped transposed conv produces channels like a conv: pruning its input and
    output channels gives a smaller graph computing on the kept ones."""
    b = archgraph.Builder("decoder")
    x = b.conv2d(b.input("x", [3, 8, 8]), name="enc", out_channels=16, kernel_size=3, padding=1)
    y = b.conv_transpose2d(
        b.relu(x, name="act"), name="up", out_channels=16, kernel_size=2, stride=2
    )
    b.output(b.conv2d(b.relu(y, name="act2"), name="head", out_channels=3, kernel_size=1))
    pruned, _ = archgraph.prune_channels(b.build(), 0.5)
    assert pruned["up"].args["out_channels"] == 8
    assert param_specs(pruned)["up.weight"].shape == (8, 8, 2, 2)
    assert archgraph.compile(pruned)(torch.randn(1, 3, 8, 8)).shape == (1, 3, 16, 16)


def test_layer_scale_stores_timms_gamma_at_the_node_id() -> None:
    ref = LayerScale(32).eval()
    state = randomize_state(ref, seed=2)
    b = archgraph.Builder("ls")
    b.output(b.layer_scale(b.input("x", [5, 32]), name="blocks.0.ls1.gamma", axis=-1))
    module = archgraph.compile(b.build(), weights={"blocks.0.ls1.gamma": state["gamma"]})
    x = torch.randn(2, 5, 32)
    assert torch.allclose(module(x), ref(x))


@pytest.mark.parametrize("axis", [1, -3])
def test_layer_scale_over_nchw_channels_and_its_initial_value(axis: int) -> None:
    b = archgraph.Builder("ls")
    b.output(b.layer_scale(b.input("x", [6, 2, 3]), name="scale.weight", axis=axis, init_value=0.5))
    graph = b.build()
    assert param_specs(graph)["scale.weight"].shape == (6,)
    module = archgraph.compile(graph)
    assert torch.equal(module.get_parameter("scale.weight"), torch.full((6,), 0.5))
    gamma = torch.randn(6)
    module = archgraph.compile(graph, weights={"scale.weight": gamma})
    x = torch.randn(2, 6, 2, 3)
    assert torch.allclose(module(x), x * gamma.view(1, 6, 1, 1))


def test_layernorm_on_nchw_needs_an_axis_and_points_to_layernorm2d() -> None:
    text = "name: s\ninputs: {x: [8, 4, 4]}\nnodes:\n  ln: {op: layernorm, in: x}\n"
    with pytest.raises(archgraph.SpecError) as e:
        load_spec_text(text, "s.yaml")
    assert e.value.node == "ln" and e.value.loc is not None and e.value.loc.line == 4
    assert "layernorm2d" in str(e.value) and "axis: -1" in str(e.value)
    with pytest.raises(archgraph.SpecError, match="not its last dim"):
        load_spec_text(text.replace("in: x}", "in: x, axis: 1}"), "s.yaml")
    graph = load_spec_text(text.replace("in: x}", "in: x, axis: -1}"), "s.yaml")
    x = torch.randn(2, 8, 4, 4)
    assert torch.allclose(archgraph.compile(graph)(x), F.layer_norm(x, (4,)), atol=1e-6)

"""vit_small_patch16_224 and pvt_v2_b0 in the zoo, checked against timm (the reference nobody
here wrote): the same parameter names and count, strict loading of timm's state_dict, equal
outputs, MACs as torch.utils.flop_counter counts them with attention matmuls included, and the
blocks built from Python matching timm's modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import timm
import torch
from torch import nn

import archgraph
from archgraph.errors import SpecError
from archgraph.ir import Graph
from archgraph.profile.costs import node_costs
from tests.reference import count_parameters, max_relative_error, randomize_state, reference_macs

# ../shared/REFERENCE.md, at 224x224: parameters and GMACs (attention matmuls included)
TABLE = {
    "vit_small_patch16_224": (22_050_664, 4.599),
    "pvt_v2_b0": (3_666_760, 0.566),
}
SAMPLE_KEYS = {
    "vit_small_patch16_224": ["cls_token", "pos_embed", "blocks.6.norm1.weight", "head.weight"],
    "pvt_v2_b0": ["patch_embed.proj.bias", "stages.1.blocks.1.mlp.fc2.bias", "head.weight"],
}


@contextmanager
def unfused_attention() -> Iterator[None]:
    """timm's attention as explicit matmuls (which the flop counter sees; it misses CPU SDPA),
    for models created inside; timm's setting is restored afterwards."""
    enabled, experimental = timm.layers.use_fused_attn(), timm.layers.use_fused_attn(True)
    timm.layers.set_fused_attn(False)
    try:
        yield
    finally:
        timm.layers.set_fused_attn(enabled, experimental=experimental)


@pytest.fixture(scope="module", params=list(TABLE))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def reference(name: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """timm's model in eval mode with random weights, and its state_dict."""
    with unfused_attention():
        model = timm.create_model(name, pretrained=False).eval()
    return model, randomize_state(model, seed=1)


@pytest.fixture(scope="module")
def graph(name: str) -> Graph:
    return archgraph.load(name)


def test_parameter_count_is_exact(
    name: str, reference: tuple[nn.Module, dict], graph: Graph
) -> None:
    ref, _ = reference
    assert sum(c.params for c in node_costs(graph)) == count_parameters(ref) == TABLE[name][0]


def test_timm_weights_load_strictly_and_outputs_match(
    name: str, reference: tuple[nn.Module, dict], graph: Graph
) -> None:
    ref, state = reference
    module = archgraph.compile(graph, weights=state).eval()
    assert list(module.state_dict()) == list(state)
    assert all(key in state for key in SAMPLE_KEYS[name])
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = ref(x), module(x)
    assert max_relative_error(got, expected) <= 1e-4


def test_macs_agree_with_flop_counter_and_table(
    name: str, reference: tuple[nn.Module, dict], graph: Graph
) -> None:
    ref, _ = reference
    assert not any(getattr(m, "fused_attn", False) for m in ref.modules())
    ours = sum(c.macs for c in node_costs(graph))
    counted = reference_macs(ref, torch.randn(1, 3, 224, 224))
    assert abs(ours - counted) / counted < 0.01
    gmacs = TABLE[name][1]
    assert abs(ours / 1e9 - gmacs) / gmacs < 0.01


# Blocks built through the Python API under timm's module paths: (block, path, args, input shape)
BLOCK_CASES = {
    "vit_small_patch16_224": [
        ("patch_embed", "patch_embed", {"dim": 384}, (3, 224, 224)),
        ("vit_block", "blocks.6", {"num_heads": 6}, (197, 384)),
    ],
    "pvt_v2_b0": [
        (
            "overlap_patch_embed",
            "stages.1.downsample",
            {"dim": 64, "patch_size": 3, "stride": 2},
            (32, 56, 56),
        ),
        ("pvt_block", "stages.3.blocks.1", {"num_heads": 8, "mlp_ratio": 4}, (7, 7, 256)),
        (
            "pvt_stage",
            "stages.0",
            {
                "dim": 32,
                "depth": 2,
                "num_heads": 1,
                "sr_ratio": 8,
                "mlp_ratio": 8,
                "downsample": False,
            },
            (56, 56, 32),
        ),
        (
            "pvt_stage",
            "stages.2",
            {"dim": 160, "depth": 2, "num_heads": 5, "sr_ratio": 2, "mlp_ratio": 4},
            (64, 28, 28),
        ),
    ],
}


def test_python_blocks_match_timm_modules(name: str, reference: tuple[nn.Module, dict]) -> None:
    """Each block built through the Python API, under timm's module path, takes that module's
    weights strictly and computes what it computes."""
    ref, state = reference
    for block, path, args, shape in BLOCK_CASES[name]:
        b = archgraph.Builder(block)
        b.output(b.block(block, b.input("x", shape), name=path, **args))
        weights = {k: v for k, v in state.items() if k.startswith(f"{path}.")}
        module = archgraph.compile(b.build(), weights=weights).eval()
        x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(3))
        timm_module = ref.get_submodule(path)
        with torch.no_grad():
            if block == "pvt_block":  # timm's takes tokens [N, H*W, C] and the feature size
                expected = timm_module(x.flatten(1, 2), shape[:2]).reshape(x.shape)
            else:
                expected = timm_module(x)
            got = module(x)
        assert max_relative_error(got, expected) <= 1e-4, path


@pytest.mark.parametrize(
    ("op", "shape", "args", "message"),
    [
        ("sr_attention", (14, 14, 60), {"num_heads": 8}, "num_heads=8"),
        ("sr_attention", (7, 7, 64), {"num_heads": 1, "sr_ratio": 8}, "sr_ratio=8"),
        ("sr_attention", (196, 64), {"num_heads": 1}, "[N, H, W, C]"),
        ("select", (197, 384), {"dim": 0}, "other than the batch"),
        ("select", (197, 384), {"index": 197}, "out of range"),
        ("class_token", (3, 224, 224), {}, "tokens [N, L, D]"),
    ],
)
def test_new_ops_reject_bad_inputs_with_located_errors(
    op: str, shape: tuple, args: dict, message: str
) -> None:
    b = archgraph.Builder("bad")
    x = b.input("x", shape)
    with pytest.raises(SpecError) as info:
        b.node(op, x, name="bad", **args)
    assert info.value.node == "bad"
    assert message in str(info.value)

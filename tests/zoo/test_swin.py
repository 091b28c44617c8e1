"""swin_tiny_patch4_window7_224 in the zoo, checked against timm (the reference nobody here
wrote): the same parameter names, order and count, strict loading of timm's state_dict, equal
outputs at -O0, -O1 and -O2 (where the window attention runs as SDPA with the bias and mask as
its attn_mask), MACs as torch.utils.flop_counter counts them, the relative position index and
shifted-window mask as timm computes them, the blocks built from Python matching timm's modules,
and head pruning that is exact on zeroed heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from timm.models import swin_transformer as timm_swin
from torch import nn

import archgraph
from archgraph.cli import main
from archgraph.errors import SpecError
from archgraph.ir import Graph
from archgraph.ir.weights import count_params
from archgraph.ops.window_attention import relative_position_index, shifted_window_mask
from archgraph.passes.prune import prune_channels
from archgraph.passes.sdpa import sdpa
from archgraph.profile.costs import node_costs
from archgraph.spec.emit import graph_to_yaml
from tests.prune.helpers import example_input, random_graph, run, zero_units
from tests.reference import count_parameters, max_relative_error, randomize_state, reference_macs
from tests.zoo.test_transformer_zoo import unfused_attention

NAME = "swin_tiny_patch4_window7_224"
PARAMS = 28_288_354  # timm's model.parameters(), as counted by the test below too
# a two-stage Swin at 64x64: 16x16 and 8x8 maps, both padded to multiples of the 7x7 window and
# shifted, so padding and the shifted-window mask over padded maps are exercised against timm
SMALL = {"image_size": 64, "depths": [2, 2], "num_heads": [3, 6]}


def _timm(**kwargs: object) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    with unfused_attention():
        model = timm.create_model(NAME, pretrained=False, **kwargs).eval()
    return model, randomize_state(model, seed=1)


@pytest.fixture(scope="module")
def reference() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """timm's Swin-T in eval mode with random weights, and its state_dict."""
    return _timm()


@pytest.fixture(scope="module")
def graph() -> Graph:
    return archgraph.load(NAME)


def test_parameter_count_is_exact(reference: tuple[nn.Module, dict], graph: Graph) -> None:
    ref, _ = reference
    assert sum(c.params for c in node_costs(graph)) == count_parameters(ref) == PARAMS


@pytest.mark.parametrize("level", [0, 1, 2])
def test_timm_weights_load_strictly_and_outputs_match(
    level: int, reference: tuple[nn.Module, dict], graph: Graph
) -> None:
    ref, state = reference
    module = archgraph.compile(graph, level, weights=state).eval()
    if level == 0:
        assert list(module.state_dict()) == list(state)
    keys = ["layers.0.blocks.1.attn.relative_position_bias_table", "layers.2.downsample.norm.bias"]
    assert all(key in state for key in [*keys, "head.fc.weight"])
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = ref(x), module(x)
    assert max_relative_error(got, expected) <= 1e-4


@pytest.mark.parametrize("level", [0, 2])
def test_padded_shifted_windows_match_timm(level: int) -> None:
    """Maps that are no multiple of the window are padded after the shift, and the mask is
    built over the padded map, as timm does."""
    ref, state = _timm(
        img_size=SMALL["image_size"],
        depths=tuple(SMALL["depths"]),
        num_heads=tuple(SMALL["num_heads"]),
    )
    assert all(any(b.shift_size) for b in ref.layers[1].blocks[1:])  # timm shifts here too
    module = archgraph.compile(archgraph.load(NAME, **SMALL), level, weights=state).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert max_relative_error(module(x), ref(x)) <= 1e-4


def test_macs_agree_with_flop_counter(reference: tuple[nn.Module, dict], graph: Graph) -> None:
    ref, _ = reference
    assert not any(getattr(m, "fused_attn", False) for m in ref.modules())
    ours = sum(c.macs for c in node_costs(graph))
    counted = reference_macs(ref, torch.randn(1, 3, 224, 224))
    assert abs(ours - counted) / counted < 0.01
    # the window attention's q k^T and attn v: 2 * windows * (7*7)^2 * C per stage
    matmuls = sum(
        2 * (56 // 2**s // 7) ** 2 * 49 * 49 * 96 * 2**s * d for s, d in enumerate([2, 2, 6, 2])
    )
    attention = sum(
        c.macs
        for c in node_costs(graph)
        if c.id.endswith(".attn")  # qkv and proj over every token, plus the matmuls
    )
    projections = sum(
        4 * (56 // 2**s) ** 2 * (96 * 2**s) ** 2 * d for s, d in enumerate([2, 2, 6, 2])
    )
    assert attention == matmuls + projections


def test_relative_position_index_and_mask_are_timms() -> None:
    assert torch.equal(relative_position_index(7, 7), timm_swin.get_relative_position_index(7, 7))
    assert torch.equal(relative_position_index(3, 5), timm_swin.get_relative_position_index(3, 5))
    block = timm_swin.SwinTransformerBlock(96, (14, 14), num_heads=3, window_size=7, shift_size=3)
    assert torch.equal(shifted_window_mask(14, 14, (7, 7), (3, 3)), block.attn_mask)
    padded = timm_swin.SwinTransformerBlock(96, (16, 16), num_heads=3, window_size=7, shift_size=3)
    assert torch.equal(shifted_window_mask(21, 21, (7, 7), (3, 3)), padded.attn_mask)


def test_sdpa_pass_swaps_every_window_attention(graph: Graph) -> None:
    attn = [n.id for n in graph.nodes() if n.op == "window_attention"]
    assert len(attn) == 12
    swapped, change = sdpa(graph)
    assert [n.id for n in swapped.nodes() if n.op == "window_attention_sdpa"] == attn
    assert change.groups_fused == 12


# Blocks built through the Python API under timm's module paths: (block, path, args, input shape)
BLOCK_CASES = [
    ("swin_patch_embed", "patch_embed", {"dim": 96}, (3, 224, 224)),
    ("swin_block", "layers.0.blocks.1", {"num_heads": 3, "shift_size": 3}, (56, 56, 96)),
    ("swin_block", "layers.3.blocks.1", {"num_heads": 24, "shift_size": 3}, (7, 7, 768)),
    ("patch_merging", "layers.1.downsample", {}, (56, 56, 96)),
    ("swin_stage", "layers.2", {"dim": 384, "depth": 6, "num_heads": 12}, (28, 28, 192)),
]


@pytest.mark.parametrize(("block", "path", "args", "shape"), BLOCK_CASES)
def test_python_blocks_match_timm_modules(
    block: str, path: str, args: dict, shape: tuple, reference: tuple[nn.Module, dict]
) -> None:
    """Each block built through the Python API, under timm's module path, takes that module's
    weights strictly and computes what it computes."""
    ref, state = reference
    b = archgraph.Builder(block)
    b.output(b.block(block, b.input("x", shape), name=path, **args))
    weights = {k: v for k, v in state.items() if k.startswith(f"{path}.")}
    module = archgraph.compile(b.build(), weights=weights).eval()
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert max_relative_error(module(x), ref.get_submodule(path)(x)) <= 1e-4


@pytest.mark.parametrize(
    ("op", "shape", "args", "message"),
    [
        ("window_attention", (56, 96), {"num_heads": 3}, "[N, H, W, C]"),
        ("window_attention", (14, 14, 96), {"num_heads": 5}, "num_heads=5"),
        ("window_attention", (14, 14, 96), {"num_heads": 3, "shift_size": 7}, "shift_size"),
        ("window_attention", (7, 7, 96), {"num_heads": 3, "shift_size": 3}, "larger than the"),
        ("window_attention", (6, 9, 96), {"num_heads": 3}, "larger than the map"),
    ],
)
def test_window_attention_rejects_bad_inputs_with_located_errors(
    op: str, shape: tuple, args: dict, message: str
) -> None:
    b = archgraph.Builder("bad")
    x = b.input("x", shape)
    with pytest.raises(SpecError) as info:
        b.node(op, x, name="bad", **args)
    assert info.value.node == "bad"
    assert message in str(info.value)


def test_blocks_reject_maps_they_cannot_take() -> None:
    b = archgraph.Builder("bad")
    x = b.input("x", (7, 7, 96))
    with pytest.raises(SpecError, match="even height and width"):
        b.block("patch_merging", x, name="merge")
    with pytest.raises(SpecError, match="own width"):
        b.block("swin_stage", x, name="stage", dim=192, depth=2, num_heads=3, downsample=False)
    with pytest.raises(SpecError) as info:  # from a spec: located at the node
        archgraph.load(NAME, image_size=112)  # stage 3's 7x7 map cannot be merged
    assert "swin_tiny_patch4_window7_224.yaml:" in str(info.value)
    assert "node 'layers.3'" in str(info.value) and "[1, 7, 7, 384]" in str(info.value)


def test_head_pruning_is_exact_on_zeroed_heads(tmp_path: Path) -> None:
    """Removing zeroed heads (q, k, v rows, proj columns and bias-table columns) and zeroed MLP
    channels keeps the output; a wrong bias-table column would change the kept heads."""
    g = random_graph(NAME, **SMALL)
    x = example_input(g)
    zeroed = zero_units(g, 0.5)
    reference = run(g, x)
    pruned, report = prune_channels(g, 0.5)
    attn = pruned["layers.1.blocks.1.attn"]
    assert (attn.args["num_heads"], attn.args["head_dim"]) == (3, 32)
    assert pruned.weights is not None
    table = pruned.weights["layers.1.blocks.1.attn.relative_position_bias_table"]
    assert tuple(table.shape) == (169, 3)
    assert zeroed["layers.1.blocks.1.attn"] and report.after.params < report.before.params
    out = run(pruned, x)
    assert max_relative_error(out, reference) <= 1e-4
    optimized = archgraph.compile(pruned, 2).eval()
    with torch.no_grad():
        assert max_relative_error(optimized(x), reference) <= 1e-4
    path = tmp_path / "pruned.yaml"
    path.write_text(graph_to_yaml(pruned))
    reloaded = archgraph.load(path, batch=2)
    assert count_params(reloaded) == count_params(pruned)


def test_pruning_nonzero_heads_changes_the_output() -> None:
    """The exactness test can fail: heads that carry signal change the output when removed."""
    g = random_graph(NAME, **SMALL)
    x = example_input(g)
    pruned, _ = prune_channels(g, 0.5, importance="random")
    assert max_relative_error(run(pruned, x), run(g, x)) > 1e-3


def test_cli_prunes_swin_and_the_result_runs(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "swin_pruned.yaml"
    args = ["compile", NAME, "--prune", "channels=0.5", "--emit-spec", str(spec)]
    assert main(args) == 0
    assert "attention heads" in capsys.readouterr().out
    module = archgraph.compile(archgraph.load(spec)).eval()
    with torch.no_grad():
        y = module(torch.randn(1, 3, 224, 224))
    assert y.shape == (1, 1000) and torch.isfinite(y).all()

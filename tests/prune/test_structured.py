"""Structured pruning is exact on zeroed channels and heads, across residual, dense, OSA,
depthwise and attention networks; the pruned architecture is smaller and emits as a spec that
reloads to the same network."""

from __future__ import annotations

import pytest
import torch

import archgraph
from archgraph.ir.weights import count_params
from archgraph.passes.prune import prune_channels
from archgraph.spec.emit import graph_to_yaml
from tests.prune.helpers import example_input, random_graph, randomize, run, zero_units

CASES = {
    "resnet50": {"image_size": 64},
    "densenet121": {"image_size": 64},
    "vovnet39a": {"image_size": 64},
    "ese_vovnet19b_dw": {"image_size": 64},
    "vit_small_patch16_224": {"image_size": 64, "depth": 4},
    "pvt_v2_b0": {"image_size": 64},
}


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool((a - b).abs().max() <= 1e-4 * b.abs().max().clamp_min(1e-6))


@pytest.mark.parametrize("name", list(CASES))
def test_pruning_zeroed_units_keeps_the_output(name: str, tmp_path) -> None:
    g = random_graph(name, **CASES[name])
    x = example_input(g)
    zeroed = zero_units(g, 0.5)
    assert zeroed["channels"], "the model must have prunable channels"
    reference = run(g, x)
    pruned, report = prune_channels(g, 0.5, importance="l1")
    out = run(pruned, x)
    assert out.shape == reference.shape
    assert _close(out, reference), float((out - reference).abs().max())
    assert report.after.params < report.before.params
    assert report.after.params == count_params(pruned)
    # the emitted spec reloads to the same architecture, parameters and outputs
    path = tmp_path / f"{name}_pruned.yaml"
    path.write_text(graph_to_yaml(pruned))
    reloaded = archgraph.load(path, batch=2)
    assert count_params(reloaded) == count_params(pruned)
    same = archgraph.compile(reloaded, weights=pruned.weights).eval()
    with torch.no_grad():
        assert torch.equal(same(x), out)


def test_pruning_nonzero_channels_changes_the_output() -> None:
    """The exactness test can fail: removing channels that carry signal changes the output."""
    g = random_graph("resnet50", image_size=64)
    x = example_input(g)
    reference = run(g, x)
    pruned, _ = prune_channels(g, 0.5, importance="random")
    assert not _close(run(pruned, x), reference)


def test_residual_groups_concat_offsets_and_classifier() -> None:
    g = random_graph("resnet50", image_size=64)
    pruned, _ = prune_channels(g, 0.5)
    # one coupled group per stage: every block's conv3 and the downsample keep the same width
    widths = {pruned[f"layer1.{i}.conv3"].args["out_channels"] for i in range(3)}
    widths.add(pruned["layer1.0.downsample.0"].args["out_channels"])
    assert widths == {128}
    assert pruned["layer1.0.conv1"].args["out_channels"] == 32
    assert pruned["fc"].type.shape == (2, 1000)
    assert pruned.weights is not None and tuple(pruned.weights["fc.weight"].shape) == (1000, 1024)

    d = random_graph("densenet121", image_size=64)
    dp, _ = prune_channels(d, 0.5)
    # block 1: the stem's 32 kept channels, then 16 of each layer's 32: offsets shift
    assert dp["features.denseblock1.denselayer2.concat"].type.shape[1] == 32 + 16
    assert dp["features.denseblock1.concat"].type.shape[1] == 32 + 6 * 16
    assert dp.weights is not None
    assert tuple(dp.weights["features.denseblock1.denselayer3.conv1.weight"].shape) == (
        64,
        64,
        1,
        1,
    )


def test_depthwise_and_heads() -> None:
    g = random_graph("ese_vovnet19b_dw", image_size=64)
    pruned, _ = prune_channels(g, 0.5)
    dw = pruned["stages.1.blocks.0.conv_mid.0.conv_dw"]
    assert dw.args["groups"] == dw.args["out_channels"] == pruned[dw.inputs[0]].type.shape[1]

    v = random_graph("vit_small_patch16_224", image_size=64, depth=2)
    vp, report = prune_channels(v, 0.5)
    attn = vp["blocks.0.attn"]
    assert attn.args["num_heads"] == 3 and attn.args["head_dim"] == 64
    assert vp["blocks.0.mlp.fc1"].args["out_features"] == 768
    assert vp.weights is not None and tuple(vp.weights["blocks.0.attn.qkv.weight"].shape) == (
        576,
        384,
    )
    assert "3 of 6" not in str(report) and "6 of 12 attention heads" in str(report)

    pvt = random_graph("pvt_v2_b0", image_size=64)
    pp, _ = prune_channels(pvt, 0.5)
    sr = pp["stages.2.blocks.0.attn"]  # 5 heads of 32, spatial reduction 2
    assert (sr.args["num_heads"], sr.args["head_dim"]) == (3, 32)
    assert pp.weights is not None and tuple(
        pp.weights["stages.2.blocks.0.attn.kv.weight"].shape
    ) == (192, 160)


def test_global_scope_and_bad_options() -> None:
    g = random_graph("vovnet39a", image_size=64)
    pruned, report = prune_channels(g, 0.5, scope="global", importance="l2")
    assert report.after.macs < report.before.macs
    with pytest.raises(archgraph.ArchgraphError, match="importance"):
        prune_channels(g, 0.5, importance="l3")
    with pytest.raises(archgraph.ArchgraphError, match="out of range"):
        prune_channels(g, 1.5)


def test_hybrid_network_from_the_python_api_prunes_exactly() -> None:
    """The custom network example (residual stem, hand-written dense stage, tokens through
    flatten/transpose into layernorm-blocked attention, a concat of two classifier inputs):
    what layernorm mixes must stay, the rest prunes exactly."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "custom_network.py"
    spec = importlib.util.spec_from_file_location("custom_network", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    g = randomize(example.build())
    x = example_input(g)
    zero_units(g, 0.5, seed=1)
    reference = run(g, x)
    pruned, _ = prune_channels(g, 0.5)
    assert _close(run(pruned, x), reference)
    # the tokens' width is normalized by the encoder's layernorm: it cannot shrink
    assert pruned["reduce"].args["out_channels"] == 64
    assert pruned["encoder.attn"].args["num_heads"] == 2
    assert pruned["stem"].args["out_channels"] == 16  # coupled with the residual block
    assert pruned["dense.layer1.conv"].args["out_channels"] == 8


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ese_vovnet19b_dw", {"image_size": 64}),
        ("vit_small_patch16_224", {"image_size": 64, "depth": 2}),  # heads pruned: SDPA at -O2
        ("pvt_v2_b0", {"image_size": 64}),
    ],
)
def test_pruned_network_optimizes_like_any_other(name: str, params: dict) -> None:
    """-O2 (BN folding, fusion, concat buffers, SDPA, layout) on a pruned network keeps its
    outputs."""
    g = random_graph(name, **params)
    pruned, _ = prune_channels(g, 0.5)
    x = example_input(g)
    reference = run(pruned, x)
    optimized = archgraph.compile(pruned, 2).eval()
    with torch.no_grad():
        assert _close(optimized(x), reference)

"""MIRNet's blocks and the mirnet_small zoo spec. There is no timm/torchvision MIRNet, so the
blocks are held to the formulas as MIRNet's authors wrote them (swz30/MIRNet, SKFF and DAU:
concatenate the streams, view them as [N, streams, C, H, W], sum, softmax over the streams; spatial
attention on cat(channel max, channel mean)), written out here in plain torch over the block's
own weights; the spec compiles to an image-to-image network, and channel pruning is exact on
zeroed channels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import archgraph
from archgraph.cli import main
from archgraph.errors import SpecError
from archgraph.ir.weights import bind_weights
from archgraph.passes.prune import prune_channels
from tests.prune.helpers import example_input, random_graph, run, zero_units
from tests.reference import max_relative_error


def _compiled(block: str, shapes: list[tuple[int, ...]], **args: object):
    b = archgraph.Builder(block)
    xs = [b.input(f"x{i}", s) for i, s in enumerate(shapes)]
    b.output(b.block(block, *xs, name="m", **args))
    g = b.build()
    bind_weights(g, seed=0)
    assert g.weights is not None
    weights = {k: v + 0.1 * torch.randn_like(v) for k, v in g.weights.items()}  # nonzero biases
    return archgraph.compile(g, weights=weights).eval(), weights


def _conv(w: dict, key: str, x: torch.Tensor) -> torch.Tensor:
    weight = w[f"{key}.weight"]
    return F.conv2d(x, weight, w.get(f"{key}.bias"), padding=weight.shape[-1] // 2)


def test_skff_is_the_papers_fusion() -> None:
    module, w = _compiled("skff", [(16, 8, 8)] * 3)
    streams = [
        torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)
    ]
    feats = torch.cat(streams, dim=1).view(2, 3, 16, 8, 8)
    u = feats.sum(dim=1)
    z = F.relu(_conv(w, "m.squeeze", F.adaptive_avg_pool2d(u, 1)))
    a = torch.cat([_conv(w, f"m.fcs.{i}", z) for i in range(3)], dim=1).view(2, 3, 16, 1, 1)
    expected = (feats * a.softmax(dim=1)).sum(dim=1)
    assert w["m.squeeze.weight"].shape[0] == 4  # d = max(C / 8, 4)
    with torch.no_grad():
        assert max_relative_error(module(*streams), expected) <= 1e-5


def test_dual_attention_unit_is_the_papers() -> None:
    module, w = _compiled("dual_attention", [(16, 8, 8)])
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(5))
    m = _conv(w, "m.body.2", F.relu(_conv(w, "m.body.0", x)))
    pooled = torch.cat([m.max(dim=1, keepdim=True)[0], m.mean(dim=1, keepdim=True)], dim=1)
    sa = m * torch.sigmoid(_conv(w, "m.sa.conv", pooled))
    g = _conv(w, "m.ca.fc2", F.relu(_conv(w, "m.ca.fc1", F.adaptive_avg_pool2d(m, 1))))
    ca = m * torch.sigmoid(g)
    expected = x + _conv(w, "m.conv1x1", torch.cat([sa, ca], dim=1))
    with torch.no_grad():
        assert max_relative_error(module(x), expected) <= 1e-5


def test_mirnet_small_restores_images_at_every_level() -> None:
    g = archgraph.load("mirnet_small")
    assert g[g.outputs[0]].type.shape == g[g.inputs[0]].type.shape  # image in, image out
    bind_weights(g, seed=1)
    x = torch.randn(1, 3, 64, 64)
    outs = []
    for level in (0, 1, 2):
        module = archgraph.compile(g, level).eval()
        with torch.no_grad():
            outs.append(module(x))
    assert all(max_relative_error(o, outs[0]) <= 1e-4 for o in outs[1:])
    assert not torch.allclose(outs[0], x)  # the residual branch contributes


def test_pruning_is_exact_on_zeroed_channels() -> None:
    g = random_graph("mirnet_small", batch=1)
    x = example_input(g)
    zeroed = zero_units(g, 0.5)
    assert zeroed["channels"]
    reference = run(g, x)
    pruned, report = prune_channels(g, 0.5)
    assert report.after.macs < report.before.macs
    assert max_relative_error(run(pruned, x), reference) <= 1e-4


def test_cli_prunes_mirnet_small_and_the_result_runs(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "mirnet_pruned.yaml"
    assert (
        main(["compile", "mirnet_small", "--prune", "channels=0.5", "--emit-spec", str(spec)]) == 0
    )
    assert "MACs" in capsys.readouterr().out
    module = archgraph.compile(archgraph.load(spec)).eval()
    with torch.no_grad():
        y = module(torch.randn(1, 3, 64, 64))
    assert y.shape == (1, 3, 64, 64) and torch.isfinite(y).all()


def test_bad_inputs_are_located_errors() -> None:
    b = archgraph.Builder("bad")
    x, y = b.input("x", (16, 8, 8)), b.input("y", (32, 4, 4))
    with pytest.raises(SpecError, match="two or more streams of one shape"):
        b.block("skff", x, y, name="fuse")
    with pytest.raises(SpecError) as info:
        b.node("channel_pool", b.input("t", (16, 8)), name="pool")
    assert info.value.node == "pool" and "NCHW" in str(info.value)
    with pytest.raises(SpecError) as info:  # from a spec: located at the node
        archgraph.load("mirnet_small", image_size=30)
    assert "mirnet_small.yaml:" in str(info.value) and "node 'body.0'" in str(info.value)

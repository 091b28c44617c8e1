"""dense-to-osa: dense blocks become OSA blocks (each layer fed only by the previous one, one
concat, a 1x1 aggregation); the result compiles, runs, emits as a spec, and has a lower
memory access cost, checked with VoVNet's formula computed here."""

from __future__ import annotations

import pytest
import torch

import archgraph
from archgraph.ir.graph import Graph
from archgraph.ir.weights import bind_weights, count_params
from archgraph.ops.registry import get_op
from archgraph.passes.rewrites import rewrite
from archgraph.spec.emit import graph_to_yaml


def vovnet_mac(graph: Graph) -> int:
    """Sum over conv2d nodes of h*w*(c_in + c_out) + k^2 * c_in * c_out / groups (VoVNet)."""
    total = 0
    for node in graph.nodes():
        if node.op != "conv2d":
            continue
        n, c_out, h, w = node.type.shape
        c_in = graph[node.inputs[0]].type.shape[1]
        kh, kw = node.args["kernel_size"]
        total += n * h * w * (c_in + c_out) + kh * kw * c_in * c_out // node.args["groups"]
    return total


@pytest.fixture(scope="module")
def densenet() -> Graph:
    g = archgraph.load("densenet121")
    return bind_weights(g, seed=0)


def test_dense_to_osa_structure_and_lower_mac(densenet: Graph, tmp_path) -> None:
    osa, report = rewrite(densenet, "dense-to-osa")
    block = "features.denseblock2"
    for i in range(2, 13):
        layer = osa[f"{block}.denselayer{i}.norm1"]
        assert layer.inputs == (f"{block}.denselayer{i - 1}.conv2",)
        assert f"{block}.denselayer{i}.concat" not in osa
    assert osa[f"{block}.denselayer1.norm1"].inputs == ("features.transition1.pool",)
    assert len(osa[f"{block}.concat"].inputs) == 13
    agg = osa[f"{block}.conv_concat.conv"]
    assert agg.inputs == (f"{block}.concat",) and agg.args["kernel_size"] == (1, 1)
    assert osa["features.transition2.norm"].inputs == (f"{block}.conv_concat.bn.act",)
    # memory access cost: lower, and the report's figures are VoVNet's formula
    assert vovnet_mac(osa) < vovnet_mac(densenet)
    assert report.before.conv_mac == vovnet_mac(densenet)
    assert report.after.conv_mac == vovnet_mac(osa)
    assert report.after.params == count_params(osa)
    # unchanged tensors keep their weights; the narrowed ones are new
    assert osa.weights is not None and densenet.weights is not None
    key = f"{block}.denselayer5.conv2.weight"
    assert torch.equal(osa.weights[key], densenet.weights[key])
    assert osa.weights[f"{block}.denselayer5.conv1.weight"].shape[1] == 32
    # the emitted spec loads, compiles and runs
    path = tmp_path / "densenet121_osa.yaml"
    path.write_text(graph_to_yaml(osa))
    again = archgraph.load(path)
    assert count_params(again) == count_params(osa)
    module = archgraph.compile(again, weights=osa.weights).eval()
    with torch.no_grad():
        y = module(torch.randn(1, 3, 224, 224))
    assert y.shape == (1, 1000) and torch.isfinite(y).all()


def test_cli_dense_to_osa_reports_lower_mac(tmp_path, capsys) -> None:
    from archgraph.cli import main

    path = tmp_path / "osa.yaml"
    assert (
        main(["compile", "densenet121", "--rewrite", "dense-to-osa", "--emit-spec", str(path)]) == 0
    )
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "memory access cost" in ln)
    assert float(line.rsplit("(", 1)[1].rstrip("x)")) < 1.0
    assert get_op("conv2d") and "conv_concat" in path.read_text()


def test_rewrite_needs_dense_blocks_and_a_known_name() -> None:
    g = archgraph.load("resnet18", image_size=64)
    with pytest.raises(archgraph.ArchgraphError, match="no dense block"):
        rewrite(g, "dense-to-osa")
    with pytest.raises(archgraph.ArchgraphError, match="did you mean 'dense-to-osa'"):
        rewrite(g, "dense_to_osa")

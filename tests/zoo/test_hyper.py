"""Hypernetworks: `hyper_conv` (a convolution whose weight a generator MLP computes) against
plain PyTorch written here (the MLP by hand, then F.conv2d with the generated weight), with and
without MIP (constant-magnitude input encoding, generated weight added to a static one), per
batch and per sample (a task-embedding input); the hyper_resnet zoo spec's costs split between
generator and target, and pruning it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import archgraph
from archgraph import Builder
from archgraph.cli import main
from archgraph.errors import SpecError
from archgraph.profile.costs import node_costs


def _generate(sd: dict[str, torch.Tensor], z: torch.Tensor, mip: bool) -> torch.Tensor:
    """The generator MLP by hand: [cos, sin] encoding (MIP), fc1, ReLU, fc2."""
    if mip:
        z = torch.cat([torch.cos(z * math.pi / 2), torch.sin(z * math.pi / 2)], dim=-1)
    h = torch.relu(z @ sd["h.hyper.fc1.weight"].t() + sd["h.hyper.fc1.bias"])
    return h @ sd["h.hyper.fc2.weight"].t() + sd["h.hyper.fc2.bias"]


@pytest.mark.parametrize("mip", [False, True])
def test_generated_conv_equals_f_conv2d_with_the_generated_weight(mip: bool) -> None:
    b = Builder("hyper", batch=2)
    x = b.input("x", [4, 9, 9])
    b.output(b.block("hyper_conv", x, name="h", out_channels=6, stride=2, mip=mip, bias=True))
    module = archgraph.compile(b.build(), seed=5).eval()
    sd = module.state_dict()
    assert ("h.conv.weight" in sd) == mip  # MIP's static weight; the generated one is no leaf
    x = torch.randn(2, 4, 9, 9)
    w = _generate(sd, sd["h.embedding"], mip).reshape(6, 4, 3, 3)
    if mip:
        w = w + sd["h.conv.weight"]
    ref = F.conv2d(x, w, sd["h.conv.bias"], stride=2, padding=1)
    with torch.no_grad():
        torch.testing.assert_close(module(x), ref)
    # the generated weight is a function of the generator: its gradient reaches fc2
    module(x).sum().backward()
    grad = module.get_submodule("h.hyper.fc2").weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_per_sample_weights_from_a_task_embedding_input() -> None:
    b = Builder("task", batch=3)
    x = b.input("x", [2, 6, 6])
    task = b.input("task", [5])
    b.output(b.block("hyper_conv", x, task, name="h", out_channels=3, mip=True))
    graph = b.build()
    module = archgraph.compile(graph, seed=2).eval()
    sd = module.state_dict()
    assert "h.embedding" not in sd  # the context input replaces the learned embedding
    x, t = torch.randn(3, 2, 6, 6), torch.rand(3, 5)
    ws = _generate(sd, t, mip=True).reshape(3, 3, 2, 3, 3) + sd["h.conv.weight"]
    ref = torch.cat([F.conv2d(x[i : i + 1], ws[i], padding=1) for i in range(3)])
    with torch.no_grad():
        torch.testing.assert_close(module(x, t), ref)
        for level in (1, 2):
            torch.testing.assert_close(archgraph.compile(graph, level, seed=2).eval()(x, t), ref)


def test_sphere_encoding_has_constant_magnitude() -> None:
    b = Builder("enc", batch=4)
    b.output(b.node("sphere_encode", b.input("z", [7]), name="enc"))
    module = archgraph.compile(b.build())
    for scale in (1e-3, 1.0, 1e3):
        out = module(torch.randn(4, 7) * scale)
        torch.testing.assert_close(out.norm(dim=-1), torch.full((4,), math.sqrt(7)))


def test_generated_weight_of_the_wrong_size_is_a_located_error() -> None:
    b = Builder("bad")
    x = b.input("x", [4, 8, 8])
    z = b.node("learned_embedding", name="z", dim=3)
    w = b.node("linear", z, name="gen", out_features=10)
    with pytest.raises(SpecError) as err:
        b.node("hyper_conv2d", x, w, name="conv", out_channels=2, kernel_size=3)
    e = err.value
    assert e.node == "conv" and e.loc is not None and e.loc.file == __file__
    assert "[1, 72]" in (e.expected or "") and "'gen'" in (e.found or "")


def test_hyper_resnet_counts_generator_and_target_separately() -> None:
    graph = archgraph.load("hyper_resnet")
    costs = {c.id: c for c in node_costs(graph)}
    # layer2.conv1: 16 -> 32 channels, stride 2, 16x16 out; generator 16 -> 32 -> 32*16*9
    gen = [c for i, c in costs.items() if i.startswith("layer2.conv1.hyper.")]
    assert sum(c.macs for c in gen) == 16 * 32 + 32 * (32 * 16 * 9)
    assert sum(c.params for c in gen) == (16 * 32 + 32) + (32 * 32 * 16 * 9 + 32 * 16 * 9)
    target = costs["layer2.conv1.conv"]
    assert target.macs == 32 * 16 * 16 * 16 * 9
    assert target.params == 32 * 16 * 9  # MIP's static weight
    assert costs["layer2.conv1.embedding"].params == 8


def test_prune_channels_prunes_the_generators_and_the_result_runs(tmp_path, capsys) -> None:
    spec = tmp_path / "pruned.yaml"
    assert (
        main(["compile", "hyper_resnet", "--prune", "channels=0.5", "--emit-spec", str(spec)]) == 0
    )
    assert "removed 96 of 192 prunable channels" in capsys.readouterr().out
    pruned = archgraph.load(spec)
    assert pruned["layer1.conv1.hyper.fc1"].type.shape[-1] == 16  # hidden 32 -> 16
    out = archgraph.compile(pruned).eval()(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 10) and torch.isfinite(out).all()

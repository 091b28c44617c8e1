"""Unstructured sparsity: ERK densities and the cubic schedule against hand-computed values;
magnitude masks; masks kept as buffers and re-applied after a real optimizer step."""

from __future__ import annotations

import pytest
import torch

import archgraph
from archgraph.passes.prune.schedule import GradualPruning, cubic_sparsity
from archgraph.passes.prune.sparsity import (
    attach_masks,
    erk_densities,
    erk_scores,
    prune_weights,
)
from tests.prune.helpers import TINY, TINY_NAME, random_graph


def test_erk_scores_and_densities_by_hand() -> None:
    shapes = {"a": (4, 2, 3, 3), "b": (10, 5), "c": (100, 50)}
    scores = erk_scores(shapes)
    # (4 + 2 + 3 + 3) / 72, (10 + 5) / 50, (100 + 50) / 5000
    assert scores == pytest.approx({"a": 12 / 72, "b": 0.3, "c": 0.03})
    d = erk_densities(shapes, 0.5)
    # eps = 2561 / 177 makes b (highest score) exceed 1: dense; then eps = 2511 / 162 makes a
    # exceed 1: dense; then eps = (2500 - 61) / 150 and c's density 0.03 * eps = 0.4878
    assert d == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.4878})
    kept = sum(d[k] * torch.Size(s).numel() for k, s in shapes.items())
    assert kept == pytest.approx(0.5 * (72 + 50 + 5000))
    # no layer saturates at low sparsity: all densities eps * score
    low = erk_densities({"x": (64, 64, 3, 3), "y": (128, 64, 3, 3)}, 0.9)
    ratio = (64 + 64 + 6) / (64 * 64 * 9) / ((128 + 64 + 6) / (128 * 64 * 9))
    assert low["x"] / low["y"] == pytest.approx(ratio)


def test_cubic_schedule_by_hand() -> None:
    kw = dict(initial=0.0, final=0.8, start=10, frequency=5, steps=4)
    expected = {
        0: 0.0,
        10: 0.0,
        15: 0.8 - 0.8 * 0.75**3,  # 0.4625
        17: 0.8 - 0.8 * 0.75**3,  # held between pruning steps
        20: 0.8 - 0.8 * 0.5**3,  # 0.7
        25: 0.8 - 0.8 * 0.25**3,  # 0.7875
        30: 0.8,
        1000: 0.8,
    }
    for step, value in expected.items():
        assert cubic_sparsity(step, **kw) == pytest.approx(value), step
    assert cubic_sparsity(15, **kw) == pytest.approx(0.4625)


def test_magnitude_layer_and_global() -> None:
    g = random_graph(TINY_NAME, **TINY)
    layer, masks, report = prune_weights(g, 0.75, method="magnitude", scope="layer")
    assert layer.weights is not None
    for key, mask in masks.items():
        w = layer.weights[key]
        assert int((mask == 0).sum()) == round(0.75 * w.numel())
        orig = g.weights[key].abs()  # type: ignore[index]
        assert orig[mask == 0].max() <= orig[mask == 1].min()
    assert "stages.1.blocks.0.conv_concat.conv.weight" in str(report) and "sparsity 0.750" in str(
        report
    )
    glob, gmasks, _ = prune_weights(g, 0.75, method="magnitude", scope="global")
    total = sum(m.numel() for m in gmasks.values())
    assert sum(int((m == 0).sum()) for m in gmasks.values()) == round(0.75 * total)
    kept = torch.cat([g.weights[k].abs()[m == 1] for k, m in gmasks.items()])  # type: ignore[index]
    gone = torch.cat([g.weights[k].abs()[m == 0] for k, m in gmasks.items()])  # type: ignore[index]
    assert gone.max() <= kept.min()
    per_layer = {k: float((m == 0).float().mean()) for k, m in gmasks.items()}
    assert max(per_layer.values()) - min(per_layer.values()) > 0.1  # global: uneven by design


def test_random_erk_masks_follow_the_densities() -> None:
    g = random_graph(TINY_NAME, **TINY)
    _, masks, _ = prune_weights(g, 0.9, method="random-erk", seed=3)
    d = erk_densities({k: tuple(m.shape) for k, m in masks.items()}, 0.9)
    for key, mask in masks.items():
        assert int(mask.sum()) == round(d[key] * mask.numel())
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == pytest.approx(0.1 * total, abs=len(masks))


def _train_step(module: torch.nn.Module, opt: torch.optim.Optimizer, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    loss = module(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_masks_are_buffers_and_survive_optimizer_steps() -> None:
    g = random_graph(TINY_NAME, **TINY)
    pruned, masks, _ = prune_weights(g, 0.8)
    module = archgraph.compile(pruned).train()
    opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    handle = attach_masks(module, masks, opt)
    assert "stages.1.blocks.0.conv_concat.conv.weight_mask" in module.state_dict()
    key = "stages.2.blocks.0.conv_mid.1.conv.weight"
    before = module.get_parameter(key).detach().clone()
    for step in range(2):
        _train_step(module, opt, step)
    after = module.get_parameter(key).detach()
    mask = masks[key].bool()
    assert torch.all(after[~mask] == 0)
    assert not torch.equal(after[mask], before[mask])  # the kept weights did train
    # without the hook the same step would revive pruned weights (the test can fail)
    handle.remove()
    _train_step(module, opt, 5)
    assert torch.any(module.get_parameter(key).detach()[~mask] != 0)


def test_gradual_pruning_callback_follows_the_schedule() -> None:
    g = random_graph(TINY_NAME, **TINY)
    module = archgraph.compile(g).train()
    opt = torch.optim.SGD(module.parameters(), lr=0.01)
    pruning = GradualPruning(module, opt, final=0.6, start=2, frequency=2, steps=3)
    seen = []
    for step in range(10):
        _train_step(module, opt, step)
        seen.append(pruning.step(step))
        w = module.get_parameter("stages.1.blocks.0.conv_concat.conv.weight")
        assert float((w == 0).float().mean()) == pytest.approx(seen[-1], abs=1e-3)
    s = [
        cubic_sparsity(t, initial=0.0, final=0.6, start=2, frequency=2, steps=3) for t in range(10)
    ]
    assert seen == pytest.approx(s)
    assert seen[-1] == pytest.approx(0.6)

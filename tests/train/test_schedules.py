"""Sparse schedules against hand-computed values: GraNet's drop-and-regrow and its cosine regrow
fraction, the trainer's pruning window, random ERK masks at init kept through optimizer steps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archgraph.passes.prune.granet import GraNet, drop_and_regrow, regrow_fraction
from archgraph.train.schedules import Window, make_schedule, pruning_window


def test_drop_and_regrow_by_hand() -> None:
    w = torch.tensor([0.1, -0.8, 0.3, 0.6, -0.5, 0.2, 0.7, -0.4])
    mask = torch.tensor([1.0, 1, 1, 1, 1, 1, 0, 0])
    grad = torch.tensor([0.9, 0.0, 0.05, 0.0, 0.0, -0.4, 0.3, 0.2])
    new, regrown = drop_and_regrow(w, grad, mask, 0.5)
    # 6 active, drop round(0.5 * 6) = 3 smallest |w|: positions 0 (.1), 5 (.2), 2 (.3);
    # regrow 3 of the inactive {0, 2, 5, 6, 7} by |grad|: 0 (.9), 5 (.4), 6 (.3)
    assert new.tolist() == [1, 1, 0, 1, 1, 1, 1, 0]
    assert regrown.tolist() == [1, 0, 0, 0, 0, 1, 1, 0]
    same, none = drop_and_regrow(w, None, mask, 0.5)  # no gradient yet: nothing moves
    assert torch.equal(same, mask) and int(none.sum()) == 0


def test_regrow_fraction_is_a_cosine_by_hand() -> None:
    kw = dict(initial=0.5, start=10, frequency=5, steps=4)  # pruning steps 10..30
    assert regrow_fraction(10, **kw) == pytest.approx(0.5)
    assert regrow_fraction(15, **kw) == pytest.approx(0.25 * (1 + math.cos(math.pi / 4)))
    assert regrow_fraction(20, **kw) == pytest.approx(0.25)
    assert regrow_fraction(30, **kw) == pytest.approx(0.0)
    assert regrow_fraction(99, **kw) == pytest.approx(0.0)


class _One(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


def test_granet_step_by_hand() -> None:
    w = torch.tensor([(i + 1) / 100 * (-1) ** i for i in range(16)]).view(4, 4)
    module = _One(w)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    granet = GraNet(
        module, opt, final=0.5, start=0, frequency=1, steps=2, scope="layer", regrow=0.5
    )
    grad = torch.zeros(16)
    grad[2], grad[7], grad[0] = 5.0, -3.0, 1.0
    module.weight.grad = grad.view(4, 4)
    # step 1 of 2: s = 0.5 - 0.5 * (1 - 1/2)^3 = 0.4375: magnitude keeps 9 of 16 (positions
    # 7..15); r = 0.25 * (1 + cos(pi / 2)) = 0.25 drops round(0.25 * 9) = 2 more (7, 8) and
    # regrows 2 of the inactive 0..8 by |grad|: 2 (5) and 7 (3), both starting at zero
    assert granet.step(1) == pytest.approx(0.4375)
    mask = module.get_buffer("weight_mask").flatten()
    assert torch.nonzero(mask).flatten().tolist() == [2, 7, 9, 10, 11, 12, 13, 14, 15]
    after = module.weight.detach().flatten()
    assert after[2] == 0 and after[7] == 0
    assert torch.equal(after[9:], w.flatten()[9:])
    assert torch.all(after[[0, 1, 3, 4, 5, 6, 8]] == 0)
    # step 2: s_f = 0.5 with r = 0 (the cosine's end): magnitude pruning only, 8 of 16 kept
    assert granet.step(2) == pytest.approx(0.5)
    assert int(module.get_buffer("weight_mask").sum()) == 8


def test_pruning_window_by_hand() -> None:
    # 10% .. 70% of the steps, at most 20 pruning steps
    assert pruning_window(100) == Window(start=10, frequency=3, steps=20)
    assert pruning_window(7) == Window(start=0, frequency=1, steps=4)
    assert pruning_window(2) == Window(start=0, frequency=1, steps=1)


class _Two(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(10, 5)  # weight (5, 10)
        self.b = nn.Linear(50, 100)  # weight (100, 50)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x[:, :10]).sum(1) + self.b(x).sum(1)


def test_random_erk_at_init_by_hand_and_static() -> None:
    torch.manual_seed(0)
    module = _Two()
    opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    erk = make_schedule("erk", module, opt, sparsity=0.5, total_steps=10)
    # scores 15/50 = 0.3 and 150/5000 = 0.03; eps = 2525/165 makes a's density 4.59 > 1: a is
    # dense; then eps = (2500 - 25)/150 = 16.5 and b's density 0.03 * 16.5 = 0.495
    assert int(module.a.weight_mask.sum()) == 50
    assert int(module.b.weight_mask.sum()) == round(0.495 * 5000)
    masks = {k: module.get_buffer(k).clone() for k in ("a.weight_mask", "b.weight_mask")}
    for step in range(3):
        loss = module(torch.randn(4, 50)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        erk.step(step)
    for k, m in masks.items():
        assert torch.equal(module.get_buffer(k), m)
    assert int((module.b.weight == 0).sum()) == 5000 - 2475
    assert erk.sparsity == pytest.approx(1 - 2525 / 5050)

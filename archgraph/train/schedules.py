"""The named sparse-training schedules of the trainer (`--sparse-schedule NAME --sparsity S`):

- `gmp`: gradual magnitude pruning (Zhu & Gupta 2017). Dense at first; the sparsity rises along
  the cubic schedule to S, the masks recomputed by per-layer magnitude at each pruning step.
- `erk`: random pruning at initialization, static (Liu et al. 2022). Masks drawn at random at
  the Erdős–Rényi-Kernel layer densities for S before the first step and never changed.
- `granet`: GMP (global magnitude) plus zero-cost neuroregeneration (Liu et al. 2021): at each
  pruning step a cosine-decaying fraction of every layer's weights is dropped by magnitude and
  regrown where the gradient is largest, so the sparsity still follows the cubic schedule.

The gradual schedules prune from 10% to 70% of the training steps, in up to 20 pruning steps,
then train on at S. Masks are module buffers '<param>_mask', re-applied after every optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from archgraph.errors import ArchgraphError, did_you_mean
from archgraph.passes.prune.granet import GraNet
from archgraph.passes.prune.options import check_ratio
from archgraph.passes.prune.schedule import GradualPruning, StaticSparsity
from archgraph.passes.prune.sparsity import prunable, random_erk_masks

SCHEDULES = {
    "gmp": "gradual magnitude pruning, cubic schedule (Zhu & Gupta 2017)",
    "erk": "random masks at ERK densities drawn at initialization, static (Liu et al. 2022)",
    "granet": "gradual magnitude pruning + regrowth by gradient magnitude (Liu et al. 2021)",
}
PRUNING_STEPS = 20


class SparseSchedule(Protocol):
    keys: list[str]
    sparsity: float

    def step(self, step: int) -> float: ...
    def state_dict(self) -> dict[str, float]: ...
    def load_state_dict(self, state: dict[str, float]) -> None: ...


@dataclass(frozen=True)
class Window:
    """Pruning steps start, start + frequency, ..., start + steps * frequency."""

    start: int
    frequency: int
    steps: int


def pruning_window(total_steps: int) -> Window:
    """From 10% to 70% of `total_steps`, at most PRUNING_STEPS pruning steps."""
    if total_steps < 2:
        raise ArchgraphError(
            "a gradual sparse schedule needs at least 2 training steps",
            found=f"{total_steps} step(s)",
            hint="train more epochs or use a smaller --batch",
        )
    start = total_steps // 10
    end = max(total_steps * 7 // 10, start + 1)
    frequency = max(1, (end - start) // PRUNING_STEPS)
    return Window(start, frequency, max(1, (end - start) // frequency))


def check_schedule(name: str) -> str:
    if name not in SCHEDULES:
        raise ArchgraphError(
            f"unknown sparse schedule '{name}'",
            expected=" | ".join(SCHEDULES),
            found=repr(name),
            hint=did_you_mean(name, SCHEDULES),
        )
    return name


def make_schedule(
    name: str,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    sparsity: float,
    total_steps: int,
    seed: int = 0,
) -> SparseSchedule:
    """The schedule `name` (see SCHEDULES) on `module`, reaching `sparsity` within
    `total_steps` optimizer steps; its masks are attached to `module` now."""
    check_schedule(name)
    check_ratio("weights", sparsity)
    if name == "erk":
        state = dict(module.named_parameters())
        keys = prunable(state)
        masks = random_erk_masks({k: state[k] for k in keys}, keys, sparsity, seed)
        return StaticSparsity(module, optimizer, masks)
    w = pruning_window(total_steps)
    kw = dict(final=sparsity, start=w.start, frequency=w.frequency, steps=w.steps)
    if name == "gmp":
        return GradualPruning(module, optimizer, **kw)
    return GraNet(module, optimizer, **kw)

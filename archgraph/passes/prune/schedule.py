"""Gradual magnitude pruning (Zhu & Gupta 2017) as a training-loop callback.

At steps t in {t0, t0 + dt, ..., t0 + n dt} the target sparsity is
    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n dt))^3
and the masks are recomputed by magnitude; between pruning steps the masks stay and are
re-applied after every optimizer step (archgraph.passes.prune.sparsity.attach_masks).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from archgraph.errors import ArchgraphError
from archgraph.passes.prune.sparsity import (
    MaskHandle,
    attach_masks,
    magnitude_masks,
    prunable,
)


def cubic_sparsity(
    step: int, *, initial: float, final: float, start: int, frequency: int, steps: int
) -> float:
    """Zhu & Gupta's target sparsity at `step` (`steps` = n pruning steps after `start`, every
    `frequency` steps): s_i before start, s_f after start + n * frequency, the cubic between,
    held constant between pruning steps."""
    if step < start:
        return initial
    span = steps * frequency
    t = min(step - start, span)
    t -= t % frequency
    return final + (initial - final) * (1 - t / span) ** 3


class GradualPruning:
    """Callback: call `step(t)` after each optimizer step t (0-based). Masks are recomputed by
    magnitude at the schedule's pruning steps and re-applied after every optimizer step."""

    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        final: float,
        start: int = 0,
        frequency: int = 10,
        steps: int = 10,
        initial: float = 0.0,
        scope: str = "layer",
    ) -> None:
        if not (0 <= initial <= final < 1) or frequency < 1 or steps < 1 or start < 0:
            raise ArchgraphError(
                "gradual pruning needs 0 <= initial <= final < 1, frequency, steps >= 1, start >= 0",
                found=f"initial={initial}, final={final}, frequency={frequency}, steps={steps}, start={start}",
            )
        self.module, self.scope = module, scope
        self.schedule = dict(
            initial=initial, final=final, start=start, frequency=frequency, steps=steps
        )
        state = dict(module.named_parameters())
        self.keys = prunable(state)
        weights = {k: state[k] for k in self.keys}
        self.sparsity = initial
        self.handle: MaskHandle = attach_masks(
            module, magnitude_masks(weights, self.keys, initial, scope), optimizer
        )

    def target(self, step: int) -> float:
        return cubic_sparsity(step, **self.schedule)

    def is_pruning_step(self, step: int) -> bool:
        s = self.schedule
        offset = step - s["start"]
        return 0 <= offset <= s["steps"] * s["frequency"] and offset % s["frequency"] == 0

    def step(self, step: int) -> float:
        """Recompute the masks if `step` is a pruning step; returns the current sparsity."""
        if self.is_pruning_step(step):
            self.sparsity = self.target(step)
            state = dict(self.module.named_parameters())
            weights = {k: state[k] for k in self.keys}
            self.handle.update(magnitude_masks(weights, self.keys, self.sparsity, self.scope))
        return self.sparsity

    def state_dict(self) -> dict[str, float]:
        """What a checkpoint needs beyond the module (whose buffers hold the masks)."""
        return {"sparsity": self.sparsity}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.sparsity = float(state["sparsity"])


class StaticSparsity:
    """Fixed masks through training (re-applied after every optimizer step): random pruning at
    initialization (Liu et al. 2022) with `random_erk_masks`, or any masks given. `step` is a
    no-op returning the masks' sparsity."""

    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        masks: Mapping[str, torch.Tensor],
    ) -> None:
        self.keys = list(masks)
        kept = sum(int(m.count_nonzero()) for m in masks.values())
        total = sum(m.numel() for m in masks.values())
        self.sparsity = 1 - kept / total if total else 0.0
        self.handle: MaskHandle = attach_masks(module, masks, optimizer)

    def step(self, step: int) -> float:
        return self.sparsity

    def state_dict(self) -> dict[str, float]:
        return {"sparsity": self.sparsity}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.sparsity = float(state["sparsity"])

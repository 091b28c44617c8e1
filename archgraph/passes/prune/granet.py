"""GraNet (Liu et al. 2021): gradual magnitude pruning plus zero-cost neuroregeneration.

The cubic GMP schedule (schedule.cubic_sparsity) sets the target sparsity s_t at the pruning
steps t0, t0 + dt, ..., t0 + n dt. At each of them, after the masks are recomputed by magnitude
at s_t:
  1. every layer drops a further fraction r_t of its remaining weights, smallest magnitude first;
  2. every layer regrows as many connections as it dropped, where the magnitude of the dense
     gradient (the last backward pass's: it costs nothing extra) is largest among its inactive
     positions; regrown weights start at zero.
Each layer keeps its count of active weights, so the total sparsity still follows s_t. The regrow
fraction decays along a cosine from r_0 at t0 to 0 at the last pruning step:
    r_t = r_0 / 2 * (1 + cos(pi * (t - t0) / (n dt))).
Magnitude pruning is global by default (the GraNet code's), dropping and regrowing per layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from archgraph.passes.prune.schedule import GradualPruning
from archgraph.passes.prune.sparsity import magnitude_masks


def regrow_fraction(step: int, *, initial: float, start: int, frequency: int, steps: int) -> float:
    """The cosine-decayed fraction r_t of a layer's active weights dropped and regrown."""
    span = steps * frequency
    t = min(max(step - start, 0), span)
    return initial / 2 * (1 + math.cos(math.pi * t / span))


def drop_and_regrow(
    weight: torch.Tensor, grad: torch.Tensor | None, mask: torch.Tensor, fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's neuroregeneration: drop round(fraction * active) of the active weights with
    the smallest |weight|, regrow as many inactive positions with the largest |grad|. Returns
    the new mask and a 0/1 tensor of the regrown positions (ties broken by position)."""
    flat_mask = mask.flatten().clone()
    active = torch.nonzero(flat_mask).flatten()
    n = round(fraction * active.numel())
    regrown = torch.zeros_like(flat_mask)
    if n == 0 or grad is None:
        return mask.clone(), regrown.view_as(mask)
    magnitude = weight.detach().abs().flatten()[active]
    order = torch.argsort(magnitude, stable=True)
    flat_mask[active[order[:n]]] = 0
    score = grad.detach().abs().flatten().clone()
    score[flat_mask.bool()] = -1.0  # only inactive positions can grow
    grow = torch.argsort(-score, stable=True)[:n]
    flat_mask[grow] = 1
    regrown[grow] = 1
    return flat_mask.view_as(mask), regrown.view_as(mask)


class GraNet(GradualPruning):
    """Callback: call `step(t)` after each optimizer step t (0-based), before the gradients
    are cleared (regrowth reads them). `regrow` is r_0; the other arguments are
    GradualPruning's."""

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
        scope: str = "global",
        regrow: float = 0.5,
    ) -> None:
        super().__init__(
            module,
            optimizer,
            final=final,
            start=start,
            frequency=frequency,
            steps=steps,
            initial=initial,
            scope=scope,
        )
        self.regrow = regrow

    def fraction(self, step: int) -> float:
        s = self.schedule
        return regrow_fraction(
            step, initial=self.regrow, start=s["start"], frequency=s["frequency"], steps=s["steps"]
        )

    def step(self, step: int) -> float:
        if not self.is_pruning_step(step):
            return self.sparsity
        self.sparsity = self.target(step)
        state = dict(self.module.named_parameters())
        weights = {k: state[k] for k in self.keys}
        masks = magnitude_masks(weights, self.keys, self.sparsity, self.scope)
        fraction = self.fraction(step)
        regrown = {}
        for key in self.keys:
            masks[key], regrown[key] = drop_and_regrow(
                weights[key], weights[key].grad, masks[key], fraction
            )
        with torch.no_grad():
            for key in self.keys:
                weights[key].mul_(1 - regrown[key])  # regrown connections start at zero
        self.handle.update(masks)
        return self.sparsity

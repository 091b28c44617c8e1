"""Unstructured sparsity: weight masks by magnitude (per layer or global) or drawn at random at
Erdős–Rényi-Kernel densities (Evci et al. 2020; Liu et al. 2022), kept as buffers on a module
and re-applied after every optimizer step.

    graph, masks, report = prune_weights(graph, 0.9, method="magnitude", scope="global")
    module = archgraph.compile(graph)
    handle = attach_masks(module, masks, optimizer)   # buffers '<param>_mask'; post-step hook

Prunable tensors: parameters named `weight` (or ending in `.weight`) with two or more dims —
conv kernels, linear and attention projections; biases, normalization and embeddings stay dense.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from archgraph.ir.graph import Graph
from archgraph.ir.weights import bind_weights, param_specs
from archgraph.passes.prune.options import check_choice, check_ratio
from archgraph.passes.rewrites.report import ArchReport, measure

METHODS = ("magnitude", "random-erk")
SCOPES = ("layer", "global")
MASK_SUFFIX = "_mask"


def prunable(weights: Mapping[str, torch.Tensor], graph: Graph | None = None) -> list[str]:
    """The keys of the tensors unstructured sparsity applies to, in order."""
    trainable = None if graph is None else {k for k, s in param_specs(graph).items() if s.trainable}
    return [
        k
        for k, t in weights.items()
        if (k == "weight" or k.endswith(".weight"))
        and t.dim() >= 2
        and t.is_floating_point()
        and (trainable is None or k in trainable)
    ]


def erk_scores(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, float]:
    """sum(shape) / prod(shape): (c_out + c_in + k_h + k_w) / (c_out c_in k_h k_w) for a conv,
    (c_out + c_in) / (c_out c_in) for a linear."""
    out = {}
    for key, shape in shapes.items():
        n = 1
        for d in shape:
            n *= d
        out[key] = sum(shape) / n
    return out


def erk_densities(shapes: Mapping[str, tuple[int, ...]], sparsity: float) -> dict[str, float]:
    """Layer densities with density_l = eps * score_l, eps solved so that the kept weights are
    (1 - sparsity) of all; layers whose density would exceed 1 are made dense and eps solved
    again (REFERENCE.md, Pruning)."""
    check_ratio("weights", sparsity)
    scores = erk_scores(shapes)
    numel = {k: float(torch.Size(s).numel()) for k, s in shapes.items()}
    dense: set[str] = set()
    while True:
        rhs = sum((1 - sparsity) * numel[k] for k in shapes if k not in dense) - sum(
            sparsity * numel[k] for k in dense
        )
        denom = sum(scores[k] * numel[k] for k in shapes if k not in dense)
        eps = rhs / denom if denom else 0.0
        over = [k for k in shapes if k not in dense and eps * scores[k] > 1.0]
        if not over:
            break
        top = max(scores[k] for k in over)
        dense.update(k for k in over if scores[k] == top)
    return {k: 1.0 if k in dense else eps * scores[k] for k in shapes}


def _keep_top(t: torch.Tensor, k: int) -> torch.Tensor:
    """A 0/1 mask keeping the k largest |t| (ties broken by position, deterministically)."""
    mask = torch.zeros(t.numel(), dtype=t.dtype)
    if k > 0:
        idx = torch.topk(t.detach().abs().flatten(), k, sorted=False).indices
        mask[idx] = 1
    return mask.view_as(t)


def magnitude_masks(
    weights: Mapping[str, torch.Tensor], keys: list[str], sparsity: float, scope: str = "layer"
) -> dict[str, torch.Tensor]:
    """Masks removing the smallest-magnitude `sparsity` of each tensor (scope "layer") or of
    all of them together (scope "global")."""
    if scope == "layer":
        return {k: _keep_top(weights[k], round((1 - sparsity) * weights[k].numel())) for k in keys}
    flat = torch.cat([weights[k].detach().abs().flatten() for k in keys])
    n_prune = round(sparsity * flat.numel())
    if n_prune == 0:
        return {k: torch.ones_like(weights[k]) for k in keys}
    threshold = torch.kthvalue(flat, n_prune).values
    # the n_prune smallest go: strictly below the threshold, then ties at it in order
    below = flat < threshold
    ties = torch.nonzero(flat == threshold).flatten()[: n_prune - int(below.sum())]
    keep = ~below
    keep[ties] = False
    out, start = {}, 0
    for k in keys:
        n = weights[k].numel()
        out[k] = keep[start : start + n].to(weights[k].dtype).view_as(weights[k])
        start += n
    return out


def random_masks(
    weights: Mapping[str, torch.Tensor], densities: Mapping[str, float], seed: int = 0
) -> dict[str, torch.Tensor]:
    """Masks keeping round(density * numel) positions of each tensor, drawn uniformly at random
    (one seeded generator, tensors in the order of `densities`)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for k, density in densities.items():
        t = weights[k]
        n_keep = round(density * t.numel())
        mask = torch.zeros(t.numel(), dtype=t.dtype)
        mask[torch.randperm(t.numel(), generator=gen)[:n_keep]] = 1
        out[k] = mask.view_as(t)
    return out


def random_erk_masks(
    weights: Mapping[str, torch.Tensor], keys: list[str], sparsity: float, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Masks drawn uniformly at random per tensor at its ERK density (random pruning at
    initialization, Liu et al. 2022)."""
    densities = erk_densities({k: tuple(weights[k].shape) for k in keys}, sparsity)
    return random_masks(weights, {k: densities[k] for k in keys}, seed)


@dataclass(frozen=True)
class LayerSparsity:
    key: str
    numel: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0


def sparsity_table(weights: Mapping[str, torch.Tensor], keys: list[str]) -> list[LayerSparsity]:
    """Per-tensor count of exact zeros."""
    return [LayerSparsity(k, weights[k].numel(), int((weights[k] == 0).sum())) for k in keys]


def prune_weights(
    graph: Graph,
    sparsity: float,
    *,
    method: str = "magnitude",
    scope: str = "layer",
    seed: int = 0,
) -> tuple[Graph, dict[str, torch.Tensor], ArchReport]:
    """Zero `sparsity` of the prunable weights (module docstring). Returns the graph with the
    masked weights (same architecture), the masks keyed like the weights, and a report whose
    notes hold the per-layer sparsity. random-erk draws per-layer ERK densities (scope is
    ignored: ERK is a global allocation)."""
    check_ratio("weights", sparsity)
    check_choice("method", method, METHODS)
    check_choice("scope", scope, SCOPES)
    graph = graph.copy()
    if graph.weights is None:
        bind_weights(graph, seed=seed)
    assert graph.weights is not None
    keys = prunable(graph.weights, graph)
    if method == "magnitude":
        masks = magnitude_masks(graph.weights, keys, sparsity, scope)
    else:
        masks = random_erk_masks(graph.weights, keys, sparsity, seed)
    for k, m in masks.items():
        graph.weights[k] = graph.weights[k] * m
    table = sparsity_table(graph.weights, keys)
    zeros, total = sum(r.zeros for r in table), sum(r.numel for r in table)
    notes = [f"{zeros:,} of {total:,} prunable weights are zero ({zeros / max(total, 1):.3f})"]
    notes += [f"{r.key:<48} {r.numel:>10,}  sparsity {r.sparsity:.3f}" for r in table]
    size = measure(graph)
    how = f"method={method}" + (f", scope={scope}" if method == "magnitude" else ", ERK densities")
    title = f"prune weights={sparsity:g} ({how})"
    return graph, masks, ArchReport(title, size, size, tuple(notes))


def _owner(module: nn.Module, key: str) -> tuple[nn.Module, str]:
    path, _, name = key.rpartition(".")
    return (module.get_submodule(path) if path else module), name


class MaskHandle:
    """Masks attached to a module: `apply()` zeroes the masked weights again (the optimizer
    hook calls it after every step); `remove()` detaches the hook."""

    def __init__(self, module: nn.Module, keys: list[str]) -> None:
        self.module = module
        self.keys = keys
        self._hook = None

    def apply(self) -> None:
        with torch.no_grad():
            for key in self.keys:
                owner, name = _owner(self.module, key)
                getattr(owner, name).mul_(getattr(owner, name + MASK_SUFFIX))

    def update(self, masks: Mapping[str, torch.Tensor]) -> None:
        """Replace the mask buffers (a gradual schedule's new masks) and apply them."""
        for key, mask in masks.items():
            owner, name = _owner(self.module, key)
            getattr(owner, name + MASK_SUFFIX).copy_(mask)
        self.apply()

    def remove(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


def attach_masks(
    module: nn.Module,
    masks: Mapping[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | None = None,
) -> MaskHandle:
    """Register each mask as a buffer '<param>_mask' beside its parameter, zero the masked
    weights, and (with an optimizer) re-apply the masks after every optimizer step."""
    for key, mask in masks.items():
        owner, name = _owner(module, key)
        param = getattr(owner, name)
        owner.register_buffer(name + MASK_SUFFIX, mask.to(param.dtype).to(param.device).clone())
    handle = MaskHandle(module, list(masks))
    handle.apply()
    if optimizer is not None:
        handle._hook = optimizer.register_step_post_hook(lambda opt, args, kwargs: handle.apply())
    return handle

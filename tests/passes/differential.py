"""The differential check: a graph compiled with passes computes what it computes at -O0.

Weights are bound before any pass runs (so value-dependent passes see them); every module runs
in eval mode on the same seeded inputs; each output must agree with -O0's within
`TOLERANCE` x its scale (max |-O0 output|), and leave its inputs as they were (a pass that
writes in place must never write into the caller's tensors).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

import archgraph
from archgraph import Graph
from archgraph.profile.measure import example_inputs

TOLERANCE = 1e-4


def outputs(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        out = module.eval()(*inputs)
    return out if isinstance(out, tuple) else (out,)


def scaled_error(got: Sequence[torch.Tensor], ref: Sequence[torch.Tensor]) -> float:
    """The worst output's max |got - ref| over max |ref|."""
    assert len(got) == len(ref)
    worst = 0.0
    for g, r in zip(got, ref, strict=True):
        assert g.shape == r.shape and g.dtype == r.dtype
        scale = float(r.abs().max().clamp_min(1e-12))
        worst = max(worst, float((g - r).abs().max()) / scale)
    return worst


def check_against_o0(
    graph: Graph,
    weights: dict[str, torch.Tensor],
    *,
    levels: Sequence[int] = (1, 2),
    passes: Sequence[Sequence[str]] = (),
    seed: int = 0,
) -> dict[str, float]:
    """Compile at -O0 and at each level (and each explicit pass list); assert agreement.
    Returns the scaled error per configuration."""
    graph = graph.copy()
    graph.weights = weights
    inputs = example_inputs(graph, seed=seed)
    ref = outputs(archgraph.compile(graph, 0), inputs)
    assert all(torch.isfinite(r).all() for r in ref)
    errors: dict[str, float] = {}
    configs = [(f"-O{lvl}", lvl, None) for lvl in levels] + [
        (",".join(p), 0, list(p)) for p in passes
    ]
    originals = [t.clone() for t in inputs]
    for label, level, names in configs:
        module = archgraph.compile(graph, level, passes=names)
        errors[label] = scaled_error(outputs(module, inputs), ref)
        assert errors[label] <= TOLERANCE, f"{graph.name} {label}: error {errors[label]:.2e}"
        for i, (t, original) in enumerate(zip(inputs, originals, strict=True)):
            assert torch.equal(t, original), f"{graph.name} {label} wrote into its input {i}"
    return errors

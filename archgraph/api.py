"""The Python API: load a spec, compile a graph. The CLI is a thin shell over these."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import fx

from archgraph.codegen.fx import lower
from archgraph.errors import SpecError
from archgraph.ir.graph import Graph
from archgraph.ir.weights import bind_weights
from archgraph.spec import Limits, load_spec, zoo_names

OPT_LEVELS = (0,)


def load(source: str | Path, *, batch: int = 1, limits: Limits = Limits(), **params: Any) -> Graph:
    """Load a spec file, or a zoo spec by name, into a validated Graph.

    `params` override the spec's `params:` (e.g. num_classes=10); `batch` is the batch size the
    graph's types are inferred with (compiled modules accept any batch size).
    """
    return load_spec(source, batch=batch, params=params, limits=limits)


def zoo() -> list[str]:
    """Names of the built-in specs."""
    return zoo_names()


def compile(  # noqa: A001 - the verb users expect
    graph: Graph,
    opt_level: int = 0,
    weights: Mapping[str, torch.Tensor] | None = None,
    *,
    seed: int = 0,
) -> fx.GraphModule:
    """Bind weights, optimize at `opt_level`, lower to a torch.fx.GraphModule.

    `weights` (a state_dict keyed '<node id>.<param>', e.g. a torchvision model's) is bound
    strictly before any pass runs; without it the graph keeps weights it already has, or gets a
    deterministic initialization from `seed`.
    """
    if opt_level not in OPT_LEVELS:
        raise SpecError(
            f"optimization level -O{opt_level} is not available",
            expected=" or ".join(f"-O{o}" for o in OPT_LEVELS),
            found=f"-O{opt_level}",
            hint="-O1/-O2 arrive with the optimization passes",
        )
    graph = graph.copy()
    if weights is not None or graph.weights is None:
        bind_weights(graph, weights, seed)
    return lower(graph)


def timed_compile(
    graph: Graph,
    opt_level: int = 0,
    weights: Mapping[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> tuple[fx.GraphModule, float]:
    """compile() and its wall time in seconds."""
    start = time.perf_counter()
    module = compile(graph, opt_level, weights, seed=seed)
    return module, time.perf_counter() - start

"""Weights have one home: the graph. They are bound from a state_dict or initialized from a seed,
before any pass runs, keyed '<node id>.<param name>' like the compiled module's state_dict."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping

import torch

from archgraph.errors import WeightsError
from archgraph.ir.graph import Graph
from archgraph.ir.types import DTYPES
from archgraph.ops.registry import ParamSpec, get_op


def param_specs(graph: Graph) -> dict[str, ParamSpec]:
    """Every parameter and buffer of the graph, in node order, keyed like a state_dict."""
    specs: dict[str, ParamSpec] = {}
    for node in graph.nodes():
        if node.share is not None:  # its parameters are its target's (archgraph.ir.sharing)
            continue
        ins = [graph[i].type for i in node.inputs]
        for name, spec in get_op(node.op).params(node.args, ins).items():
            specs[param_key(node.id, name)] = spec
    return specs


def param_key(node_id: str, name: str) -> str:
    """The state_dict key of a node's tensor: '<node id>.<name>', or the node id itself for the
    tensor a node owns directly (ParamSpec name '', e.g. timm's top-level `pos_embed`)."""
    return f"{node_id}.{name}" if name else node_id


def count_params(graph: Graph) -> int:
    """Trainable parameters (buffers such as running statistics excluded), as torch counts them."""
    return sum(s.numel for s in param_specs(graph).values() if s.trainable)


def _init(spec: ParamSpec, gen: torch.Generator) -> torch.Tensor:
    dtype = DTYPES[spec.dtype]
    if spec.init == "zeros":
        return torch.zeros(spec.shape, dtype=dtype)
    if spec.init == "ones":
        return torch.ones(spec.shape, dtype=dtype)
    if spec.init == "constant":
        return torch.full(spec.shape, spec.value, dtype=dtype)
    if spec.init in ("kaiming_uniform", "fan_in_uniform"):
        # PyTorch's defaults: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in) for weights
        # as well as biases.
        bound = 1.0 / math.sqrt(spec.fan_in) if spec.fan_in else 0.0
        return torch.empty(spec.shape, dtype=dtype).uniform_(-bound, bound, generator=gen)
    if spec.init == "trunc_normal":
        return (
            torch.empty(spec.shape, dtype=dtype)
            .normal_(0.0, 0.02, generator=gen)
            .clamp_(-0.04, 0.04)
        )
    raise ValueError(f"unknown initializer '{spec.init}'")


def init_weights(graph: Graph, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic weights for the graph: the same seed and graph give the same tensors."""
    gen = torch.Generator().manual_seed(seed)
    return {key: _init(spec, gen) for key, spec in param_specs(graph).items()}


def check_weights(graph: Graph, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strictly match a state_dict to the graph: same keys, same shapes. Returns a plain dict."""
    specs = param_specs(graph)
    missing = [k for k in specs if k not in state_dict]
    unexpected = [k for k in state_dict if k not in specs]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
        hint = _rename_hint(missing, unexpected)
        raise WeightsError(
            "the state_dict does not match the graph's parameters: " + "; ".join(parts),
            expected=f"{len(specs)} tensors named '<node id>.<param>'",
            found=f"{len(state_dict)} tensors",
            hint=hint,
        )
    out: dict[str, torch.Tensor] = {}
    for key, spec in specs.items():
        t = state_dict[key]
        if tuple(t.shape) != spec.shape:
            raise WeightsError(
                f"tensor '{key}' has the wrong shape",
                node=key.rpartition(".")[0],
                expected=str(list(spec.shape)),
                found=str(list(t.shape)),
            )
        out[key] = t.detach().to(DTYPES[spec.dtype]).clone()
    return out


def _rename_hint(missing: list[str], unexpected: list[str]) -> str | None:
    """The state_dict key that the first missing tensor most likely is: the name to give it."""
    for key in missing:
        close = difflib.get_close_matches(key, unexpected, n=1, cutoff=0.6)
        if close:
            return (
                f"the state_dict's '{close[0]}' looks like the graph's '{key}': name the node so "
                f"that its tensor is '{close[0]}' (node ids are the state_dict keys)"
            )
    return None


def bind_weights(
    graph: Graph, state_dict: Mapping[str, torch.Tensor] | None = None, seed: int = 0
) -> Graph:
    """Give the graph its weights: the state_dict if given (strictly), else a seeded init."""
    graph.weights = (
        check_weights(graph, state_dict) if state_dict is not None else init_weights(graph, seed)
    )
    return graph

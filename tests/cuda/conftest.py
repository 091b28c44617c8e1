"""Shared fixtures of the CUDA backend tests: the zoo optimized at -O2 (built once)."""

from __future__ import annotations

import pytest

import archgraph
from archgraph.ir.graph import Graph
from archgraph.ir.weights import bind_weights
from archgraph.passes import run_pipeline


def optimized(name: str, level: int = 2) -> Graph:
    graph = archgraph.load(name).copy()
    bind_weights(graph, None, 0)
    return run_pipeline(graph, level)[0]


@pytest.fixture(scope="session")
def zoo_o2() -> dict[str, Graph]:
    return {name: optimized(name) for name in archgraph.zoo()}

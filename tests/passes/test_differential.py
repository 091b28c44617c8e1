"""Differential tests: every zoo spec and hundreds of random DAGs compute at -O1 and -O2 (and
under each pass alone) what they compute at -O0, within 1e-4 of the output scale."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

import archgraph
from archgraph.passes import PASSES
from tests.passes.differential import check_against_o0
from tests.passes.random_graphs import random_graphs, random_weights

CI_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("name", archgraph.zoo())
def test_zoo_spec_at_o1_and_o2_equals_o0(name: str) -> None:
    graph = archgraph.load(name)
    check_against_o0(graph, random_weights(graph, seed=1))


@CI_SETTINGS
@given(random_graphs())
def test_random_graphs_through_every_pipeline(graph: archgraph.Graph) -> None:
    check_against_o0(graph, random_weights(graph, seed=2), levels=(1, 2))


@settings(CI_SETTINGS, max_examples=60)
@given(random_graphs())
def test_random_graphs_under_each_pass_alone(graph: archgraph.Graph) -> None:
    check_against_o0(graph, random_weights(graph, seed=3), levels=(), passes=[[p] for p in PASSES])

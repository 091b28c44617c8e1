"""Round trip: every zoo graph written back to YAML (archgraph.spec.emit.graph_to_yaml) reloads to
an identical graph: the same ids, ops, args, wiring, types and outputs. Also for graphs the
passes changed (fused ops, rewritten args) and for awkward strings that YAML would misread."""

from __future__ import annotations

import pytest

import archgraph
from archgraph import Builder
from archgraph.errors import SpecError
from archgraph.ir.weights import bind_weights
from archgraph.passes import run_pipeline
from archgraph.passes.rewrite import Rewriter
from archgraph.spec import load_spec_text
from archgraph.spec.emit import graph_to_yaml
from tests.spec.fuzzing import same_graph


def reload(graph: archgraph.Graph, batch: int = 1) -> archgraph.Graph:
    return load_spec_text(graph_to_yaml(graph), "emitted.yaml", batch=batch)


def describe(graph: archgraph.Graph) -> list[tuple[object, ...]]:
    return [(n.id, n.op, n.inputs, n.args, n.type) for n in graph.nodes()]


@pytest.mark.parametrize("name", archgraph.zoo())
def test_zoo_graph_round_trips(name: str) -> None:
    graph = archgraph.load(name)
    again = reload(graph)
    assert describe(again) == describe(graph)  # every node, in order
    assert (again.name, again.description, again.inputs, again.outputs) == (
        graph.name,
        graph.description,
        graph.inputs,
        graph.outputs,
    )


def test_round_trip_at_another_batch_size() -> None:
    graph = archgraph.load("resnet18", batch=3)
    text = graph_to_yaml(graph)
    assert "load with that batch size" in text
    assert same_graph(load_spec_text(text, "e.yaml", batch=3), graph)
    assert (
        load_spec_text(text, "e.yaml")[graph.outputs[0]].type.shape[0] == 1
    )  # the file is per-sample


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_optimized_graph_round_trips(name: str) -> None:
    """-O2 replaces nodes with fused ops whose args are nested lists, tags and flags."""
    graph, _ = run_pipeline(bind_weights(archgraph.load(name)), opt_level=2)
    ops = {n.op for n in graph.nodes()}
    assert ops & {"conv2d_fused", "fused_pointwise", "buffer_write"}, ops
    assert same_graph(reload(graph), graph)


def test_strings_that_yaml_would_misread_are_quoted() -> None:
    b = Builder("1e5", "$x: true # not a comment")
    x = b.input("x", [4, 8])
    y = b.gelu(x, name="null", approximate="tanh")
    b.output(b.linear(y, name="true", out_features=3, bias=False))
    graph = b.build()
    again = reload(graph)
    assert again.name == "1e5" and again.description == "$x: true # not a comment"
    assert describe(again) == describe(graph)


def test_changed_args_are_written() -> None:
    """A pass that changes a node's args (as pruning does): the spec says the new values."""
    rw = Rewriter(archgraph.load("resnet18"))
    rw.put(rw.make("fc", "linear", ("flatten",), out_features=7, bias=False))
    graph = rw.build()
    text = graph_to_yaml(graph)
    assert "fc: {op: linear, in: flatten, out_features: 7, bias: false}" in text
    again = load_spec_text(text, "e.yaml")
    assert again["fc"].type.shape == (1, 7) and same_graph(again, graph)


def test_unwritable_node_ids_are_a_clear_error() -> None:
    b = Builder("odd")
    x = b.input("x", [4])
    b.output(b.relu(x, name="has space"))
    with pytest.raises(SpecError) as err:
        graph_to_yaml(b.build())
    assert "node id 'has space' cannot be written in a spec" in err.value.message

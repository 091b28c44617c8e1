"""Every zoo spec, whoever added it: loads, compiles, runs on the CPU, and every node's
inferred type equals the shape the compiled module really produces."""

from __future__ import annotations

import re

import pytest
import torch
from torch.fx.passes.shape_prop import ShapeProp

import archgraph
from archgraph.profile.measure import example_inputs


@pytest.mark.parametrize("name", archgraph.zoo())
def test_zoo_spec_compiles_and_runs(name: str) -> None:
    # How fast spec -> module is gets measured in benchmarks/bench_compile.py, not asserted here.
    graph = archgraph.load(name)
    module = archgraph.compile(graph).eval()
    inputs = example_inputs(graph)
    with torch.no_grad():
        ShapeProp(module).propagate(*inputs)
    checked = 0
    for node in module.graph.nodes:
        if (
            node.op in ("call_module", "call_function", "call_method")
            and node.meta["ir_id"] in graph
        ):
            ir = graph[node.meta["ir_id"]]
            # the node that produces the IR value: its id made an identifier ('block1-0.f' ->
            # 'block1_0_f', as fx names nodes)
            if node.name == re.sub(r"[^0-9A-Za-z_]", "_", ir.id):
                meta = node.meta["tensor_meta"]
                assert tuple(meta.shape) == ir.type.shape, ir.id
                assert meta.dtype == ir.type.torch_dtype, ir.id
                checked += 1
    assert checked == len(graph) - len(graph.inputs)
    outputs = module(*inputs)
    for out in outputs if isinstance(outputs, tuple) else (outputs,):
        assert torch.isfinite(out).all()

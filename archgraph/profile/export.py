"""ONNX export of a compiled graph, so it opens in Netron and runs in the ONNX toolchain.

torch.onnx's exporter (torch.export based, the default since PyTorch 2.9) is given the compiled
fx module with the graph's input and output ids as the ONNX value names and a dynamic batch
dimension; the model is checked with onnx.checker. `archgraph.build(...).onnx()` gives the bytes;
the output writer (archgraph.outputs) writes them."""

from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import fx

from archgraph.errors import ArchgraphError
from archgraph.ir.graph import Graph
from archgraph.profile.measure import example_inputs

EXPORT_BATCH = 2  # torch.export specializes a size-1 dimension, so the example batch is 2


def onnx_model(module: fx.GraphModule, graph: Graph, opt_level: int) -> bytes:
    """The compiled `module` of `graph` as a serialized ONNX model (batch dimension dynamic)."""
    import onnx

    module = module.eval()
    inputs = tuple(example_inputs(graph, batch=EXPORT_BATCH))
    batch = torch.export.Dim("batch")
    log = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(log):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                inputs,
                dynamo=True,
                input_names=list(graph.inputs),
                output_names=list(graph.outputs),
                dynamic_shapes=tuple({0: batch} for _ in inputs),
                verbose=False,
            )
    except Exception as e:  # noqa: BLE001 - any exporter failure becomes a user-facing error
        raise ArchgraphError(
            f"ONNX export of '{graph.name}' failed",
            found=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
            hint="an op whose lowering torch.onnx cannot translate; the exporter's log: "
            + log.getvalue()[-500:],
        ) from None
    model = program.model_proto
    model.graph.name = graph.name
    model.doc_string = f"archgraph {graph.name} at -O{opt_level}" + (
        f": {graph.description}" if graph.description else ""
    )
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()

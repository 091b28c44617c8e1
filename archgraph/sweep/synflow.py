"""SynFlow, the sweep's accuracy proxy (a sweep trains nothing).

SynFlow (Tanaka et al., "Pruning neural networks without any data by iteratively conserving
synaptic flow", NeurIPS 2020) scores a network at initialization: replace every parameter by its
absolute value, feed an all-ones input, and sum |theta * dR/dtheta| over the parameters, where R
is the sum of the outputs. Abdelfattah et al. ("Zero-Cost Proxies for Lightweight NAS", ICLR
2021) found it the zero-cost proxy that ranks architectures by trained accuracy best among those
they tried, with a rank correlation well short of 1: it orders candidates, it does not predict
an accuracy. Here it is computed in float64 (deep nets overflow float32) on the point's -O0
lowering in eval mode (batchnorm with its initial statistics is a per-channel affine map) at
batch size 1, and recorded as log10 of the score.
"""

from __future__ import annotations

import math

import torch

from archgraph.ir.graph import Graph


def synflow(graph: Graph) -> float:
    """log10 of the SynFlow score of `graph` with its weights (bound from seed 0 if it has none)."""
    from archgraph.api import compile as compile_graph

    module = compile_graph(graph, 0).double().eval()
    with torch.no_grad():
        for p in module.parameters():
            p.abs_()
    inputs = []
    for node_id in graph.inputs:
        t = graph[node_id].type
        shape = (1, *t.shape[1:])
        if t.torch_dtype.is_floating_point:
            inputs.append(torch.ones(shape, dtype=torch.float64))
        else:
            inputs.append(torch.zeros(shape, dtype=t.torch_dtype))
    out = module(*inputs)
    outs = out if isinstance(out, tuple | list) else [out]
    sum(o.double().sum() for o in outs).backward()
    score = sum(
        float((p.detach() * p.grad).abs().sum()) for p in module.parameters() if p.grad is not None
    )
    return math.log10(score) if score > 0 else float("-inf")

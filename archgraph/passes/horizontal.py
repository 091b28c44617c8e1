"""Horizontal fusion: parallel layers that read the same input become one wider layer whose
output is sliced back (`narrow`) for each original consumer. The layers are those whose op
declares how its outputs stack (OpDef.stack: output dim, width arg):

- fuse_qkv: layers with their outputs on the last dim (linear / linear_fused) over one input
  (the q, k and v projections of attention; any sibling projections) -> one linear with the
  weights stacked by output feature;
- fuse_parallel_convs: layers with their outputs on dim 1 (conv2d / conv2d_fused) over one
  input with the same geometry (kernel, stride, padding, dilation; groups 1) and epilogue (the
  1x1 branch convs of an Inception block) -> one conv with the filters stacked by output
  channel.

Only layers alike in everything but their width merge (same bias, activation, prepack; no
residual input; no prologue; no shared parameters). The merged layer gets a new id, the members' ids joined under
their common scope (`mixed_5b.branch0_conv__branch1_0_conv`); each member's id becomes the
narrow that hands its slice to its consumers, so they are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from archgraph.ir.graph import Graph, Node
from archgraph.ops.registry import get_op
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def _width(node: Node) -> str:
    stack = get_op(node.op).stack
    assert stack is not None
    return stack[1]


def _stacks_on(node: Node, dim: int) -> bool:
    stack = get_op(node.op).stack
    return stack is not None and stack[0] == dim


def merged_id(rw: Rewriter, ids: list[str]) -> str:
    parts = [i.split(".") for i in ids]
    common = 0
    while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    scope = ".".join(parts[0][:common])
    leaf = "__".join("_".join(p[common:]) for p in parts)
    return rw.fresh_id(f"{scope}.{leaf}" if scope else leaf)


def _mergeable_linear(node: Node) -> bool:
    return _stacks_on(node, -1) and not node.args.get("residual", False)


def _mergeable_conv(node: Node) -> bool:
    return (
        _stacks_on(node, 1)
        and node.args.get("groups", 1) == 1
        and not node.args.get("residual", False)
        and not node.args.get("pre_affine", False)
        and node.args.get("pre_activation", "none") == "none"
    )


def _merge(rw: Rewriter, members: list[Node], dim: int) -> None:
    first = members[0]
    width = _width(first)
    new_id = merged_id(rw, [m.id for m in members])
    for name in ("weight", "bias"):
        if f"{first.id}.{name}" in rw.weights:
            rw.weights[f"{new_id}.{name}"] = torch.cat(
                [rw.weight(m.id, name) for m in members], dim=0
            )
    total = sum(m.args[width] for m in members)
    rw.put(
        rw.make(new_id, first.op, first.inputs, **{**first.args, width: total}),
        after=first.inputs[0],
    )
    start = 0
    for m in members:
        length = m.args[width]
        rw.put(rw.make(m.id, "narrow", (new_id,), dim=dim, start=start, length=length))
        start += length


def _horizontal(graph: Graph, eligible: Callable[[Node], bool], dim: int) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    groups: dict[tuple[str, str, str], list[Node]] = {}
    for node in rw.order():
        if not eligible(node) or rw.shares_params(node.id):
            continue
        width = _width(node)
        rest = repr(sorted((k, v) for k, v in node.args.items() if k != width))
        groups.setdefault((node.inputs[0], node.op, rest), []).append(node)
    merged = [members for members in groups.values() if len(members) > 1]
    for members in merged:
        _merge(rw, members, dim)
    notes = tuple(f"merged {' + '.join(m.id for m in members)}" for members in merged[:3])
    return rw.build(), Change(groups_fused=len(merged), notes=notes)


def fuse_qkv(graph: Graph) -> tuple[Graph, Change]:
    return _horizontal(graph, _mergeable_linear, -1)


def fuse_parallel_convs(graph: Graph) -> tuple[Graph, Change]:
    return _horizontal(graph, _mergeable_conv, 1)


FUSE_QKV = Pass("fuse_qkv", "merge linears over one input (QKV projections)", fuse_qkv)
FUSE_PARALLEL_CONVS = Pass(
    "fuse_parallel_convs", "merge convs over one input (Inception branches)", fuse_parallel_convs
)

"""fuse_pointwise: chains of pointwise nodes become one fused_pointwise node each
(archgraph.ops.fused), computed in one call.

Members: the ops that are a pointwise step (OpDef.as_step: activations, scale, add, mul, a
plugin's) and the per-channel affine ops (OpDef.affine on dim 1: eval-mode batchnorm, an
`affine` step). Walking in topological order, a node joins the group of
one of its inputs when that input is the group's last node and has no other consumer (so no
intermediate value is needed outside the group) and reads it once; otherwise it starts a group. A two-input node
brings its other operand as an extra input of the group. Groups of two or more nodes are
replaced by one node that keeps the id of the group's last node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from archgraph.ir.graph import Graph, Node
from archgraph.ops.registry import get_op, get_step
from archgraph.passes.fold_bn import node_affine
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


@dataclass
class Group:
    inputs: list[str]
    members: list[str] = field(default_factory=list)
    steps: list[tuple[Any, ...]] = field(default_factory=list)
    affines: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def operand(self, value: str) -> int:
        if value not in self.inputs:
            self.inputs.append(value)
        return self.inputs.index(value)


def _is_member(node: Node) -> bool:
    op = get_op(node.op)
    return op.as_step(node.args) is not None or (op.affine is not None and op.affine.axis == 1)


def _add_step(rw: Rewriter, group: Group, node: Node, chain_input: str) -> None:
    step = get_op(node.op).as_step(node.args)
    if step is None:
        group.affines[len(group.steps)] = node_affine(rw, node, node.type.shape[1])
        group.steps.append(("affine",))
    elif get_step(step[0]).operand == "input":
        # x * x: with both operands the chain value, the "other" one is the chain input too
        other = next((i for i in node.inputs if i != chain_input), chain_input)
        group.steps.append((*step, group.operand(other)))
    else:
        group.steps.append(step)
    group.members.append(node.id)


def fuse_pointwise(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    group_of: dict[str, Group] = {}
    groups: list[Group] = []
    for node in rw.order():
        if not _is_member(node):
            continue
        joined = None
        for src in node.inputs:
            g = group_of.get(src)
            if (
                g is not None
                and g.members[-1] == src
                and rw.only_consumer(src) == node.id
                and node.inputs.count(src) == 1  # a value read twice is needed as a group input
            ):
                joined = g
                break
        if joined is not None:
            _add_step(rw, joined, node, src)
        else:
            joined = Group(inputs=[node.inputs[0]])
            groups.append(joined)
            _add_step(rw, joined, node, node.inputs[0])
        group_of[node.id] = joined
    fused = [g for g in groups if len(g.members) > 1]
    for g in fused:
        last = g.members[-1]
        dtype = rw[last].type.torch_dtype
        for i, (scale, shift) in g.affines.items():
            rw.weights[f"{last}.step{i}.scale"] = scale.to(dtype)
            rw.weights[f"{last}.step{i}.shift"] = shift.to(dtype)
        rw.put(rw.make(last, "fused_pointwise", tuple(g.inputs), steps=g.steps))
        for member in reversed(g.members[:-1]):
            rw.remove(member)
    notes = tuple(f"{g.members[-1]}: {' -> '.join(s[0] for s in g.steps)}" for g in fused[:3]) + (
        (f"... {len(fused) - 3} more",) if len(fused) > 3 else ()
    )
    return rw.build(), Change(groups_fused=len(fused), notes=notes)


FUSE_POINTWISE = Pass("fuse_pointwise", "fuse pointwise chains into one call each", fuse_pointwise)

"""canonicalize: local rewrites, stated as data, that leave a simpler graph computing the same:

- no-op nodes go (their consumers read the input): a scale by 1, a concat of one input, a
  reshape, flatten, permute or transpose that changes nothing, an adaptive pool to the size the
  input already has;
- two scales in a row become one (x * a * b = x * (a * b));
- a transpose undone by the next one goes with it.

Rules run over the graph in topological order until none applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archgraph.ir.graph import Graph
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


@dataclass(frozen=True)
class Rule:
    """`applies` looks at a node; `apply` rewrites it (both see the Rewriter)."""

    name: str
    ops: tuple[str, ...]
    applies: Callable[[Rewriter, str], bool]
    apply: Callable[[Rewriter, str], None]


def _input_type_equals_output(rw: Rewriter, node_id: str) -> bool:
    node = rw[node_id]
    return rw[node.inputs[0]].type == node.type and rw.can_redirect(node_id, node.inputs[0])


def _drop(rw: Rewriter, node_id: str) -> None:
    rw.bypass(node_id, rw[node_id].inputs[0])


def _is_scale_by_one(rw: Rewriter, node_id: str) -> bool:
    return rw[node_id].args["factor"] == 1.0 and _input_type_equals_output(rw, node_id)


def _is_identity_permute(rw: Rewriter, node_id: str) -> bool:
    return list(rw[node_id].args["dims"]) == list(range(rw[node_id].type.rank)) and (
        rw.can_redirect(node_id, rw[node_id].inputs[0])
    )


def _transpose_dims(rw: Rewriter, node_id: str) -> frozenset[int]:
    node = rw[node_id]
    rank = node.type.rank
    return frozenset((node.args["dim0"] % rank, node.args["dim1"] % rank))


def _is_transpose_noop(rw: Rewriter, node_id: str) -> bool:
    return len(_transpose_dims(rw, node_id)) == 1 and rw.can_redirect(
        node_id, rw[node_id].inputs[0]
    )


def _undoes_transpose(rw: Rewriter, node_id: str) -> bool:
    inner = rw[node_id].inputs[0]
    return (
        rw[inner].op == "transpose"
        and rw.only_consumer(inner) == node_id
        and _transpose_dims(rw, inner) == _transpose_dims(rw, node_id)
        and rw.can_redirect(node_id, rw[inner].inputs[0])
    )


def _drop_pair(rw: Rewriter, node_id: str) -> None:
    inner = rw[node_id].inputs[0]
    rw.bypass(node_id, rw[inner].inputs[0])
    rw.remove(inner)


def _follows_scale(rw: Rewriter, node_id: str) -> bool:
    inner = rw[node_id].inputs[0]
    return rw[inner].op == "scale" and rw.only_consumer(inner) == node_id


def _merge_scales(rw: Rewriter, node_id: str) -> None:
    node, inner = rw[node_id], rw[rw[node_id].inputs[0]]
    factor = inner.args["factor"] * node.args["factor"]
    rw.put(rw.make(node_id, "scale", inner.inputs, factor=factor))
    rw.remove(inner.id)


RULES = [
    Rule("scale by 1", ("scale",), _is_scale_by_one, _drop),
    Rule("scale of a scale", ("scale",), _follows_scale, _merge_scales),
    Rule("concat of one input", ("concat",), _input_type_equals_output, _drop),
    Rule(
        "shape op that changes nothing",
        ("reshape", "flatten", "adaptive_avgpool2d", "adaptive_maxpool2d"),
        _input_type_equals_output,
        _drop,
    ),
    Rule("identity permute", ("permute",), _is_identity_permute, _drop),
    Rule("transpose of a dim with itself", ("transpose",), _is_transpose_noop, _drop),
    Rule("transpose undone", ("transpose",), _undoes_transpose, _drop_pair),
]
_BY_OP: dict[str, list[Rule]] = {}
for _rule in RULES:
    for _op in _rule.ops:
        _BY_OP.setdefault(_op, []).append(_rule)


def canonicalize(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    counts: dict[str, int] = {}
    changed = True
    while changed:
        changed = False
        for node_id in [n.id for n in rw.order()]:
            if node_id not in rw:
                continue
            for rule in _BY_OP.get(rw[node_id].op, ()):
                if rule.applies(rw, node_id):
                    rule.apply(rw, node_id)
                    counts[rule.name] = counts.get(rule.name, 0) + 1
                    changed = True
                    break
    notes = tuple(f"{rule}: {n}" for rule, n in counts.items())
    return rw.build(), Change(notes=notes)


CANONICALIZE = Pass(
    "canonicalize", "drop no-op nodes, merge scales, cancel transpose pairs", canonicalize
)

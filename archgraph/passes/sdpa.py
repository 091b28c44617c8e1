"""sdpa: attention lowered to scaled-dot-product attention (archgraph.ops.fused_attention).

- nodes of ops with an SDPA form (OpDef.sdpa_form: `mhsa`, `sr_attention`, `window_attention`,
  `inverted_window_attention`) become that op (`<op>_sdpa`): same id, arguments and weights; the core is one
  F.scaled_dot_product_attention call.
- The explicit pattern, each intermediate read only by the next step,

      matmul(softmax(matmul(q', kT) [* f], dim=-1), v)   with q' = q [* f'], kT = k^T

  (k^T: a transpose, or a permute, of the last two dims) becomes sdpa(q, k, v, scale=f * f'),
  a missing factor counting as 1. The sdpa node keeps the id of the final matmul. A dropout
  between the softmax and the last matmul (left by train-mode pipelines, which keep dropout)
  makes it `sdpa_dropout` with that dropout's p (applied only while training).
"""

from __future__ import annotations

from archgraph.ir.graph import Graph, Node
from archgraph.ops.registry import ShapeMismatch, get_op
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def _last_two_swapped(node: Node) -> bool:
    rank = node.type.rank
    if node.op == "transpose":
        return {node.args["dim0"] % rank, node.args["dim1"] % rank} == {rank - 2, rank - 1}
    if node.op == "permute":
        return list(node.args["dims"]) == [*range(rank - 2), rank - 1, rank - 2]
    return False


def _single(rw: Rewriter, node_id: str, user: str) -> bool:
    return rw.only_consumer(node_id) == user


def _strip_scale(rw: Rewriter, node_id: str, user: str) -> tuple[str, float, list[str]]:
    """(value under an optional scale read only by `user`, factor, absorbed ids)."""
    node = rw[node_id]
    if node.op == "scale" and _single(rw, node_id, user):
        return node.inputs[0], node.args["factor"], [node_id]
    return node_id, 1.0, []


def _match(rw: Rewriter, out: Node) -> tuple[tuple[str, str, str], float, float, list[str]] | None:
    """((q, k, v), scale, dropout p, absorbed node ids) when `out` ends an attention pattern."""
    probs, v = out.inputs
    dropped: list[str] = []
    dropout_p = 0.0
    if rw[probs].op == "dropout" and _single(rw, probs, out.id):
        dropped, dropout_p = [probs], rw[probs].args["p"]
        out, probs = rw[probs], rw[probs].inputs[0]
    p = rw[probs]
    if p.op != "softmax" or p.args["dim"] % p.type.rank != p.type.rank - 1:
        return None
    if not _single(rw, probs, out.id):
        return None
    scores, outer, absorbed = _strip_scale(rw, p.inputs[0], probs)
    s = rw[scores]
    if s.op != "matmul" or not _single(rw, scores, absorbed[0] if absorbed else probs):
        return None
    q_in, kt = s.inputs
    q, inner, absorbed_q = _strip_scale(rw, q_in, scores)
    k_node = rw[kt]
    if not _last_two_swapped(k_node) or not _single(rw, kt, scores):
        return None
    k = k_node.inputs[0]
    if len({q, k, v}) != 3 or rw[q].type.rank < 3:
        return None
    return (
        (q, k, v),
        outer * inner,
        dropout_p,
        [*dropped, probs, *absorbed, scores, *absorbed_q, kt],
    )


def sdpa(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    swapped = patterns = 0
    for node_id in [n.id for n in rw.order()]:
        if node_id not in rw:
            continue
        node = rw[node_id]
        form = get_op(node.op).sdpa_form
        if form is not None:
            rw.put(node.evolve(op=form))
            swapped += 1
        elif node.op == "matmul":
            match = _match(rw, node)
            if match is None:
                continue
            (q, k, v), scale, dropout_p, absorbed = match
            args = {"scale": scale} | ({"dropout_p": dropout_p} if dropout_p else {})
            try:
                new = rw.make(node.id, "sdpa_dropout" if dropout_p else "sdpa", (q, k, v), **args)
            except ShapeMismatch:  # shapes sdpa does not take (e.g. broadcast batch dims)
                continue
            rw.put(new)
            for dead in absorbed:
                rw.remove(dead)
            patterns += 1
    notes = []
    if swapped:
        notes.append(f"{swapped} attention op(s) now call SDPA")
    if patterns:
        notes.append(f"{patterns} matmul-softmax-matmul pattern(s) became sdpa")
    return rw.build(), Change(groups_fused=swapped + patterns, notes=tuple(notes))


SDPA = Pass("sdpa", "lower attention to scaled-dot-product attention", sdpa)

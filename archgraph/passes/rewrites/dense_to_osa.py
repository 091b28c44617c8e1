"""dense-to-osa: dense blocks become one-shot aggregation blocks (VoVNet, Lee et al. 2019).

A dense block is found by its shape, not its names: a channel concat C = concat(x, f1, ..., fk)
(k >= 2) where each layer i >= 2 reads its own concat(x, f1, ..., f(i-1)) and nothing else of
the block. The rewrite makes layer i read only f(i-1) (layer 1 keeps reading x), drops the
per-layer concats, keeps the one final concat and aggregates it with a 1x1 conv-BN-ReLU unit
`<block>.conv_concat` (conv, bn, bn.act; timm's OSA names) of the concat's width, so the
consumers of the block see the same shape. A dense block re-reads its growing concatenation
at every layer; the OSA block reads each feature map once (lower memory access cost).

The architecture changes: tensors whose shapes stay keep their weights; the rest (the layers'
first convs and norms, the aggregation) are initialized from the seed: retrain the result.
"""

from __future__ import annotations

from archgraph.errors import ArchgraphError
from archgraph.ir.graph import Graph
from archgraph.ir.weights import init_weights
from archgraph.passes.rewrite import Rewriter


def _is_channel_concat(rw: Rewriter, node_id: str) -> bool:
    return rw.concats_channels(node_id) and rw[node_id].type.rank == 4


def _ancestors(rw: Rewriter, node_id: str, stop: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [node_id]
    while todo:
        n = todo.pop()
        if n in seen or n in stop:
            continue
        seen.add(n)
        todo.extend(rw[n].inputs)
    return seen


def find_dense_blocks(rw: Rewriter) -> list[tuple[str, list[str]]]:
    """(final concat, [its layer concats for layers 2..k]) for every dense block."""
    by_inputs = {rw[i].inputs: i for i in rw.nodes if _is_channel_concat(rw, i)}
    # a layer's concat is a prefix of a longer one: only the longest is a block's final concat
    prefixes = {ins[:i] for ins in by_inputs for i in range(1, len(ins))}
    blocks = []
    for cat in rw.nodes:
        if not _is_channel_concat(rw, cat) or len(rw[cat].inputs) < 3:
            continue
        if rw[cat].inputs in prefixes:
            continue
        ins = rw[cat].inputs
        layer_cats = [by_inputs.get(ins[:i]) for i in range(2, len(ins))]
        if any(c is None for c in layer_cats):
            continue
        ok = True
        for i, lc in enumerate(layer_cats, start=2):
            inside = _ancestors(rw, ins[i], set(ins[:i]))
            if not set(rw.consumers(lc)) <= inside or rw.is_output(lc):  # type: ignore[arg-type]
                ok = False
        if ok:
            blocks.append((cat, layer_cats))  # type: ignore[arg-type]
    return blocks


def _scope(node_id: str) -> str:
    return node_id.rpartition(".")[0]


def dense_to_osa(graph: Graph, *, seed: int = 0) -> tuple[Graph, int]:
    """The rewritten graph and how many dense blocks it rewrote."""
    shape_only = graph.copy()
    shape_only.weights = None  # weights are carried over by shape below
    rw = Rewriter(shape_only)
    blocks = find_dense_blocks(rw)
    if not blocks:
        raise ArchgraphError(
            f"dense-to-osa: '{graph.name}' has no dense block",
            expected="concat(x, f1..fk) with each layer i reading concat(x, f1..f(i-1))",
            found="none",
            hint="the rewrite applies to DenseNet-style blocks (e.g. densenet121)",
        )
    for cat, layer_cats in blocks:
        ins = rw[cat].inputs
        for i, lc in enumerate(layer_cats, start=2):
            rw.redirect(lc, ins[i - 1])
            rw.remove(lc)
        scope = _scope(cat)
        prefix = f"{scope}.conv_concat" if scope else "conv_concat"
        width = rw[cat].type.shape[1]
        users = rw.consumers(cat)
        was_output = rw.is_output(cat)
        conv = rw.put(
            rw.make(
                f"{prefix}.conv", "conv2d", (cat,), out_channels=width, kernel_size=1, bias=False
            ),
            after=cat,
        )
        bn = rw.put(rw.make(f"{prefix}.bn", "batchnorm", (conv.id,)), after=conv.id)
        act = rw.put(rw.make(f"{prefix}.bn.act", "relu", (bn.id,)), after=bn.id)
        for user in users:
            node = rw[user]
            rw.put(node.evolve(inputs=tuple(act.id if s == cat else s for s in node.inputs)))
        if was_output:
            rw.outputs = [act.id if o == cat else o for o in rw.outputs]
    inputs = set(graph.inputs)
    for node in rw.order():  # the layers' inputs narrowed: infer every type again
        if node.id not in inputs:
            rw.put(rw.make(node.id, node.op, node.inputs, **node.args))
    out = rw.build()
    source_weights = graph.weights
    if source_weights is not None:
        fresh = init_weights(out, seed)
        out.weights = {
            k: source_weights[k]
            if k in source_weights and source_weights[k].shape == t.shape
            else t
            for k, t in fresh.items()
        }
    return out, len(blocks)

"""dense_concat: dense-block concat elimination (archgraph.ops.fused_buffer).

A dense block concatenates a growing list of feature maps again for every layer: layer k reads
concat(f0, ..., f(k-1)), and the block's output is concat(f0, ..., fn), so the copying grows
quadratically with depth. A family of channel concats whose input lists are all prefixes of
the longest one becomes one preallocated buffer:

    buf0 = buffer_init(f0)                 right after f0 is computed
    bufj = buffer_write(buf(j-1), fj)      right after fj is computed: fj's one copy
    concat(f0..f(k-1)) -> buffer_prefix(buf(k-1), c0 + ... + c(k-1))  a view
    concat(f0..fn)     -> bufn, the last write, which keeps the concat's id

Families need at least two concats. A concat computed once (one-shot aggregation, a U-Net's skip
concatenation) copies each feature once either way, and a buffer made for it was measured to
hold more memory, not less (2026-12-02, CPU, -O2: unet2d inference peak 1.03x; training peak
1.09x for unet2d at 128 px and 1.15x for resunet3d_glioma, even with the skip's other readers
moved onto the buffer). Such a concat goes another way when only convolutions read it (a U-Net
decoder's [skip, up-sampled] into its first conv, 2-D or 3-D): a convolution is linear in its input
channels, so

    conv(concat(f1, ..., fk), W) = conv(f1, W[:, :c1]) + ... + conv(fk, W[:, -ck:])

so each such conv becomes a conv over the concat's inputs as its `parts` (conv2d_fused, or
conv3d_parts): one conv per part over its slice of the weight's input channels, accumulated in
place (on the CPU, oneDNN's sum post-op for 2-D), with the same id and weights. The concatenated tensor is never made: no copy, and a
U-Net decoder's widest moment holds the skip, the up-sampled map and the output instead of
those plus their concatenation. A family's concats, and the concats split this way, are over
dim 1.
"""

from __future__ import annotations

from archgraph.ir.graph import Graph, Node
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter

# a conv over a concat -> the same conv over the concat's inputs as parts (one per data input)
_SPLIT_OPS = {"conv2d": "conv2d_fused", "conv2d_fused": "conv2d_fused", "conv3d": "conv3d_parts"}


def _families(rw: Rewriter) -> list[tuple[list[str], list[str]]]:
    """(longest input list, concat ids) per family, longest concat first in the ids."""
    concats = [n for n in rw.order() if rw.concats_channels(n.id)]
    concats.sort(key=lambda n: -len(n.inputs))
    families: list[tuple[list[str], list[str]]] = []
    claimed: set[str] = set()
    for longest in concats:
        if longest.id in claimed or len(set(longest.inputs)) != len(longest.inputs):
            continue
        members = [longest.id]
        for other in concats:
            k = len(other.inputs)
            if other.id in claimed or other.id == longest.id or k >= len(longest.inputs):
                continue
            if other.inputs == longest.inputs[:k]:
                members.append(other.id)
        if len(members) > 1:
            claimed.update(members)
            families.append((list(longest.inputs), members))
    return families


def _splittable(rw: Rewriter, conv: Node, concat: str) -> bool:
    """A conv (not grouped) reading `concat` as its data input, with no prologue on it."""
    args = conv.args
    return (
        conv.op in _SPLIT_OPS
        and args["groups"] == 1
        and conv.inputs[0] == concat
        and concat not in conv.inputs[1:]
        and args.get("parts", 1) == 1
        and not args.get("pre_affine", False)
        and args.get("pre_activation", "none") == "none"
    )


def _split_conv(rw: Rewriter, conv: Node, features: list[str]) -> None:
    """conv(concat(features)) -> the conv over the features as parts (same id, weights)."""
    args = dict(conv.args, parts=len(features))
    rw.put(rw.make(conv.id, _SPLIT_OPS[conv.op], (*features, *conv.inputs[1:]), **args))


def _split_concats(rw: Rewriter, claimed: set[str]) -> list[str]:
    """Lone channel concats read only by splittable 2-D convs: each conv is split, the concat
    goes. Returns the concats removed."""
    removed = []
    for node in rw.order():
        if node.id in claimed or rw.is_output(node.id) or not rw.concats_channels(node.id):
            continue
        users = [rw[u] for u in rw.consumers(node.id)]
        if not users or not all(_splittable(rw, u, node.id) for u in users):
            continue
        for conv in users:
            _split_conv(rw, conv, list(node.inputs))
        rw.remove(node.id)
        removed.append(node.id)
    return removed


def dense_concat(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    families = _families(rw)
    for features, members in families:
        head = members[0]
        total = rw[head].type.shape[1]
        buffers = [
            rw.put(
                rw.make(rw.fresh_id(f"{head}.buffer"), "buffer_init", (features[0],),
                        channels=total, tag=head),
                after=features[0],
            ).id
        ]  # fmt: skip
        offset = rw[features[0]].type.shape[1]
        offsets = [offset]
        for j, f in enumerate(features[1:], start=1):
            last = j == len(features) - 1  # the last write is the block's output: the head's id
            node_id = head if last else rw.fresh_id(f"{head}.write{j}")
            node = rw.make(node_id, "buffer_write", (buffers[-1], f), offset=offset)
            buffers.append(rw.put(node, after=None if last else f).id)
            offset += rw[f].type.shape[1]
            offsets.append(offset)
        for concat_id in members[1:]:
            k = len(rw[concat_id].inputs)
            view = rw.make(concat_id, "buffer_prefix", (buffers[k - 1],), channels=offsets[k - 1])
            rw.put(view)
    split = _split_concats(rw, {m for _, members in families for m in members})
    notes = tuple(f"{m[0]}: {len(f)} features, {len(m) - 1} re-concatenations" for f, m in families)
    notes += tuple(f"{c}: split into its convs' inputs (no concatenation)" for c in split)
    return rw.build(), Change(groups_fused=len(families) + len(split), notes=notes)


DENSE_CONCAT = Pass(
    "dense_concat",
    "dense blocks write into one preallocated buffer (no re-concatenation); a concat read only "
    "by convs is split into their inputs",
    dense_concat,
)  # fmt: skip

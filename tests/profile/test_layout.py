"""The layered drawing: layers follow the longest path, boxes never overlap, edges run downward
and never through a box they do not connect, and the ordering removes avoidable crossings."""

from __future__ import annotations

from itertools import combinations

import pytest

import archgraph
from archgraph import Builder
from archgraph.profile.layout import Box, Layout, layout

Point = tuple[float, float]


def _segments(drawing: Layout) -> list[tuple[str, str, Point, Point]]:
    return [(s, d, a, b) for s, d, pts in drawing.edges for a, b in zip(pts, pts[1:], strict=False)]


def _cross(p: Point, q: Point, r: Point, s: Point) -> bool:
    """Proper intersection of segments pq and rs (shared endpoints do not count)."""

    def orient(a: Point, b: Point, c: Point) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2, d3, d4 = orient(r, s, p), orient(r, s, q), orient(p, q, r), orient(p, q, s)
    return d1 * d2 < 0 and d3 * d4 < 0


def _through(box: Box, a: Point, b: Point) -> bool:
    """Whether segment ab passes through the inside of the box (sampled finely)."""
    for k in range(1, 200):
        t = k / 200
        x, y = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        if box.x + 1 < x < box.x + box.w - 1 and box.y + 1 < y < box.y + box.h - 1:
            return True
    return False


def crossings(drawing: Layout) -> int:
    segs = _segments(drawing)
    return sum(
        1
        for (s1, d1, a, b), (s2, d2, c, d) in combinations(segs, 2)
        if len({s1, d1, s2, d2}) == 4 and _cross(a, b, c, d)
    )


@pytest.mark.parametrize("name", ["resnet50", "pvt_v2_b0", "ese_vovnet19b_dw"])
def test_zoo_drawings_are_clean(name: str) -> None:
    graph = archgraph.load(name)
    drawing = layout(graph)
    assert set(drawing.boxes) == {n.id for n in graph.nodes()}
    depth = {}
    for node in graph.nodes():  # longest path from the inputs
        depth[node.id] = 1 + max((depth[i] for i in node.inputs), default=-1)
        assert node.id in drawing.layers[depth[node.id]]
    for a, b in combinations(drawing.boxes.values(), 2):
        assert a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y, (
            a.id,
            b.id,
        )
    for src, dst, p, q in _segments(drawing):
        assert q[1] >= p[1]  # downward
        for box in drawing.boxes.values():
            if box.id not in (src, dst):
                assert not _through(box, p, q), (src, dst, box.id)
    assert drawing.width >= max(b.x + b.w for b in drawing.boxes.values())
    assert drawing.height >= max(b.y + b.h for b in drawing.boxes.values())


def test_ordering_removes_a_crossing_the_insertion_order_has() -> None:
    """Two branches written in the opposite order from the nodes that read them: drawn in
    insertion order, their edges would cross."""
    b = Builder("crossed")
    x = b.input("x", [4, 8, 8])
    left = b.node("relu", x, name="left")
    right = b.node("sigmoid", x, name="right")
    from_right = b.node("relu", right, name="from_right")
    from_left = b.node("relu", left, name="from_left")
    b.output(b.node("add", from_right, from_left, name="sum"))
    drawing = layout(b.build())
    first, second = drawing.layers[1], drawing.layers[2]
    assert (first.index("left") < first.index("right")) == (
        second.index("from_left") < second.index("from_right")
    )
    assert crossings(drawing) == 0

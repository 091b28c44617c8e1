"""A layered drawing of a DAG (Sugiyama style, kept simple) for the HTML report.

1. Layers: each node sits one layer below its deepest input (longest path from the inputs).
2. An edge that spans several layers gets a chain of dummy points, one per layer it crosses, so
   it bends around the nodes in between instead of cutting through them.
3. Order within layers: a few down and up sweeps placing each node at the mean position
   (barycenter) of its neighbours in the previous layer, which removes most crossings.
4. Coordinates: layers top to bottom; within a layer nodes are packed left to right (dummies
   narrow) and the layer is centered.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from archgraph.ir.graph import Graph

NODE_W, NODE_H = 180.0, 34.0
DUMMY_W = 4.0
GAP_X, GAP_Y = 18.0, 30.0  # after a node; between layers
DUMMY_GAP = 6.0  # after a dummy point
MARGIN = 20.0
SWEEPS = 4


@dataclass(frozen=True)
class Box:
    id: str
    x: float  # left
    y: float  # top
    w: float = NODE_W
    h: float = NODE_H

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass
class Layout:
    boxes: dict[str, Box]
    edges: list[tuple[str, str, list[tuple[float, float]]]]  # source, target, polyline points
    width: float
    height: float
    layers: list[list[str]] = field(default_factory=list)  # real node ids per layer, in order


def _layers(graph: Graph) -> dict[str, int]:
    layer: dict[str, int] = {}
    for node in graph.nodes():
        layer[node.id] = 1 + max((layer[i] for i in node.inputs), default=-1)
    return layer


def layout(graph: Graph) -> Layout:
    layer = _layers(graph)
    depth = max(layer.values(), default=-1) + 1
    rows: list[list[str]] = [[] for _ in range(depth)]
    up: dict[str, list[str]] = defaultdict(list)  # vertex -> vertices one layer above
    chains: list[tuple[str, str, list[str]]] = []  # real edge and the vertices it passes
    for node in graph.nodes():
        rows[layer[node.id]].append(node.id)
    for node in graph.nodes():
        for src in dict.fromkeys(node.inputs):  # one drawn edge per input, even if repeated
            path, prev = [], src
            for k in range(layer[src] + 1, layer[node.id]):
                dummy = f"\0{src}\0{node.id}\0{k}"
                rows[k].append(dummy)
                up[dummy].append(prev)
                path.append(dummy)
                prev = dummy
            up[node.id].append(prev)
            chains.append((src, node.id, path))
    down: dict[str, list[str]] = defaultdict(list)
    for v, parents in up.items():
        for p in parents:
            down[p].append(v)
    _order(rows, up, down)
    boxes: dict[str, Box] = {}
    width = max((_row_width(r) for r in rows), default=0.0) + 2 * MARGIN
    for k, row in enumerate(rows):
        x = MARGIN + (width - 2 * MARGIN - _row_width(row)) / 2
        y = MARGIN + k * (NODE_H + GAP_Y)
        for v in row:
            boxes[v] = Box(v, x, y, _width(v))
            x += _width(v) + _gap(v)
    edges = []
    for src, dst, path in chains:
        a, b = boxes[src], boxes[dst]
        points = [(a.cx, a.y + a.h)]
        for d in path:
            box = boxes[d]
            points += [(box.cx, box.y), (box.cx, box.y + box.h)]
        points.append((b.cx, b.y))
        edges.append((src, dst, points))
    real = {k: v for k, v in boxes.items() if not _is_dummy(k)}
    height = 2 * MARGIN + depth * NODE_H + max(depth - 1, 0) * GAP_Y
    return Layout(real, edges, width, height, [[v for v in r if not _is_dummy(v)] for r in rows])


def _is_dummy(v: str) -> bool:
    return v.startswith("\0")


def _width(v: str) -> float:
    return DUMMY_W if _is_dummy(v) else NODE_W


def _gap(v: str) -> float:
    return DUMMY_GAP if _is_dummy(v) else GAP_X


def _row_width(row: list[str]) -> float:
    return sum(_width(v) + _gap(v) for v in row) - (_gap(row[-1]) if row else 0.0)


def _order(rows: list[list[str]], up: dict[str, list[str]], down: dict[str, list[str]]) -> None:
    """Barycenter sweeps, in place: down using parents, then up using children."""

    def sweep(indices: range, neighbours: dict[str, list[str]], ref_of: int) -> None:
        for k in indices:
            ref = {v: i for i, v in enumerate(rows[k + ref_of])}
            keys = {}
            for i, v in enumerate(rows[k]):
                near = [ref[n] for n in neighbours.get(v, ()) if n in ref]
                keys[v] = (sum(near) / len(near) if near else i, i)
            rows[k].sort(key=keys.__getitem__)

    for _ in range(SWEEPS):
        sweep(range(1, len(rows)), up, -1)
        sweep(range(len(rows) - 2, -1, -1), down, +1)

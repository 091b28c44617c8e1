"""Random DAGs for differential testing of the passes (hypothesis strategies over the Builder).

A graph starts from one NCHW input and adds 2 to `max_motifs` motifs, each reading earlier
values: conv[-bn][-activation] units (1x1/3x3, strided, depthwise, with or without bias),
standalone batchnorm, activations and scales, residual adds, concats, parallel 1x1 convs
sharing an input (Inception branches), DenseNet-style blocks (BN-ReLU-conv layers over the
growing concatenation), pooling, squeeze-excitation gating, dropout/identity, duplicated
subexpressions (for CSE), no-op nodes (for canonicalization), dead branches (for DCE), and
attention over tokens (the mhsa op, or the explicit q/k/v linears -> matmul -> scale -> softmax
-> matmul pattern). The outputs: the last value and up to two other values nothing reads
(multi-output graphs return tuples). Shapes stay tiny so hundreds of graphs compile and run in seconds.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from hypothesis import strategies as st

from archgraph import Builder, Graph, Value
from archgraph.ir.weights import init_weights

ACTIVATIONS = ("relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid")


class _Maker:
    """Builds one random graph from hypothesis draws."""

    def __init__(self, draw: Callable, batch: int, channels: int, size: int) -> None:
        self.draw = draw
        self.b = Builder("random", batch=batch)
        self.maps: list[Value] = [self.b.input("x", [channels, size, size])]
        self.count = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def pick(self) -> Value:
        return self.draw(st.sampled_from(self.maps[-4:]))

    def act(self, x: Value, name: str) -> Value:
        op = self.draw(st.sampled_from(ACTIVATIONS))
        args = {"approximate": self.draw(st.sampled_from(["none", "tanh"]))} if op == "gelu" else {}
        return self.b.node(op, x, name=name, **args)

    def unit(self, x: Value, out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> Value:
        """conv [-> bn] [-> activation] in a scope of its own."""
        b = self.b
        with b.scope(self.name("unit")):
            bias = self.draw(st.booleans())
            y = b.node("conv2d", x, name="conv", out_channels=out, kernel_size=kernel,
                       stride=stride, padding=kernel // 2, groups=groups, bias=bias)  # fmt: skip
            if self.draw(st.booleans()):
                y = b.node("batchnorm", y, name="bn")
            if self.draw(st.booleans()):
                y = self.act(y, "act")
        return y

    # ---- motifs (each returns the new value, also recorded in self.maps) ----------------------
    def conv(self) -> Value:
        x = self.pick()
        kernel = self.draw(st.sampled_from([1, 3]))
        stride = self.draw(st.sampled_from([1, 2])) if x.shape[2] >= 4 else 1
        depthwise = kernel == 3 and self.draw(st.booleans())
        out = x.channels if depthwise else self.draw(st.sampled_from([4, 8, 12]))
        return self.unit(x, out, kernel, stride, groups=x.channels if depthwise else 1)

    def pointwise(self) -> Value:
        x = self.pick()
        kind = self.draw(st.sampled_from(["bn", "act", "scale", "dropout", "identity"]))
        name = self.name(kind)
        if kind == "bn":
            return self.b.node("batchnorm", x, name=name)
        if kind == "act":
            return self.act(x, name)
        if kind == "scale":
            return self.b.node(
                "scale", x, name=name, factor=self.draw(st.sampled_from([0.5, 1.0, 2.0]))
            )
        if kind == "dropout":
            return self.b.node("dropout", x, name=name, p=0.3)
        return self.b.node("identity", x, name=name)

    def residual(self) -> Value:
        x = self.pick()
        y = self.unit(x, x.channels, 3)
        if self.draw(st.booleans()):
            y = self.unit(y, x.channels, 1)
        out = self.b.node("add", y, x, name=self.name("add"))
        return self.act(out, self.name("act")) if self.draw(st.booleans()) else out

    def concat(self) -> Value:
        x = self.pick()
        same = [v for v in self.maps if v.shape[2:] == x.shape[2:] and v.id != x.id]
        others = self.draw(st.lists(st.sampled_from(same), max_size=2, unique=True)) if same else []
        if not others:
            others = [self.unit(x, 4, 1)]
        return self.b.node("concat", x, *others, name=self.name("cat"))

    def branches(self) -> Value:
        """Parallel 1x1 convs over one input (same epilogue), then a concat or a sum."""
        x = self.pick()
        act = self.draw(st.sampled_from(["relu", None]))
        outs = []
        width = self.draw(st.sampled_from([4, 8]))
        with self.b.scope(self.name("mixed")):
            for i in range(self.draw(st.integers(2, 3))):
                with self.b.scope(f"branch{i}"):
                    y = self.b.node("conv2d", x, name="conv", out_channels=width, kernel_size=1,
                                    bias=False)  # fmt: skip
                    y = self.b.node("batchnorm", y, name="bn")
                    if act:
                        y = self.b.node(act, y, name="act")
                    if i and self.draw(st.booleans()):
                        y = self.unit(y, width, 3)
                outs.append(y)
            if self.draw(st.booleans()):
                return self.b.node("concat", *outs, name="cat")
            total = outs[0]
            for i, y in enumerate(outs[1:]):
                total = self.b.node("add", total, y, name=f"sum{i}")
            return total

    def dense(self) -> Value:
        """A DenseNet block: each layer BN-ReLU-1x1-BN-ReLU-3x3 over all earlier features."""
        x = self.pick()
        growth = self.draw(st.sampled_from([2, 4]))
        features = [x]
        with self.b.scope(self.name("denseblock")):
            for i in range(self.draw(st.integers(2, 4))):
                with self.b.scope(f"layer{i}"):
                    y = (
                        features[0]
                        if len(features) == 1
                        else self.b.node("concat", *features, name="cat")
                    )
                    y = self.b.node("batchnorm", y, name="norm1")
                    y = self.b.node("relu", y, name="relu1")
                    y = self.b.node(
                        "conv2d",
                        y,
                        name="conv1",
                        out_channels=2 * growth,
                        kernel_size=1,
                        bias=False,
                    )
                    y = self.b.node("batchnorm", y, name="norm2")
                    y = self.b.node("relu", y, name="relu2")
                    y = self.b.node(
                        "conv2d",
                        y,
                        name="conv2",
                        out_channels=growth,
                        kernel_size=3,
                        padding=1,
                        bias=False,
                    )
                features.append(y)
            return self.b.node("concat", *features, name="cat")  # fmt: skip

    def pool(self) -> Value:
        x = self.pick()
        kind = self.draw(st.sampled_from(["max", "avg", "max2", "adaptive"]))
        name = self.name("pool")
        if kind == "max":
            return self.b.node("maxpool2d", x, name=name, kernel_size=3, stride=1, padding=1)
        if kind == "avg":
            return self.b.node("avgpool2d", x, name=name, kernel_size=3, stride=1, padding=1)
        if kind == "max2" and x.shape[2] >= 4:
            return self.b.node("maxpool2d", x, name=name, kernel_size=2, stride=2)
        return self.b.node("adaptive_avgpool2d", x, name=name, output_size=x.shape[2] // 2 or 1)

    def gate(self) -> Value:
        """Squeeze-excitation: pool -> 1x1 conv -> sigmoid -> times the input."""
        x = self.pick()
        with self.b.scope(self.name("se")):
            s = self.b.node("adaptive_avgpool2d", x, name="pool")
            s = self.b.node("conv2d", s, name="fc", out_channels=x.channels, kernel_size=1)
            s = self.b.node(self.draw(st.sampled_from(["sigmoid", "hardsigmoid"])), s, name="gate")
            return self.b.node("mul", x, s, name="mul")

    def duplicate(self) -> Value:
        """The same activation twice over one value, each feeding its own conv, then summed."""
        x = self.pick()
        with self.b.scope(self.name("dup")):
            a = self.b.node("relu", x, name="a")
            c = self.b.node("relu", x, name="c")
            ya = self.b.node("conv2d", a, name="conv_a", out_channels=x.channels, kernel_size=1)
            yc = self.b.node("conv2d", c, name="conv_c", out_channels=x.channels, kernel_size=1)
            return self.b.node("add", ya, yc, name="sum")

    def noop(self) -> Value:
        """Nodes that change nothing (canonicalization): a transpose undone, a scale by 1, a
        concat of one input, an identity permute, a flatten of a flat dim."""
        x = self.pick()
        with self.b.scope(self.name("noop")):
            y = self.b.node("transpose", x, name="swap", dim0=2, dim1=3)
            y = self.b.node("transpose", y, name="back", dim0=3, dim1=2)
            y = self.b.node("scale", y, name="one", factor=1.0)
            y = self.b.node("concat", y, name="cat")
            y = self.b.node("permute", y, name="perm", dims=[0, 1, 2, 3])
            return self.b.node("flatten", y, name="flat", start_dim=3)

    def dead(self) -> Value:
        """A branch no output reads (dead-node elimination), then a plain activation."""
        x = self.pick()
        self.b.node("conv2d", x, name=self.name("dead"), out_channels=4, kernel_size=1)
        return self.act(x, self.name("act"))

    def attention(self) -> Value:
        """Tokens [N, HW, C] -> self-attention (mhsa or explicit) -> residual -> back to NCHW."""
        x = self.pick()
        c, h, w = x.shape[1:]
        if c % 4:
            x = self.unit(x, 8, 1)
            c = 8
        heads = self.draw(st.sampled_from([1, 2]))
        b = self.b
        with b.scope(self.name("attn")):
            t = b.node("flatten", x, name="flatten", start_dim=2)
            t = b.node("transpose", t, name="tokens", dim0=1, dim1=2)
            n = b.node("layernorm", t, name="norm")
            if self.draw(st.booleans()):
                y = b.node("mhsa", n, name="mhsa", num_heads=heads)
            else:
                y = self._explicit_attention(n, heads)
            t = b.node("add", t, y, name="add")
            t = b.node("transpose", t, name="channels", dim0=1, dim1=2)
            return b.node("reshape", t, name="to_map", shape=[c, h, w])

    def _explicit_attention(self, t: Value, heads: int) -> Value:
        b = self.b
        length, dim = t.shape[1:]
        dh = dim // heads

        def project(name: str) -> Value:
            y = b.node("linear", t, name=name, out_features=dim)
            y = b.node("reshape", y, name=f"{name}_heads", shape=[length, heads, dh])
            return b.node("permute", y, name=f"{name}_perm", dims=[0, 2, 1, 3])

        q, k, v = project("q"), project("k"), project("v")
        kt = b.node("transpose", k, name="kt", dim0=-2, dim1=-1)
        if self.draw(st.booleans()):
            q = b.node("scale", q, name="q_scale", factor=dh**-0.5)
            s = b.node("matmul", q, kt, name="scores")
        else:
            s = b.node("matmul", q, kt, name="scores_raw")
            s = b.node("scale", s, name="scores", factor=dh**-0.5)
        p = b.node("softmax", s, name="probs", dim=-1)
        if self.draw(st.booleans()):
            p = b.node("dropout", p, name="attn_drop", p=0.1)
        o = b.node("matmul", p, v, name="mix")
        o = b.node("permute", o, name="merge", dims=[0, 2, 1, 3])
        o = b.node("reshape", o, name="flat", shape=[length, dim])
        return b.node("linear", o, name="proj", out_features=dim)


MOTIFS = ("conv", "pointwise", "residual", "concat", "branches", "dense", "pool", "gate",
          "duplicate", "noop", "dead", "attention")  # fmt: skip


@st.composite
def random_graphs(draw: Callable, max_motifs: int = 6) -> Graph:
    """A random valid graph (see the module docstring); one or two outputs."""
    maker = _Maker(
        draw,
        batch=draw(st.integers(1, 2)),
        channels=draw(st.sampled_from([3, 4, 8])),
        size=draw(st.sampled_from([4, 6, 8])),
    )
    for _ in range(draw(st.integers(2, max_motifs))):
        motif = draw(st.sampled_from(MOTIFS))
        maker.maps.append(getattr(maker, motif)())
    graph = maker.b.graph
    # the last value, then every other motif's value nothing reads (so motifs stay live)
    leaves = [
        v for v in maker.maps[1:-1] if not graph.consumers(v.id) and v.id != maker.maps[-1].id
    ]
    maker.b.output(maker.maps[-1], *leaves[-2:])
    return maker.b.build()


def random_weights(graph: Graph, seed: int) -> dict[str, torch.Tensor]:
    """Seeded weights with batchnorm statistics and affine parameters away from the identity
    (so folding a batchnorm wrongly shows), everything else from the default initializers."""
    gen = torch.Generator().manual_seed(seed)
    weights = init_weights(graph, seed)
    for key, value in weights.items():
        if not value.is_floating_point() or value.dim() != 1:
            continue
        noise = torch.randn(value.shape, generator=gen) * 0.2
        if key.endswith("running_var"):
            weights[key] = noise.abs() + 0.5
        elif key.endswith("weight"):
            weights[key] = noise + 1.0
        else:
            weights[key] = noise
    return weights

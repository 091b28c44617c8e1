"""MIRNet's blocks, the prelu and blur_pool2d ops, and the mirnet_small zoo spec. There is no
timm/torchvision MIRNet, so MIRNet is written out here as plain torch.nn modules the way its authors
wrote it (swz30/MIRNet: SKFF and DAU concatenate the streams, view them as [N, streams, C, H, W], sum,
softmax over the streams; spatial attention on cat(channel max, channel mean); ResidualDownSample
and ResidualUpSample with one-slope nn.PReLU and the anti-aliased Downsample of Zhang 2019, a
binomial filter over reflect padding), loaded into the compiled graphs by strict state_dict; the
spec compiles to an image-to-image network, and channel pruning is exact on zeroed channels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archgraph
from archgraph.cli import main
from archgraph.errors import SpecError
from archgraph.ir.weights import bind_weights, param_specs
from archgraph.passes.prune import prune_channels
from archgraph.profile.costs import node_costs, totals, uncounted
from tests.prune.helpers import example_input, random_graph, randomize, run, zero_units
from tests.reference import max_relative_error, randomize_state, reference_macs

# the binomial rows of Zhang's antialiased-cnns Downsample, by filter size (Pascal's triangle)
BINOMIAL_ROWS = {
    2: [1, 1],
    3: [1, 2, 1],
    4: [1, 3, 3, 1],
    5: [1, 4, 6, 4, 1],
    6: [1, 5, 10, 10, 5, 1],
    7: [1, 6, 15, 20, 15, 6, 1],
}


class Downsample(nn.Module):
    """Zhang 2019's anti-aliased downsampling as MIRNet imports it: pad (floor((k-1)/2) before,
    ceil((k-1)/2) after), depthwise conv with the normalized binomial filter, stride."""

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2, pad: str = "reflect"):
        super().__init__()
        a = torch.tensor(BINOMIAL_ROWS[filt_size], dtype=torch.float32)
        filt = a[:, None] * a[None, :]
        # not persistent: the compiled graph computes the filter, it holds no tensor for it
        self.register_buffer(
            "filt", (filt / filt.sum()).repeat(channels, 1, 1, 1), persistent=False
        )
        lo, hi = (filt_size - 1) // 2, -(-(filt_size - 1) // 2)
        self.pad = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}.get(
            pad, nn.ZeroPad2d
        )((lo, hi, lo, hi))
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=self.stride, groups=x.shape[1])


class ResidualDownSample(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.top = nn.Sequential(
            nn.Conv2d(c, c, 1, bias=False),
            nn.PReLU(),
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.PReLU(),
            Downsample(c),
            nn.Conv2d(c, 2 * c, 1, bias=False),
        )
        self.bot = nn.Sequential(Downsample(c), nn.Conv2d(c, 2 * c, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(x) + self.bot(x)


class ResidualUpSample(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.top = nn.Sequential(
            nn.Conv2d(c, c, 1, bias=False),
            nn.PReLU(),
            nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.PReLU(),
            nn.Conv2d(c, c // 2, 1, bias=False),
        )
        self.bot = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(c, c // 2, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(x) + self.bot(x)


class SKFF(nn.Module):
    def __init__(self, c: int, height: int, reduction: int = 8) -> None:
        super().__init__()
        d = max(c // reduction, 4)
        self.height = height
        self.squeeze = nn.Conv2d(c, d, 1, bias=False)
        self.act = nn.PReLU()
        self.fcs = nn.ModuleList(nn.Conv2d(d, c, 1, bias=False) for _ in range(height))

    def forward(self, *streams: torch.Tensor) -> torch.Tensor:
        n, c, h, w = streams[0].shape
        feats = torch.cat(streams, dim=1).view(n, self.height, c, h, w)
        z = self.act(self.squeeze(F.adaptive_avg_pool2d(feats.sum(dim=1), 1)))
        a = torch.cat([fc(z) for fc in self.fcs], dim=1).view(n, self.height, c, 1, 1)
        return (feats * a.softmax(dim=1)).sum(dim=1)


class _SpatialAttention(nn.Module):
    def __init__(self, kernel_size: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([m.max(dim=1, keepdim=True)[0], m.mean(dim=1, keepdim=True)], dim=1)
        return m * torch.sigmoid(self.conv(pooled))


class _ChannelAttention(nn.Module):
    def __init__(self, c: int, reduction: int = 8) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // reduction, 1)
        self.fc2 = nn.Conv2d(c // reduction, c, 1)

    def forward(self, m: torch.Tensor) -> torch.Tensor:  # MIRNet's ca_layer: ReLU inside
        return m * torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(m, 1)))))


class DAU(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1), nn.PReLU(), nn.Conv2d(c, c, 3, padding=1)
        )
        self.sa = _SpatialAttention()
        self.ca = _ChannelAttention(c)
        self.conv1x1 = nn.Conv2d(2 * c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.body(x)
        return x + self.conv1x1(torch.cat([self.sa(m), self.ca(m)], dim=1))


class MRB(nn.Module):
    """The multi-scale residual block of archgraph.blocks.mirnet, in MIRNet's modules."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.down2, self.down4 = ResidualDownSample(c), ResidualDownSample(2 * c)
        self.dau_top = nn.ModuleList(DAU(c) for _ in range(2))
        self.dau_mid = nn.ModuleList(DAU(2 * c) for _ in range(2))
        self.dau_low = nn.ModuleList(DAU(4 * c) for _ in range(2))
        self.up32 = nn.ModuleList(ResidualUpSample(4 * c) for _ in range(2))
        self.up21 = nn.ModuleList(ResidualUpSample(2 * c) for _ in range(2))
        self.skff_mid = nn.ModuleList(SKFF(2 * c, 2) for _ in range(2))
        self.skff_top = nn.ModuleList(SKFF(c, 2) for _ in range(2))
        self.conv_out = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, mid = x, self.down2(x)
        low = self.down4(mid)
        for r in range(2):
            top, mid, low = self.dau_top[r](top), self.dau_mid[r](mid), self.dau_low[r](low)
            mid = self.skff_mid[r](mid, self.up32[r](low))
            top = self.skff_top[r](top, self.up21[r](mid))
        return x + self.conv_out(top)


class MIRNetSmall(nn.Module):
    def __init__(self, width: int = 16, blocks: int = 2) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*(MRB(width) for _ in range(blocks)))
        self.conv_out = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_out(self.body(self.conv_in(x)))


def _block(block: str, shapes: list[tuple[int, ...]], **args: object) -> archgraph.Graph:
    b = archgraph.Builder(block)
    xs = [b.input(f"x{i}", s) for i, s in enumerate(shapes)]
    b.output(b.block(block, *xs, name="m", **args))
    return b.build()


def _matches(
    graph: archgraph.Graph, reference: nn.Module, xs: list[torch.Tensor], level: int
) -> None:
    """The graph, given the reference's random state_dict (strictly: the same keys), computes
    what the reference does."""
    weights = randomize_state(reference.eval(), seed=3)
    assert sorted(param_specs(graph)) == sorted(weights)
    module = archgraph.compile(graph, level, weights=weights).eval()
    with torch.no_grad():
        assert max_relative_error(module(*xs), reference(*xs)) <= 1e-5


def _inputs(*shapes: tuple[int, ...]) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    return [torch.randn(2, *s, generator=gen) for s in shapes]


@pytest.mark.parametrize("num_parameters", [1, 6])
@pytest.mark.parametrize("level", [0, 2])
def test_prelu_is_torchs(num_parameters: int, level: int) -> None:
    b = archgraph.Builder("p")
    b.output(b.node("prelu", b.input("x", (6, 5, 4)), name="act", num_parameters=num_parameters))
    g = b.build()
    ref = nn.Sequential()
    ref.add_module("act", nn.PReLU(num_parameters))
    assert torch.equal(
        bind_weights(g).weights["act.weight"], ref.state_dict()["act.weight"]
    )  # init
    _matches(g, ref, _inputs((6, 5, 4)), level)
    cost = node_costs(g)
    assert uncounted(cost) == [] and totals(cost).flops == 2 * 6 * 5 * 4  # 2 per element


def test_prelu_rejects_a_slope_count_that_is_not_the_channels() -> None:
    b = archgraph.Builder("bad")
    with pytest.raises(SpecError) as info:
        b.node("prelu", b.input("x", (6, 5, 4)), name="act", num_parameters=4)
    assert info.value.node == "act" and "num_parameters 1 or 6" in str(info.value)


def test_per_channel_prelu_prunes_its_slopes_with_the_channels() -> None:
    b = archgraph.Builder("p")
    y = b.node("conv2d", b.input("x", (4, 8, 8)), name="c1", out_channels=16, kernel_size=3)
    y = b.node("prelu", y, name="act", num_parameters=16)
    b.output(b.node("conv2d", y, name="c2", out_channels=4, kernel_size=1))
    g = randomize(b.build())
    x = torch.randn(2, 4, 8, 8)
    zero_units(g, 0.5)
    reference = run(g, x)
    pruned, _ = prune_channels(g, 0.5)
    assert pruned["act"].args["num_parameters"] == 8
    assert pruned.weights["act.weight"].shape == (8,)
    assert max_relative_error(run(pruned, x), reference) <= 1e-5


@pytest.mark.parametrize("filt_size", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize(("stride", "pad"), [(2, "reflect"), (1, "replicate"), (3, "zeros")])
def test_blur_pool_is_zhangs_downsample(filt_size: int, stride: int, pad: str) -> None:
    g = _block_op("blur_pool2d", (5, 13, 10), filt_size=filt_size, stride=stride, pad_mode=pad)
    assert param_specs(g) == {}  # the filter is a constant, not state
    ref = nn.Sequential()
    ref.add_module("m", Downsample(5, filt_size, stride, pad))
    (x,) = _inputs((5, 13, 10))
    module = archgraph.compile(g).eval()
    with torch.no_grad():
        expected = ref(x)
        assert module(x).shape == expected.shape == (2, 5, -(-13 // stride), -(-10 // stride))
        assert max_relative_error(module(x), expected) <= 1e-6
    assert totals(node_costs(g)).macs == reference_macs(ref, x[:1])  # the graph is at batch 1


def _block_op(op: str, shape: tuple[int, ...], **args: object) -> archgraph.Graph:
    b = archgraph.Builder(op)
    b.output(b.node(op, b.input("x", shape), name="m", **args))
    return b.build()


def test_blur_pool_rejects_bad_filters_with_located_errors() -> None:
    with pytest.raises(SpecError) as info:
        _block_op("blur_pool2d", (5, 8, 8), filt_size=8)
    assert info.value.node == "m" and "filt_size in 2..7" in str(info.value)
    with pytest.raises(SpecError) as info:  # reflect padding wider than the map
        _block_op("blur_pool2d", (5, 3, 3), filt_size=7)
    assert info.value.node == "m" and "reflect padding" in str(info.value)


def test_skff_is_the_papers_fusion() -> None:
    g = _block("skff", [(16, 8, 8)] * 3)
    ref = SKFF(16, 3)
    assert ref.squeeze.weight.shape[0] == 4  # d = max(C / 8, 4)
    _matches(g, _Prefixed(ref), _inputs(*[(16, 8, 8)] * 3), 0)


def test_dual_attention_unit_is_the_papers() -> None:
    _matches(_block("dual_attention", [(16, 8, 8)]), _Prefixed(DAU(16)), _inputs((16, 8, 8)), 0)


@pytest.mark.parametrize(
    ("block", "reference", "shape"),
    [
        ("residual_downsample", ResidualDownSample, (8, 12, 10)),
        ("residual_upsample", ResidualUpSample, (8, 6, 5)),
    ],
)
@pytest.mark.parametrize("level", [0, 2])
def test_resampling_is_mirnets(block: str, reference: type, shape: tuple, level: int) -> None:
    _matches(_block(block, [shape]), _Prefixed(reference(8)), _inputs(shape), level)


@pytest.mark.parametrize("level", [0, 2])
def test_mirnet_small_is_mirnet_in_torch(level: int) -> None:
    """The whole spec against MIRNet's modules: the same state_dict keys, strictly loaded, and the
    same restored image."""
    _matches(archgraph.load("mirnet_small"), MIRNetSmall(), _inputs((3, 64, 64)), level)


class _Prefixed(nn.Module):
    """A reference block at `m`, the id the test graphs give their block."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.m = block

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.m(*xs)


def test_mirnet_small_restores_images_at_every_level() -> None:
    g = archgraph.load("mirnet_small")
    assert g[g.outputs[0]].type.shape == g[g.inputs[0]].type.shape  # image in, image out
    bind_weights(g, seed=1)
    x = torch.randn(1, 3, 64, 64)
    outs = []
    for level in (0, 1, 2):
        module = archgraph.compile(g, level).eval()
        with torch.no_grad():
            outs.append(module(x))
    assert all(max_relative_error(o, outs[0]) <= 1e-4 for o in outs[1:])
    assert not torch.allclose(outs[0], x)  # the residual branch contributes


def test_pruning_is_exact_on_zeroed_channels() -> None:
    g = random_graph("mirnet_small", batch=1)
    x = example_input(g)
    zeroed = zero_units(g, 0.5)
    assert zeroed["channels"]
    reference = run(g, x)
    pruned, report = prune_channels(g, 0.5)
    assert report.after.macs < report.before.macs
    assert max_relative_error(run(pruned, x), reference) <= 1e-4


def test_cli_prunes_mirnet_small_and_the_result_runs(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "mirnet_pruned.yaml"
    assert (
        main(["compile", "mirnet_small", "--prune", "channels=0.5", "--emit-spec", str(spec)]) == 0
    )
    assert "MACs" in capsys.readouterr().out
    module = archgraph.compile(archgraph.load(spec)).eval()
    with torch.no_grad():
        y = module(torch.randn(1, 3, 64, 64))
    assert y.shape == (1, 3, 64, 64) and torch.isfinite(y).all()


def test_bad_inputs_are_located_errors() -> None:
    b = archgraph.Builder("bad")
    x, y = b.input("x", (16, 8, 8)), b.input("y", (32, 4, 4))
    with pytest.raises(SpecError, match="two or more streams of one shape"):
        b.block("skff", x, y, name="fuse")
    with pytest.raises(SpecError) as info:
        b.node("channel_pool", b.input("t", (16, 8)), name="pool")
    assert info.value.node == "pool" and "NCHW" in str(info.value)
    with pytest.raises(SpecError) as info:  # from a spec: located at the node
        archgraph.load("mirnet_small", image_size=30)
    assert "mirnet_small.yaml:" in str(info.value) and "node 'body.0'" in str(info.value)

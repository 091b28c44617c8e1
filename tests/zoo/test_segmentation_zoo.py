"""Volumetric and encoder-decoder zoo specs (unet2d, resunet3d_glioma, hdenseunet) against
plain-PyTorch implementations written here from the papers' descriptions (same parameter names,
strict load, equal outputs at -O0 and -O2), the slice ops against an explicit loop, the dense
blocks' concat elimination in 2-D and 3-D, and channel pruning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archgraph
from archgraph import Builder
from archgraph.profile.costs import node_costs
from tests.reference import count_parameters, max_relative_error, randomize_state, reference_macs

CONV = {2: nn.Conv2d, 3: nn.Conv3d}
BN = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class DoubleConv(nn.Module):
    def __init__(self, cin: int, cout: int, dims: int = 2) -> None:
        super().__init__()
        self.conv1 = CONV[dims](cin, cout, 3, padding=1, bias=False)
        self.bn1 = BN[dims](cout)
        self.conv2 = CONV[dims](cout, cout, 3, padding=1, bias=False)
        self.bn2 = BN[dims](cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


class ResidualUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, dims: int = 3) -> None:
        super().__init__()
        self.conv1 = CONV[dims](cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BN[dims](cout)
        self.conv2 = CONV[dims](cout, cout, 3, padding=1, bias=False)
        self.bn2 = BN[dims](cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.ModuleDict(
                {"conv": CONV[dims](cin, cout, 1, stride=stride, bias=False), "bn": BN[dims](cout)}
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        s = x if self.shortcut is None else self.shortcut["bn"](self.shortcut["conv"](x))
        return F.relu(y + s)


class Up(nn.Module):
    """Up-sample to the skip's size, concatenate [skip, up], then the unit (`conv`)."""

    def __init__(self, unit: nn.Module, mode: str) -> None:
        super().__init__()
        self.conv, self.mode = unit, mode

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[2:], mode=self.mode, align_corners=True)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Ronneberger et al. (2015) with padded convs and batchnorm, bilinear up-sampling."""

    def __init__(self, cin: int = 3, classes: int = 2, base: int = 16) -> None:
        super().__init__()
        w = [base, 2 * base, 4 * base, 8 * base, 8 * base]
        self.inc = DoubleConv(cin, w[0])
        self.down1, self.down2 = DoubleConv(w[0], w[1]), DoubleConv(w[1], w[2])
        self.down3, self.down4 = DoubleConv(w[2], w[3]), DoubleConv(w[3], w[4])
        self.up1 = Up(DoubleConv(w[3] + w[4], w[2]), "bilinear")
        self.up2 = Up(DoubleConv(w[2] + w[2], w[1]), "bilinear")
        self.up3 = Up(DoubleConv(w[1] + w[1], w[0]), "bilinear")
        self.up4 = Up(DoubleConv(w[0] + w[0], w[0]), "bilinear")
        self.outc = nn.Conv2d(w[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(F.max_pool2d(x1, 2))
        x3 = self.down2(F.max_pool2d(x2, 2))
        x4 = self.down3(F.max_pool2d(x3, 2))
        x5 = self.down4(F.max_pool2d(x4, 2))
        y = self.up4(self.up3(self.up2(self.up1(x5, x4), x3), x2), x1)
        return self.outc(y)


class ResUNet3d(nn.Module):
    def __init__(self, cin: int = 4, classes: int = 3, base: int = 8) -> None:
        super().__init__()
        self.enc1 = ResidualUnit(cin, base)
        self.enc2 = ResidualUnit(base, 2 * base, stride=2)
        self.enc3 = ResidualUnit(2 * base, 4 * base, stride=2)
        self.bottom = ResidualUnit(4 * base, 8 * base, stride=2)
        self.dec3 = Up(ResidualUnit(12 * base, 4 * base), "trilinear")
        self.dec2 = Up(ResidualUnit(6 * base, 2 * base), "trilinear")
        self.dec1 = Up(ResidualUnit(3 * base, base), "trilinear")
        self.head = nn.Conv3d(base, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        y = self.dec3(self.bottom(e3), e3)
        return self.head(self.dec1(self.dec2(y, e2), e1))


REFERENCES = {
    "unet2d": (UNet, (2, 3, 64, 64)),
    "resunet3d_glioma": (ResUNet3d, (2, 4, 32, 32, 32)),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("level", [0, 2])
def test_reference_weights_load_strictly_and_outputs_match(name: str, level: int) -> None:
    cls, shape = REFERENCES[name]
    ref = cls().eval()
    state = randomize_state(ref, seed=3)
    graph = archgraph.load(name)
    assert sum(c.params for c in node_costs(graph)) == count_parameters(ref)
    module = archgraph.compile(graph, level, weights=state).eval()
    if level == 0:
        assert list(module.state_dict()) == list(state)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert max_relative_error(module(x), ref(x)) <= 1e-4


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_macs_agree_with_flop_counter_on_the_reference(name: str) -> None:
    cls, shape = REFERENCES[name]
    ours = sum(c.macs for c in node_costs(archgraph.load(name)))
    counted = reference_macs(cls().eval(), torch.randn(1, *shape[1:]))
    assert abs(ours - counted) / counted < 0.01


def test_slices_to_batch_and_back_follow_the_slices() -> None:
    b = Builder("slices")
    x = b.input("x", [2, 5, 6, 7])
    flat = b.node("slices_to_batch", x, name="flat")
    back = b.node("batch_to_slices", flat, name="back", depth=5)
    b.output(flat, back)
    module = archgraph.compile(b.build())
    v = torch.randn(3, 2, 5, 6, 7)
    got_flat, got_back = module(v)
    # sample n's slice d is row n * depth + d: stack the slices one by one
    expected = torch.stack([v[n, :, d] for n in range(3) for d in range(5)])
    assert torch.equal(got_flat, expected) and torch.equal(got_back, v)


def test_batch_to_slices_refuses_a_batch_of_partial_volumes() -> None:
    b = Builder("bad", batch=3)
    x = b.input("x", [2, 6, 7])
    with pytest.raises(archgraph.SpecError, match="depth=2") as err:
        b.node("batch_to_slices", x, name="back", depth=2)
    assert err.value.node == "back"


class DenseLayer3d(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = (
            nn.BatchNorm3d(cin),
            nn.Conv3d(cin, bn_size * growth, 1, bias=False),
        )
        self.norm2 = nn.BatchNorm3d(bn_size * growth)
        self.conv2 = nn.Conv3d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))


@pytest.mark.parametrize("level", [0, 2])
def test_3d_dense_block_equals_reference_and_concats_become_one_buffer(level: int) -> None:
    b = Builder("dense3d")
    x = b.input("x", [6, 4, 8, 8])
    b.output(b.block("dense_block", x, name="block", layers=3, growth_rate=4, bn_size=2, dims=3))
    graph = b.build()
    ref = nn.ModuleDict(
        {f"denselayer{i}": DenseLayer3d(6 + 4 * (i - 1), 4, 2) for i in (1, 2, 3)}
    ).eval()
    state = {f"block.{k}": v for k, v in randomize_state(ref, seed=5).items()}
    module = archgraph.compile(graph, level, weights=state).eval()
    v = torch.randn(2, 6, 4, 8, 8)
    with torch.no_grad():
        feats = [v]
        for i in (1, 2, 3):
            feats.append(ref[f"denselayer{i}"](torch.cat(feats, 1)))
        assert max_relative_error(module(v), torch.cat(feats, 1)) <= 1e-4
    if level == 2:  # the re-concatenations are gone: one buffer per block
        optimized = module.meta["archgraph_ir"]
        kinds = [n.op for n in optimized.nodes()]
        assert "concat" not in kinds and kinds.count("buffer_write") == 3, kinds


def test_hdenseunet_dense_blocks_in_2d_and_3d_become_buffers_at_o2() -> None:
    module = archgraph.compile(archgraph.load("hdenseunet"), 2)
    ir = module.meta["archgraph_ir"]
    buffers = [n for n in ir.nodes() if n.op == "buffer_init"]
    ranks = sorted(n.type.rank for n in buffers)
    assert ranks == [4, 4, 4, 5, 5], ranks  # three 2-D dense blocks, two 3-D ones


@pytest.mark.parametrize("name", ["unet2d", "resunet3d_glioma", "hdenseunet"])
def test_prune_channels_half_prunes_and_runs(name: str) -> None:
    from archgraph.passes.prune import prune_channels

    graph = archgraph.load(name)
    pruned, report = prune_channels(graph, 0.5)
    macs = sum(c.macs for c in node_costs(pruned))
    assert macs < 0.5 * sum(c.macs for c in node_costs(graph))
    module = archgraph.compile(pruned).eval()
    x = torch.randn(1, *graph[graph.inputs[0]].type.shape[1:])
    with torch.no_grad():
        y = module(x)
    assert y.shape == graph[graph.outputs[0]].type.shape and torch.isfinite(y).all()

"""sparse-wide=S (Sparse-IFT's Sparse Wide): widths and densities by hand, and iso-FLOPs counted
by torch.utils.flop_counter on the dense layers vs the masked widened layers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import archgraph
from archgraph.errors import ArchgraphError
from archgraph.passes.rewrites import rewrite
from archgraph.passes.rewrites.sparse_wide import sparse_wide_masks
from tests.train.helpers import SPEC


def test_widths_and_densities_by_hand() -> None:
    g = archgraph.load("resnet18", num_classes=10, image_size=32)
    wide, report = rewrite(g, "sparse-wide=0.75")  # k = 1/sqrt(0.25) = 2
    assert wide["conv1"].args["out_channels"] == 128
    assert wide["layer4.1.conv2"].args["out_channels"] == 1024
    assert wide["fc"].type.shape == (1, 10) and wide["x"].type.shape == (1, 3, 32, 32)
    d = report.densities
    assert d["layer1.0.conv1.weight"] == pytest.approx(0.25)  # both sides widened: 1 - S
    assert d["layer2.0.downsample.0.weight"] == pytest.approx(0.25)
    assert d["conv1.weight"] == pytest.approx(0.5)  # reads the image: 1/k
    assert d["fc.weight"] == pytest.approx(0.5)  # writes the logits: 1/k
    assert len(d) == 21  # every conv and the classifier
    half, rep = rewrite(g, "sparse-wide=0.5")  # k = sqrt(2): 64 -> round(90.51) = 91, 512 -> 724
    assert half["layer1.0.conv1"].args["out_channels"] == 91
    assert half["layer4.0.conv1"].args["out_channels"] == 724
    assert rep.densities["layer1.0.conv2.weight"] == pytest.approx(64 * 64 / (91 * 91))


def _layer_flops(module: torch.nn.Module, x: torch.Tensor) -> dict[str, int]:
    with FlopCounterMode(display=False) as counter:
        module(x)
    prefix = module.__class__.__name__ + "."
    out = {}
    for name, ops in counter.get_flop_counts().items():
        if name.count(".") and name.startswith(prefix):
            out[name.removeprefix(prefix)] = sum(ops.values())
    return out


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_masked_wide_layers_cost_the_dense_flops(sparsity: float) -> None:
    dense = archgraph.load(SPEC, width=8, image_size=16)
    wide, report = rewrite(dense, f"sparse-wide={sparsity}")
    masks = sparse_wide_masks(wide, dict(report.densities), seed=0)
    x = torch.randn(1, 3, 16, 16)
    before = _layer_flops(archgraph.compile(dense).eval(), x)
    after = _layer_flops(archgraph.compile(wide).eval(), x)
    assert set(before) == set(after) and len(before) == 10  # 9 convs and the classifier
    effective = {}
    for name, flops in after.items():
        m = masks[f"{name}.weight"]
        effective[name] = flops * int(m.count_nonzero()) / m.numel()
        assert after[name] > before[name]
    for name in before:
        assert effective[name] == pytest.approx(before[name], rel=1e-9), name
    assert sum(effective.values()) == pytest.approx(sum(before.values()), rel=1e-9)
    # the layers widened on both sides train at S itself
    m = masks["layer2.0.conv2.weight"]
    assert 1 - int(m.count_nonzero()) / m.numel() == pytest.approx(sparsity, abs=0.02)


def test_rewrite_names_are_checked() -> None:
    g = archgraph.load(SPEC, width=4, image_size=8)
    with pytest.raises(ArchgraphError, match="needs a value"):
        rewrite(g, "sparse-wide")
    with pytest.raises(ArchgraphError, match="out of range"):
        rewrite(g, "sparse-wide=1.5")
    with pytest.raises(ArchgraphError, match="takes no value"):
        rewrite(g, "dense-to-osa=2")
    with pytest.raises(ArchgraphError, match="unknown rewrite") as e:
        rewrite(g, "sparse-wid=0.5")
    assert "sparse-wide" in str(e.value)


def test_compile_emits_the_widened_spec(tmp_path: Path) -> None:
    from archgraph.cli import main

    out = tmp_path / "wide.yaml"
    args = ["compile", str(SPEC), "--set", "width=4", "--set", "image_size=8"]
    assert main([*args, "--rewrite", "sparse-wide=0.75", "--emit-spec", str(out)]) == 0
    wide = archgraph.load(out, batch=1)
    assert wide["layer3.0.conv2"].args["out_channels"] == 32  # 16 * 2

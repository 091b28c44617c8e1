"""`archgraph compile X --prune ... --rewrite ... --emit-spec PATH`: the MACs drop as asked,
the emitted spec compiles and runs, and bad option values are located errors (exit 2)."""

from __future__ import annotations

import re

import pytest
import torch

import archgraph
from archgraph.cli import main


def _ratio(text: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s+\S+ -> \S+\s+\(([0-9.]+)x\)", text)
    assert match, text
    return float(match.group(1))


@pytest.mark.parametrize("name", ["resnet50", "densenet121", "vovnet39a"])
def test_prune_channels_half_gives_at_most_040x_macs_and_runs(name, tmp_path, capsys) -> None:
    spec = tmp_path / f"{name}.yaml"
    args = ["compile", name, "--set", "image_size=64", "--prune", "channels=0.5"]
    assert main([*args, "--emit-spec", str(spec)]) == 0
    out = capsys.readouterr().out
    assert _ratio(out, "MACs (multiply-accumulates)") <= 0.40
    # the compile line reports the pruned network's MACs; compare with the unpruned spec
    full = archgraph.load(name, image_size=64)
    pruned = archgraph.load(spec)
    from archgraph.profile import node_costs, totals

    assert totals(node_costs(pruned)).macs <= 0.40 * totals(node_costs(full)).macs
    module = archgraph.compile(pruned).eval()
    with torch.no_grad():
        y = module(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 1000) and torch.isfinite(y).all()


@pytest.mark.parametrize(
    "option, message",
    [
        ("channels=0.5,importance=l7", "unknown importance 'l7'"),
        ("channels=1.5", "out of range"),
        ("chanels=0.5", "did you mean 'channels'"),
        ("channels=half", "needs a number"),
        ("weights=0.5,method=erk", "unknown method 'erk'"),
        ("weights=0.5,importance=l1", "unknown option 'importance'"),
    ],
)
def test_bad_prune_options_exit_2(option: str, message: str, capsys) -> None:
    assert main(["compile", "resnet18", "--set", "image_size=64", "--prune", option]) == 2
    err = capsys.readouterr().err
    assert message in err and f"--prune {option}" in err and "Traceback" not in err


def test_unknown_rewrite_exits_2(capsys) -> None:
    assert main(["compile", "densenet121", "--rewrite", "dense-to-vov"]) == 2
    err = capsys.readouterr().err
    assert "dense-to-osa" in err and "Traceback" not in err

"""The passes through the public API and the CLI: levels, explicit lists, reports, the pass
context, the module meta the profiler reads, and densenet121's measured peak memory."""

from __future__ import annotations

import pytest
import torch

import archgraph
from archgraph.cli import main
from archgraph.errors import SpecError
from archgraph.passes import PassReport, pass_context
from archgraph.profile.memory import measured_peak


def test_levels_and_explicit_lists() -> None:
    graph = archgraph.load("resnet18")
    with pytest.raises(SpecError, match="-O3"):
        archgraph.compile(graph, 3)
    with pytest.raises(SpecError, match="did you mean 'fold_bn'") as bad:
        archgraph.compile(graph, passes="dce, fold_bm")
    assert str(bad.value).startswith("passes:1:6: error: unknown pass 'fold_bm'")
    with pytest.raises(SpecError) as bad:
        archgraph.compile(graph, passes=["dce", "cse", "nope"])
    assert str(bad.value).startswith("passes[2]: error: unknown pass 'nope'")
    reports: list[PassReport] = []
    module = archgraph.compile(graph, 2, passes="fold_bn,fuse_conv", report=reports)
    assert [r.name for r in reports] == ["fold_bn", "fuse_conv"]
    ir = module.meta["archgraph_ir"]
    assert len(ir) == reports[-1].nodes_after < len(graph)
    assert set(module.meta["archgraph_pass_times"]) == {"fold_bn", "fuse_conv"}
    plain = archgraph.compile(graph, 0)
    assert plain.meta["archgraph_pass_reports"] == [] and len(plain.meta["archgraph_ir"]) == len(
        graph
    )


def test_state_dict_keys_of_surviving_convs_are_kept() -> None:
    graph = archgraph.load("resnet18")
    keys = set(archgraph.compile(graph, 0).state_dict())
    optimized = set(archgraph.compile(graph, 2).state_dict())
    convs = {k for k in keys if ".conv" in k or k.startswith("conv1") or "downsample.0" in k}
    assert convs and convs <= optimized  # folded convs keep '<conv id>.weight'


def test_pass_context_applies_to_compiles_inside_and_collects_reports() -> None:
    graph = archgraph.load("resnet18")
    runs: list[list[PassReport]] = []
    with pass_context("dce", reports=runs):
        archgraph.compile(graph, 2)
        archgraph.compile(graph, 0)
    assert [[r.name for r in run] for run in runs] == [["dce"], ["dce"]]
    assert [r.name for r in archgraph.compile(graph, 1).meta["archgraph_pass_reports"]][
        0
    ] == "canonicalize"


def test_cli_passes_and_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "resnet18", "-O2", "--explain"]) == 0
    out = capsys.readouterr().out
    for name in ("canonicalize", "fold_bn", "fuse_conv", "dense_concat", "layout"):
        assert name in out
    assert "folded 20 into their conv/linear" in out
    assert main(["compile", "resnet18", "--passes", "fold_bn", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "fold_bn" in out and "fuse_conv" not in out
    assert main(["compile", "resnet18", "--passes", "fold_bn,fuse_cnov"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("--passes:1:9: error: unknown pass 'fuse_cnov'")  # where it starts
    assert "did you mean 'fuse_conv'" in err and "Traceback" not in err


def test_densenet121_batch8_o2_peak_memory_is_at_most_0_6_of_eager() -> None:
    import torchvision

    torch.set_num_threads(2)
    eager = torchvision.models.densenet121(weights=None).eval()
    module = archgraph.compile(archgraph.load("densenet121", batch=8), 2, eager.state_dict()).eval()
    x = torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        module(x)  # first call packs the weights (kept across calls; not activations)
        eager(x)
    peak_o2, peak_eager = measured_peak(module, [x]), measured_peak(eager, [x])
    assert peak_o2 <= 0.6 * peak_eager, f"{peak_o2 / 1e6:.1f} MB vs eager {peak_eager / 1e6:.1f} MB"

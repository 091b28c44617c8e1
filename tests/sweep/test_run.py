"""A sweep run end to end on the local pool: metrics checked against PyTorch's own counters,
a failing point recorded while the others finish, the emitted specs and the report."""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import archgraph
from archgraph.errors import ArchgraphError
from archgraph.sweep import run_sweep

HERE = Path(__file__).parent
SWEEP = f"""\
name: tiny_sweep
base: {HERE / "tiny.yaml"}
batch: 2
search: list
points:
  - {{params: {{width: 4}}}}
  - {{params: {{width: 8}}, prune: channels=0.5}}
  - {{params: {{width: 0}}}}
  - {{params: {{width: 6, depth: 2}}, opt_level: 2}}
metrics: [params, macs, flops, memory_access, peak_memory, latency, peak_memory_measured, synflow]
latency: {{warmup: 1, repeats: 3}}
objectives: {{macs: min, synflow: max}}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    folder = tmp_path_factory.mktemp("sweep")
    path = folder / "tiny_sweep.yaml"
    path.write_text(SWEEP)
    seen: list[dict] = []
    result = run_sweep(
        path, out=folder / "out", workers=2, progress=lambda d, t, row: seen.append(row)
    )
    assert seen[0] is None and len(seen) == 5  # the start, then one call per point
    assert result.ran == 4
    return result.out_dir, result.rows


def test_every_point_once_and_the_failing_one_located(swept) -> None:
    _, rows = swept
    assert [r["point"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "ok"]
    error = rows[2]["error"]
    assert re.match(
        rf"{re.escape(str(HERE / 'tiny.yaml'))}:\d+:\d+: error: node 'stem.conv'", error
    )
    assert "found:    0" in error and rows[2]["spec"] == "" and rows[2]["params"] == ""
    assert [r["params.width"] for r in rows] == ["4", "8", "0", "6"]
    assert rows[1]["prune"] == "channels=0.5" and rows[0]["prune"] == ""


def _flop_counter_macs(module: torch.nn.Module, batch: int) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.randn(batch, 3, 16, 16))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("index", [0, 1])
def test_costs_match_pytorch_counts_of_the_emitted_spec(swept, index: int) -> None:
    out, rows = swept
    row = rows[index]
    graph = archgraph.load(out / row["spec"], batch=2)
    module = archgraph.compile(graph, 0).eval()
    assert int(row["params"]) == sum(p.numel() for p in module.parameters())
    assert int(row["macs"]) == _flop_counter_macs(module, 2)
    assert int(row["flops"]) >= 2 * int(row["macs"]) and row["uncounted"] == ""
    for column in ("latency_ms", "latency_p10_ms", "latency_p90_ms", "peak_measured_bytes"):
        assert float(row[column]) >= 0
    assert int(row["memory_access_bytes"]) > 0 and int(row["peak_bytes"]) > 0


def test_the_pruned_point_is_the_pruned_architecture(swept) -> None:
    out, rows = swept
    emitted = archgraph.load(out / rows[1]["spec"], batch=2)
    expected, _ = archgraph.prune_channels(
        archgraph.load(HERE / "tiny.yaml", batch=2, width=8), 0.5
    )
    assert [(n.id, n.op, n.args, n.type.shape) for n in emitted.nodes()] == [
        (n.id, n.op, n.args, n.type.shape) for n in expected.nodes()
    ]
    assert emitted["stem.conv"].type.shape[1] < 8


def test_synflow_is_the_published_formula(swept) -> None:
    out, rows = swept
    # the definition, written out here: |theta| weights, an all-ones input, float64,
    # R = sum of the outputs, score = sum |theta * dR/dtheta|
    module = archgraph.compile(archgraph.load(out / rows[0]["spec"]), 0).double().eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.abs())
    module(torch.ones(1, 3, 16, 16, dtype=torch.float64)).sum().backward()
    score = sum((p.detach() * p.grad).abs().sum().item() for p in module.parameters())
    assert math.isclose(float(rows[0]["synflow"]), math.log10(score), rel_tol=1e-9)


def test_the_report_links_every_point_to_its_spec(swept) -> None:
    out, rows = swept
    page = (out / "report.html").read_text()
    assert (
        "<svg" in page
        and "<polyline" in page  # two objectives: the front is joined
        and "<script>" in page
        and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    ok = [r for r in rows if r["status"] == "ok"]
    links = set(re.findall(r'<a href="([^"]+)"', page))
    assert links == {r["spec"] for r in ok}
    assert all((out / link).is_file() for link in links)
    titles = [html.unescape(t) for t in re.findall(r"<title>(.*?)</title>", page, re.S)[1:]]
    assert len(titles) == len(ok) and all("params.width = " in t for t in titles)
    assert "pinned to disjoint cores" in page or "one at a time" in page
    assert "zero-cost accuracy proxy" in page


def test_a_second_run_needs_resume_and_then_runs_nothing(swept) -> None:
    out, rows = swept
    path = out.parent / "tiny_sweep.yaml"
    with pytest.raises(ArchgraphError, match="already holds"):
        run_sweep(path, out=out)
    before = (out / "results.csv").read_bytes()
    again = run_sweep(path, out=out, resume=True)
    assert again.ran == 0 and again.rows == rows
    assert (out / "results.csv").read_bytes() == before


def test_resume_refuses_a_table_from_another_sweep_file(swept) -> None:
    out, _ = swept
    path = out.parent / "changed.yaml"
    path.write_text(SWEEP.replace("{width: 4}", "{width: 5}"))
    with pytest.raises(ArchgraphError, match="does not have"):
        run_sweep(path, out=out, resume=True)

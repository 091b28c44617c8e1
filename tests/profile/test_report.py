"""The profile's outputs as a user gets them from the CLI: the terminal table, JSON valid against
its documented schema, grouping by scope, ratios against baselines, a Chrome trace, DOT with
quoted ids, a self-contained HTML file, and atomic writes that never leave a partial file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import archgraph
from archgraph.outputs import OutputPlan, write_file
from archgraph.profile import outputs, profile
from archgraph.profile.dot import quote
from archgraph.profile.report import group_rows
from archgraph.profile.schema import PROFILE_SCHEMA


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archgraph.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def cli_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `archgraph compile` run asking for every output."""
    out = tmp_path_factory.mktemp("cli")
    paths = {
        k: out / name
        for k, name in (
            ("json", "p.json"),
            ("report", "r.html"),
            ("trace", "t.json"),
            ("dot", "g.dot"),
        )
    }
    proc = run(
        "compile",
        "resnet18",
        "--profile",
        "--depth",
        "2",
        "--compare",
        "-O0",
        "--against",
        "eager",
        "--repeats",
        "3",
        "--warmup",
        "1",
        *(x for k, p in paths.items() for x in (f"--{k}", str(p))),
    )
    assert proc.returncode == 0, proc.stderr
    return {"stdout": proc.stdout, "paths": paths, "data": json.loads(paths["json"].read_text())}


def test_json_follows_the_schema_and_adds_up(cli_outputs: dict[str, Any]) -> None:
    data = cli_outputs["data"]
    jsonschema.validate(data, PROFILE_SCHEMA)
    graph = archgraph.load("resnet18")
    assert (
        data["params"] == data["module_params"] == 11_689_512
    )  # torchvision's count; each tensor once
    assert [n["id"] for n in data["nodes"]] == [n.id for n in graph.nodes() if n.op != "input"]
    for key in (
        "params",
        "macs",
        "flops",
        "matmul_flops",
        "other_flops",
        "activation_bytes",
        "memory_access_bytes",
    ):
        assert data[key] == sum(n[key] for n in data["nodes"]), key
    assert (
        data["matmul_flops"] == 2 * data["macs"]
        and data["flops"] == data["matmul_flops"] + data["other_flops"]
    )
    assert data["uncounted"] == []
    assert abs(sum(n["share"] for n in data["nodes"]) - 1) < 1e-9
    assert all(n["latency_p10_ms"] <= n["latency_ms"] <= n["latency_p90_ms"] for n in data["nodes"])
    assert data["latency_p10_ms"] <= data["latency_ms"] <= data["latency_p90_ms"]
    assert data["throughput_per_s"] == pytest.approx(1e3 / data["latency_ms"])
    assert data["timer"] == "perf_counter" and data["warmup"] == 1 and data["repeats"] == 3
    assert [p["name"] for p in data["compile_phases"]] == ["bind weights", "run pipeline", "lower"]
    assert (
        sum(p["seconds"] for p in data["compile_phases"]) <= data["compile_s"]
        and data["load_s"] > 0
    )
    assert data["peak_memory"]["estimate_bytes"] > 0 and data["peak_memory"]["measured_bytes"] > 0


def test_groups_by_scope_at_depth(cli_outputs: dict[str, Any]) -> None:
    data = cli_outputs["data"]
    groups = {g["scope"]: g for g in data["groups"]}
    assert list(groups)[:6] == ["conv1", "bn1", "relu", "maxpool", "layer1.0", "layer1.1"]
    # a basic block of 64 planes: two 3x3 convs without bias and two batchnorms, by hand
    assert (
        groups["layer1.0"]["params"] == 2 * (64 * 64 * 9 + 2 * 64)
        and groups["layer1.0"]["nodes"] == 7
    )
    for key in ("params", "macs", "flops"):
        assert sum(g[key] for g in data["groups"]) == data[key]
    assert abs(sum(g["share"] for g in data["groups"]) - 1) < 1e-9
    by_layer = {g["scope"]: g for g in group_rows(data["nodes"], 1)}
    assert by_layer["layer4"]["nodes"] == 16 and by_layer["fc"]["params"] == 512 * 1000 + 1000
    assert "grouped at depth 2" in cli_outputs["stdout"] and "layer3.1" in cli_outputs["stdout"]


def test_comparisons_are_ratios(cli_outputs: dict[str, Any]) -> None:
    data = cli_outputs["data"]
    before, eager = data["comparisons"]
    assert (
        before["name"] == "archgraph -O0"
        and before["ratios"]["macs"] == 1.0 == before["ratios"]["params"]
    )
    assert eager["name"] == "eager" and eager["description"] == "torchvision.models.resnet18"
    assert "outputs equal" in eager["note"]
    for c in (before, eager):
        assert c["ratios"]["latency_ms"] == pytest.approx(data["latency_ms"] / c["latency_ms"])
    assert "relative to each baseline" in cli_outputs["stdout"]


def test_chrome_trace_has_one_complete_event_per_node(cli_outputs: dict[str, Any]) -> None:
    trace = json.loads(cli_outputs["paths"]["trace"].read_text())
    events = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"] != "forward"]
    assert [e["name"] for e in events] == [n["id"] for n in cli_outputs["data"]["nodes"]]
    assert all(isinstance(e["ts"], float) and e["dur"] >= 0 for e in events)
    assert all(a["ts"] + a["dur"] <= b["ts"] for a, b in zip(events, events[1:], strict=False))
    forward = next(e for e in trace["traceEvents"] if e["name"] == "forward")
    total_ms = sum(e["dur"] for e in events) / 1e3  # microseconds
    assert forward["dur"] / 1e3 >= total_ms > 0.2 * cli_outputs["data"]["node_latency_sum_ms"]


def test_dot_quotes_every_id_and_has_every_edge(cli_outputs: dict[str, Any]) -> None:
    text = cli_outputs["paths"]["dot"].read_text()
    graph = archgraph.load("resnet18")
    assert text.startswith('digraph "resnet18" {') and text.rstrip().endswith("}")
    nodes = re.findall(r'^  "([^"]+)" \[label=', text, re.M)
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)";$', text, re.M)
    assert nodes == [n.id for n in graph.nodes()]
    assert sorted(edges) == sorted((s, n.id) for n in graph.nodes() for s in n.inputs)
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_html_is_self_contained_with_one_shape_per_node(cli_outputs: dict[str, Any]) -> None:
    text = cli_outputs["paths"]["report"].read_text()
    graph = archgraph.load("resnet18")
    assert re.findall(r'https?://[^"\s]+', text) == [
        "http://www.w3.org/2000/svg"
    ]  # a namespace, not a fetch
    assert not re.search(r"<link|<img|\ssrc=|@import|url\((?!#)", text)
    assert re.findall(r'<rect class="node-shape" data-id="([^"]+)"', text) == [
        n.id for n in graph.nodes()
    ]
    assert text.count('<tr data-node="') == len(graph) - 1 + len(
        list(group_rows(cli_outputs["data"]["nodes"], 2))
    )


def test_bad_flags_are_user_errors() -> None:
    proc = run("compile", "resnet18", "--against", "eagre")
    assert (
        proc.returncode == 2 and "eager, inductor" in proc.stderr and "Traceback" not in proc.stderr
    )
    proc = run("compile", "resnet18", "--compare", "-Ox")
    assert proc.returncode == 2 and "-O0, -O1" in proc.stderr
    proc = run("compile", "resnet18", "--profile", "--depth", "0")
    assert proc.returncode == 2 and "--depth" in proc.stderr


def test_eager_falls_back_to_the_o0_module_without_a_reference() -> None:
    b = archgraph.Builder("not_a_torchvision_model")
    x = b.input("x", [3, 16, 16])
    b.output(b.node("conv2d", x, name="conv", out_channels=4, kernel_size=3))
    data = profile(b.build(), warmup=1, repeats=2, against=["eager"]).to_json()
    (eager,) = data["comparisons"]
    assert (
        eager["description"].startswith("archgraph -O0 fx module")
        and "no torchvision/timm model" in eager["note"]
    )


def test_a_failed_render_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = profile(archgraph.load("resnet18"), warmup=1, repeats=1)
    json_path, html_path = tmp_path / "p.json", tmp_path / "r.html"
    html_path.write_text("previous report")

    def broken(profile: Any) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(outputs, "render", broken)
    plan = OutputPlan.check({"--json": json_path, "--report": html_path})
    with pytest.raises(RuntimeError):  # every content is rendered before anything is written
        plan.write({k: outputs.render_file(result, k[2:]) for k in ("--json", "--report")})
    assert not json_path.exists() and html_path.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_write_atomic_leaves_the_old_file_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.json"
    path.write_text("old")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("archgraph.outputs.os.replace", fail)
    with pytest.raises(OSError):
        write_file(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]

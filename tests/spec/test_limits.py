"""Limits on what a spec may ask for: each error names the limit and how to raise it, in Python
(Limits) and on the command line (--limit NAME=N)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import archgraph
from archgraph import Limits
from archgraph.errors import SpecError
from archgraph.spec.limits import LIMIT_NAMES, limits_from

REPEATED = """\
name: r
inputs: {x: [4, 8, 8]}
blocks:
  u: {nodes: {a: {op: relu, in: input}, b: {op: relu}}}
nodes:
  stack: {block: u, in: x, repeat: 30}
"""


def load_error(text: str, limits: Limits) -> SpecError:
    with pytest.raises(SpecError) as err:
        archgraph.spec.load_spec_text(text, "s.yaml", limits=limits)
    assert (
        err.value.loc is not None
        and err.value.loc.file == "s.yaml"
        and err.value.loc.line is not None
    )
    return err.value


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("max_graph_nodes", 40, "too many nodes"),  # 1 input + 60 relus
        ("max_graph_edges", 50, "too many connections"),  # 60 relus of one input each
        ("max_repeat", 29, "repeat count out of range"),
        ("max_tensor_elements", 255, "input 'x' is too large"),  # 4*8*8 = 256
        ("max_depth", 3, "nested too deeply"),
        ("max_yaml_nodes", 12, "too many YAML values"),
        ("max_bytes", 100, "too large"),
    ],
)
def test_each_limit_is_named_in_its_error_and_can_be_raised(
    field: str, value: int, fragment: str
) -> None:
    graph = archgraph.spec.load_spec_text(REPEATED, "s.yaml")
    assert len(graph) == 61 and "stack.29.b" in graph
    short = next(k for k, v in LIMIT_NAMES.items() if v == field)
    if field == "max_bytes":
        with pytest.raises(SpecError) as err:
            archgraph.spec.load_spec_text(REPEATED, "s.yaml", limits=Limits(max_bytes=value))
        e = err.value
    else:
        e = load_error(REPEATED, Limits(**{field: value}))
    assert fragment in e.message
    assert f"--limit {short}=N" in (e.hint or "") and f"Limits.{field}" in (e.hint or "")
    assert (
        len(archgraph.spec.load_spec_text(REPEATED, "s.yaml", limits=Limits(**{field: 10**6})))
        == 61
    )


def test_tensor_limit_covers_parameters() -> None:
    text = "name: p\ninputs: {x: [64]}\nnodes: {fc: {op: linear, in: x, out_features: 100000}}\n"
    e = load_error(text, Limits(max_tensor_elements=1_000_000))  # weight 6.4M elements, output 100k
    assert "parameter" in e.message and "6400000 elements" in (e.found or "")


def test_limits_from_the_command_line() -> None:
    assert limits_from(["nodes=200000", "depth=100"]) == Limits(
        max_graph_nodes=200_000, max_depth=100
    )
    assert limits_from(["tensor_elements=1_000"]).max_tensor_elements == 1000
    for bad in ["nodez=5", "nodes", "nodes=-1", "nodes=many"]:
        with pytest.raises(SpecError):
            limits_from([bad])


def test_cli_limit_flag(tmp_path: Path) -> None:
    spec = tmp_path / "r.yaml"
    spec.write_text(REPEATED)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "archgraph.cli", "validate", str(spec), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )

    proc = cli("--limit", "nodes=40")
    assert (
        proc.returncode == 2
        and "at most 40 nodes" in proc.stderr
        and "--limit nodes=N" in proc.stderr
    )
    assert cli("--limit", "nodes=40", "--limit", "nodes=100").returncode == 0  # the last one wins
    proc = cli("--limit", "nodez=40")
    assert (
        proc.returncode == 2 and "unknown limit 'nodez'" in proc.stderr and "'nodes'" in proc.stderr
    )

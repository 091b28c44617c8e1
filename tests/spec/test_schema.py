"""`archgraph schema`: a JSON Schema generated from the op and block registries. Every zoo spec and
example validates against it; specs with unknown ops, wrong argument types or missing arguments
do not; a plugin's ops and blocks are in it when the plugin is loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

import archgraph
from archgraph.errors import SpecError
from archgraph.spec import load_spec_text, zoo_path
from archgraph.spec.schema import spec_schema
from archgraph.spec.yaml_source import parse_yaml
from tests.spec.fuzzing import FILE, data_mutation, text_mutation

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugin_ops.py"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archgraph.cli", *args], capture_output=True, text=True, timeout=300
    )


@cache
def schema(*plugin: str) -> dict[str, Any]:
    proc = cli("schema", *(arg for p in plugin for arg in ("--plugin", p)))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def errors(spec_text: str, *plugin: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema(*plugin))
    return [e.message for e in validator.iter_errors(parse_yaml(spec_text, "s.yaml"))]


@pytest.mark.parametrize("name", archgraph.zoo())
def test_zoo_spec_validates(name: str) -> None:
    assert errors(zoo_path(name).read_text(encoding="utf-8")) == []


def test_example_spec_validates() -> None:
    assert errors((ROOT / "examples" / "custom_block.yaml").read_text()) == []


def test_schema_names_every_op_and_block() -> None:
    # the registries as a fresh process has them (tests in this process register extra ops)
    names = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from archgraph.blocks import block_names; "
            "from archgraph.ops import op_names; print(json.dumps([op_names(), block_names()]))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    ops, blocks = json.loads(names.stdout)
    assert len(ops) > 40 and len(blocks) > 10
    entry = schema()["$defs"]["entry"]
    assert entry["properties"]["op"]["enum"] == ops
    assert entry["properties"]["block"]["anyOf"][0]["enum"] == blocks


GOOD = "name: s\ninputs: {x: [3, 8, 8]}\nnodes:\n  c: {op: conv2d, in: x, out_channels: 8, kernel_size: 3}\n"


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (GOOD.replace("conv2d", "conv2dd"), "is not one of"),  # unknown op
        (GOOD.replace("out_channels: 8", "out_channels: eight"), "eight"),  # wrong type
        (
            GOOD.replace("out_channels: 8, ", ""),
            "'out_channels' is a required property",
        ),  # missing argument
        (
            GOOD.replace("kernel_size: 3", "kernel_size: 3, kernel: 3"),
            "'kernel' was unexpected",
        ),  # unknown argument
        (GOOD + "nodez: {}\n", "'nodez' was unexpected"),  # unknown top-level key
        (GOOD.replace("inputs: {x: [3, 8, 8]}\n", ""), "'inputs' is a required property"),
        (
            GOOD.replace("{op: conv2d,", "{block: dense_block, growth_rate: x,"),
            "x",
        ),  # block argument type
        (GOOD.replace("c: {", "c d: {"), "does not match"),  # a node name with a space
    ],
)
def test_bad_specs_do_not_validate(spec: str, why: str) -> None:
    assert errors(GOOD) == []
    found = errors(spec)
    assert found and any(why in m for m in found), found


def test_expressions_are_allowed_for_any_argument() -> None:
    assert errors(GOOD.replace("out_channels: 8", 'out_channels: "${4 * 2}"')) == []


def test_plugin_ops_and_blocks_are_in_the_schema() -> None:
    spec = (ROOT / "examples" / "plugin_spec.yaml").read_text()
    plain = errors(spec)
    assert any("swish_beta" in m for m in plain)  # not registered without the plugin
    assert errors(spec, str(PLUGIN)) == []
    rules = schema(str(PLUGIN))["$defs"]["entry"]["allOf"]
    swish = next(
        r for r in rules if r["if"]["properties"].get("op", {}).get("const") == "swish_beta"
    )
    assert swish["then"]["properties"]["beta"]["anyOf"][0]["type"] == "number"


@settings(
    max_examples=150,
    database=None,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data_mutation() | text_mutation())
def test_every_spec_that_loads_validates(text: str) -> None:
    """The schema never rejects a spec archgraph accepts (it may accept more: shapes, wiring)."""
    try:
        load_spec_text(text, FILE)
    except SpecError:
        return
    validator = jsonschema.Draft202012Validator(spec_schema())
    assert [e.message for e in validator.iter_errors(parse_yaml(text, FILE))] == []

"""Every bad spec gets one located error: file:line:col, the node id, expected vs found, a hint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import archgraph
from archgraph.errors import SpecError

HEADER = """\
name: bad
inputs:
  x: [3, 32, 32]
nodes:
"""


def load_error(tmp_path: Path, body: str) -> SpecError:
    path = tmp_path / "bad.yaml"
    path.write_text(HEADER + body)
    with pytest.raises(SpecError) as err:
        archgraph.load(path)
    e = err.value
    assert e.loc is not None and e.loc.file == str(path)
    return e


def position(e: SpecError) -> tuple[int | None, int | None]:
    assert e.loc is not None
    return e.loc.line, e.loc.col


def column(line: str, token: str) -> int:
    """1-based column of `token` in a spec line, counted independently of the loader."""
    return line.index(token) + 1


def test_cycle(tmp_path: Path) -> None:
    e = load_error(
        tmp_path,
        "  a: {op: conv2d, in: c, out_channels: 8, kernel_size: 3}\n"
        "  b: {op: relu, in: a}\n"
        "  c: {op: relu, in: b}\n",
    )
    assert "cycle" in e.message and "a -> b -> c -> a" in e.message
    assert position(e) == (5, 3) and e.node == "a"


def test_unknown_op(tmp_path: Path) -> None:
    line = "  c1: {op: conv2dd, in: x, out_channels: 8, kernel_size: 3}"
    e = load_error(tmp_path, line + "\n")
    assert "unknown op 'conv2dd'" in e.message
    assert position(e) == (5, column(line, "conv2dd"))  # the op's value
    assert e.node == "c1" and "conv2d" in (e.hint or "")


def test_unknown_input_name(tmp_path: Path) -> None:
    line = "  act: {op: relu, in: conv_1}"
    e = load_error(
        tmp_path, "  conv1: {op: conv2d, in: x, out_channels: 8, kernel_size: 3}\n" + line + "\n"
    )
    assert "unknown input name 'conv_1'" in e.message
    assert position(e) == (6, column(line, "conv_1")) and e.node == "act"
    assert "'conv1'" in (e.hint or "")


def test_wrong_argument_type(tmp_path: Path) -> None:
    line = "  conv1: {op: conv2d, in: x, out_channels: eight, kernel_size: 3}"
    e = load_error(tmp_path, line + "\n")
    assert "argument 'out_channels'" in e.message
    assert position(e) == (5, column(line, "eight"))  # the bad value itself
    assert e.expected == "an integer" and "'eight'" in (e.found or "")


def test_channel_mismatch_at_add(tmp_path: Path) -> None:
    line = "  sum: {op: add, in: [a, b]}"
    e = load_error(
        tmp_path,
        "  a: {op: conv2d, in: x, out_channels: 16, kernel_size: 1}\n"
        "  b: {op: conv2d, in: x, out_channels: 32, kernel_size: 1}\n" + line + "\n",
    )
    assert "channels (dim 1) differ: 16 vs 32" in e.message
    assert e.node == "sum" and position(e) == (7, column(line, "[a, b]"))  # the `in:` list
    assert "[1, 16, 32, 32]" in (e.expected or "") and "[1, 32, 32, 32] from 'b'" in (e.found or "")


def test_channel_mismatch_at_concat(tmp_path: Path) -> None:
    e = load_error(
        tmp_path,
        "  a: {op: conv2d, in: x, out_channels: 16, kernel_size: 1}\n"
        "  b: {op: conv2d, in: x, out_channels: 16, kernel_size: 3, stride: 2, padding: 1}\n"
        "  cat: {op: concat, in: [a, b]}\n",
    )
    assert "concat inputs must agree" in e.message and e.node == "cat"
    assert e.expected == "[1, *, 32, 32]" and "[1, 16, 16, 16] from 'b'" in (e.found or "")


def test_error_inside_block_template_names_the_full_id(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ninputs: {x: [3, 8, 8]}\n"
        "blocks:\n"
        "  pair:\n"
        "    params: {c: null}\n"
        "    nodes:\n"
        "      conv: {op: conv2d, in: input, out_channels: $c, kernel_size: 1}\n"
        "      sum: {op: add, in: [conv, input]}\n"
        "nodes:\n"
        "  stage: {block: pair, repeat: 2, in: x, c: 4}\n"
    )
    with pytest.raises(SpecError) as err:
        archgraph.load(path)
    assert err.value.node == "stage.0.sum"
    assert err.value.loc is not None and err.value.loc.line == 8


def test_cli_prints_located_error_without_traceback_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    line = "  c1: {op: conv2dd, in: x, out_channels: 8, kernel_size: 3}"
    path.write_text(HEADER + line + "\n")
    out = tmp_path / "profile.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "archgraph.cli",
            "compile",
            str(path),
            "--profile",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert (
        f"{path}:5:{column(line, 'conv2dd')}: error: node 'c1': unknown op 'conv2dd'" in proc.stderr
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()

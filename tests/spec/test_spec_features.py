"""What a user writing torchvision models from the README needs of the spec format: `repeat:`
with a start and a prefix, template entries named `.` that take the block call's own id, template
expressions reading the input's shape (`in_channels`, `in_shape`), '-' in names (RegNet's
`block1-0`); and the messages that guide them: unknown ops (no unrelated suggestion, the
--plugin way), the strict-load hint naming the state_dict key, the CLI's -O1/-O2 params note,
and `archgraph.plugins` after a bare `import archgraph`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import archgraph
from archgraph.cli import main
from archgraph.errors import WeightsError
from archgraph.ir.weights import check_weights, init_weights, param_specs
from archgraph.spec import load_spec_text

UNIT = """
name: s
inputs: {x: [4, 8, 8]}
blocks:
  unit:
    params: {growth: 2, k: 0}
    nodes:
      conv: {op: conv2d, in: input, out_channels: "${in_channels + growth * k}", kernel_size: 1}
      act: {op: relu}
nodes:
  stem: {op: conv2d, in: x, out_channels: 6, kernel_size: 1}
  features: {block: unit, repeat: REPEAT, k: $i}
"""


def test_repeat_with_a_start_numbers_from_it_and_i_is_that_number() -> None:
    graph = load_spec_text(UNIT.replace("REPEAT", "{count: 3, start: 1}"), "s.yaml")
    convs = [n.id for n in graph.nodes() if n.op == "conv2d"]
    assert convs == ["stem", "features.1.conv", "features.2.conv", "features.3.conv"]
    # i is 1, 2, 3: each conv widens its input by 2 * i
    assert [graph[c].type.shape[1] for c in convs] == [6, 8, 12, 18]


def test_repeat_with_a_prefix_names_like_regnet() -> None:
    graph = load_spec_text(UNIT.replace("REPEAT", "{count: 2, prefix: block1-}"), "s.yaml")
    assert "features.block1-0.conv" in graph and "features.block1-1.act" in graph
    assert list(param_specs(graph))[2] == "features.block1-0.conv.weight"


def test_plain_repeat_still_numbers_from_0() -> None:
    graph = load_spec_text(UNIT.replace("REPEAT", "2"), "s.yaml")
    assert "features.0.conv" in graph and "features.1.conv" in graph


@pytest.mark.parametrize(
    ("repeat", "message"),
    [
        ("{count: 2, stat: 1}", "unknown key 'stat' in `repeat`"),
        ("{start: 1}", "`repeat` needs a `count`"),
        ("{count: 2, start: -1}", "repeat start is negative"),
        ("{count: 2, prefix: -x}", "not a valid name"),
    ],
)
def test_bad_repeat_is_a_located_error(repeat: str, message: str) -> None:
    with pytest.raises(archgraph.SpecError, match=message) as e:
        load_spec_text(UNIT.replace("REPEAT", repeat), "s.yaml")
    assert e.value.loc is not None and e.value.loc.line == 12


def test_a_dot_entry_takes_the_block_calls_id() -> None:
    text = """
name: s
inputs: {x: [4, 8, 8]}
blocks:
  norm:
    nodes:
      .: {op: batchnorm, in: input}
nodes:
  features.2.0: {block: norm, in: x}
"""
    graph = load_spec_text(text, "s.yaml")
    assert graph["features.2.0"].op == "batchnorm"
    assert "features.2.0.weight" in param_specs(graph)


def test_a_dot_entry_at_the_top_level_is_a_located_error() -> None:
    text = "name: s\ninputs: {x: [4]}\nnodes:\n  .: {op: relu, in: x}\n"
    with pytest.raises(archgraph.SpecError, match="the top level has none") as e:
        load_spec_text(text, "s.yaml")
    assert e.value.loc is not None and e.value.loc.line == 4


def test_python_blocks_name_a_node_after_the_call_with_a_dot() -> None:
    b = archgraph.Builder("s")
    x = b.input("x", [4, 8, 8])
    with b.scope("features.2.0"):
        y = b.batchnorm(x, name=".")
    assert y.id == "features.2.0"
    with pytest.raises(archgraph.SpecError, match="there is none here"):
        b.relu(x, name=".")


def test_template_expressions_read_the_input_shape_and_params_take_precedence() -> None:
    text = """
name: s
inputs: {x: [6, 5, 7]}
blocks:
  widen:
    params: {k: 2}
    nodes:
      conv: {op: conv2d, in: input, out_channels: "${in_channels * k + in_shape[2]}", kernel_size: 1}
  fixed:
    params: {in_channels: 3}
    nodes:
      conv: {op: conv2d, in: input, out_channels: $in_channels, kernel_size: 1}
nodes:
  a: {block: widen, in: x}
  b: {block: fixed}
"""
    graph = load_spec_text(text, "s.yaml")
    assert graph["a.conv"].type.shape[1] == 6 * 2 + 7
    assert graph["b.conv"].type.shape[1] == 3


@pytest.mark.parametrize(("name", "ok"), [("block1-0", True), ("a.b-c_1", True), ("-a", False)])
def test_names_may_hold_a_hyphen_but_not_start_with_one(name: str, ok: bool) -> None:
    text = f"name: s\ninputs: {{x: [4]}}\nnodes:\n  '{name}': {{op: relu, in: x}}\n"
    if ok:
        graph = load_spec_text(text, "s.yaml")
        module = archgraph.compile(graph)
        assert torch.equal(module(-torch.ones(1, 4)), torch.zeros(1, 4))
    else:
        with pytest.raises(archgraph.SpecError, match="starts with '-'"):
            load_spec_text(text, "s.yaml")


def test_unknown_op_hint_names_no_unrelated_op_and_mentions_plugins() -> None:
    text = "name: s\ninputs: {x: [4, 8, 8]}\nnodes:\n  up: {op: conv_transpose3d, in: x}\n"
    with pytest.raises(archgraph.SpecError) as e:
        load_spec_text(text, "s.yaml")
    hint = e.value.hint or ""
    assert "'transpose'" not in hint and "'conv_transpose2d'" in hint and "--plugin" in hint
    with pytest.raises(archgraph.SpecError) as e:
        load_spec_text(text.replace("conv_transpose3d", "upsampl"), "s.yaml")
    assert "did you mean 'upsample'" in (e.value.hint or "")
    with pytest.raises(archgraph.SpecError) as e:
        load_spec_text(text.replace("conv_transpose3d", "frobnicate"), "s.yaml")
    assert "did you mean" not in (e.value.hint or "") and "--plugin" in (e.value.hint or "")


def test_strict_load_hint_names_the_state_dict_key_to_use() -> None:
    b = archgraph.Builder("s")
    b.output(b.batchnorm(b.input("x", [4, 8, 8]), name="features.2.0.norm"))
    graph = b.build()
    state = {k.replace(".norm", ""): v for k, v in init_weights(graph).items()}
    with pytest.raises(WeightsError) as e:
        check_weights(graph, state)
    assert "'features.2.0.weight'" in (e.value.hint or "")
    assert "'features.2.0.norm.weight'" in (e.value.hint or "")


def test_cli_says_why_params_differ_at_o1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "resnet18", "--set", "image_size=64"]) == 0
    validated = capsys.readouterr().out
    figure = validated.split("params ")[1].split(",  ")[0].split(", MACs")[0]
    assert main(["compile", "resnet18", "--set", "image_size=64", "-O1"]) == 0
    out = capsys.readouterr().out
    assert f"params {figure} as written (-O0" in out and "batchnorm is folded" in out
    assert main(["compile", "resnet18", "--set", "image_size=64"]) == 0
    assert "as written" not in capsys.readouterr().out


def test_plugins_are_reachable_after_import_archgraph() -> None:
    code = "import archgraph; print(archgraph.plugins.load_plugin.__name__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "load_plugin"

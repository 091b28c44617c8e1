"""Parameter sharing by name (`share: <node id>`): one tensor in the state_dict and the module,
gradients from every use accumulate in it (checked against plain PyTorch autograd over one leaf
tensor), the same graph from YAML and Python, and located errors for an unknown target, a target
that differs, or a chain."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import archgraph
from archgraph import Builder
from archgraph.errors import SpecError
from archgraph.spec.emit import graph_to_yaml

SPEC = """\
name: shared
inputs:
  x: [4, 8]
nodes:
  a: {op: linear, in: x, out_features: 8}
  act: {op: relu}
  b: {op: linear, out_features: 8, share: a}
outputs: [b]
"""


def _python_graph() -> archgraph.Graph:
    b = Builder("shared")
    x = b.input("x", [4, 8])
    y = b.node("linear", x, name="a", out_features=8)
    y = b.node("relu", y, name="act")
    b.output(b.node("linear", y, name="b", out_features=8, share="a"))
    return b.build()


def test_shared_parameters_are_one_tensor_and_gradients_accumulate(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(SPEC)
    for graph in (archgraph.load(path), _python_graph()):
        module = archgraph.compile(graph, seed=1)
        assert list(module.state_dict()) == ["a.weight", "a.bias"]
        assert [n for n, _ in module.named_parameters()] == ["a.weight", "a.bias"]
        x = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0))
        module(x).square().sum().backward()
        # plain PyTorch: one leaf weight used twice
        w = module.a.weight.detach().clone().requires_grad_()
        bias = module.a.bias.detach().clone().requires_grad_()
        F.linear(F.relu(F.linear(x, w, bias)), w, bias).square().sum().backward()
        torch.testing.assert_close(module.a.weight.grad, w.grad)
        torch.testing.assert_close(module.a.bias.grad, bias.grad)
        # and the sum differs from either use alone: both uses contributed
        w1 = w.detach().clone().requires_grad_()
        F.linear(
            F.relu(F.linear(x, w1, bias.detach())), w.detach(), bias.detach()
        ).square().sum().backward()
        assert not torch.allclose(w1.grad, w.grad)


def test_shared_graph_equal_at_every_level_and_round_trips(tmp_path: Path) -> None:
    graph = _python_graph()
    x = torch.randn(3, 4, 8)
    ref = archgraph.compile(graph, 0).eval()(x)
    for level in (1, 2):
        torch.testing.assert_close(archgraph.compile(graph, level).eval()(x), ref)
    path = tmp_path / "again.yaml"
    path.write_text(graph_to_yaml(graph))
    again = archgraph.load(path)
    assert again["b"].share == "a" and again["a"].share is None


def _error(tmp_path: Path, text: str) -> SpecError:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        archgraph.load(path)
    e = err.value
    assert e.loc is not None and e.loc.file == str(path)
    return e


def test_unknown_share_target_is_located_with_a_hint(tmp_path: Path) -> None:
    text = SPEC.replace("share: a}", "share: aa}")
    e = _error(tmp_path, text)
    assert e.node == "b" and "unknown node 'aa'" in e.message
    assert e.loc.line == 7 and e.loc.col == text.splitlines()[6].index("aa") + 1  # the value
    assert "'a'" in (e.hint or "")


def test_share_with_other_shapes_or_args_is_refused(tmp_path: Path) -> None:
    wider = SPEC.replace("act: {op: relu}", "act: {op: linear, out_features: 6}").replace(
        "b: {op: linear, out_features: 8, share: a}", "b: {op: linear, out_features: 8, share: a}"
    )
    e = _error(tmp_path, wider)
    assert e.node == "b" and "shapes differ" in e.message
    assert "[8, 8]" in (e.expected or "") and "[8, 6]" in (e.found or "")
    e = _error(
        tmp_path, SPEC.replace("out_features: 8, share", "out_features: 8, bias: false, share")
    )
    assert e.node == "b" and "differ" in e.message


def test_share_chains_and_parameterless_targets_are_refused() -> None:
    b = Builder("chain")
    x = b.input("x", [8])
    y = b.node("linear", x, name="a", out_features=8)
    y = b.node("linear", y, name="b", out_features=8, share="a")
    with pytest.raises(SpecError, match="itself shares") as err:
        b.node("linear", y, name="c", out_features=8, share="b")
    assert err.value.node == "c" and err.value.hint == "write share: a"
    r = b.node("relu", y, name="r")
    with pytest.raises(SpecError, match="no parameters"):
        b.node("relu", r, name="r2", share="r")


def test_share_on_a_block_call_is_an_error(tmp_path: Path) -> None:
    text = SPEC.replace(
        "  b: {op: linear, out_features: 8, share: a}",
        "  b: {block: vit_block, num_heads: 2, share: a}",
    )
    e = _error(tmp_path, text)
    assert "`share` applies to ops" in e.message and e.loc.line == 7

"""inception_resnet_v2 in the zoo, checked against timm (the reference nobody here wrote): the
same parameter names and count, strict loading of timm's state_dict, equal outputs, MACs as
torch.utils.flop_counter counts them, and the blocks built from Python matching timm's modules."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import archgraph
from archgraph.ir import Graph
from archgraph.profile.costs import node_costs
from tests.reference import count_parameters, max_relative_error, randomize_state, reference_macs

NAME = "inception_resnet_v2"
PARAMS, GMACS = 55_843_464, 13.156  # ../shared/REFERENCE.md, at 299x299


@pytest.fixture(scope="module")
def reference() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """timm's model in eval mode with random weights and statistics, and its state_dict."""
    model = timm.create_model(NAME, pretrained=False).eval()
    return model, randomize_state(model, seed=1)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return archgraph.load(NAME)


def test_parameter_count_is_exact(reference: tuple[nn.Module, dict], graph: Graph) -> None:
    ref, _ = reference
    assert sum(c.params for c in node_costs(graph)) == count_parameters(ref) == PARAMS


def test_timm_weights_load_strictly_and_outputs_match(
    reference: tuple[nn.Module, dict], graph: Graph
) -> None:
    ref, state = reference
    module = archgraph.compile(graph, weights=state).eval()
    assert list(module.state_dict()) == list(state)
    x = torch.randn(2, 3, 299, 299, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = ref(x), module(x)
    assert max_relative_error(got, expected) <= 1e-4


def test_macs_agree_with_flop_counter_and_table(
    reference: tuple[nn.Module, dict], graph: Graph
) -> None:
    ref, _ = reference
    ours = sum(c.macs for c in node_costs(graph))
    counted = reference_macs(ref, torch.randn(1, 3, 299, 299))
    assert abs(ours - counted) / counted < 0.01
    assert abs(ours / 1e9 - GMACS) / GMACS < 0.01


@pytest.mark.parametrize(
    ("block", "path", "args", "shape"),
    [
        ("mixed_5b", "mixed_5b", {}, (192, 9, 9)),
        ("block35", "repeat.3", {"scale": 0.17}, (320, 9, 9)),
        ("mixed_6a", "mixed_6a", {}, (320, 9, 9)),
        ("block17", "repeat_1.6", {"scale": 0.10}, (1088, 5, 5)),
        ("mixed_7a", "mixed_7a", {}, (1088, 9, 9)),
        ("block8", "repeat_2.0", {"scale": 0.20}, (2080, 3, 3)),
        ("block8", "block8", {"no_relu": True}, (2080, 3, 3)),
    ],
)
def test_python_blocks_match_timm_modules(
    reference: tuple[nn.Module, dict], block: str, path: str, args: dict, shape: tuple
) -> None:
    """Each block built through the Python API, under timm's module path, takes that module's
    weights strictly and computes what it computes."""
    ref, state = reference
    b = archgraph.Builder(block)
    b.output(b.block(block, b.input("x", shape), name=path, **args))
    weights = {k: v for k, v in state.items() if k.startswith(f"{path}.")}
    module = archgraph.compile(b.build(), weights=weights).eval()
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected, got = ref.get_submodule(path)(x), module(x)
    assert max_relative_error(got, expected) <= 1e-4

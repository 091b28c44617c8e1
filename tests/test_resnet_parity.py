"""The foundation's promise, checked against torchvision (the reference nobody here wrote):
same parameter names and counts, strict state_dict loading, equal outputs, MACs as counted by
torch.utils.flop_counter."""

from __future__ import annotations

import pytest
import torch
import torchvision

import archgraph
from archgraph.profile.costs import node_costs
from tests.reference import count_parameters, max_relative_error, randomize_state, reference_macs

# name -> (parameters, GMACs at 224x224) from ../shared/REFERENCE.md
TABLE = {"resnet18": (11_689_512, 1.814), "resnet50": (25_557_032, 4.089)}


@pytest.fixture(scope="module", params=sorted(TABLE))
def case(request: pytest.FixtureRequest) -> tuple[str, torch.nn.Module]:
    model = getattr(torchvision.models, request.param)(weights=None).eval()
    return request.param, model


def test_parameter_count_is_exact(case: tuple[str, torch.nn.Module]) -> None:
    name, ref = case
    graph = archgraph.load(name)
    module = archgraph.compile(graph)
    assert count_parameters(module) == count_parameters(ref) == TABLE[name][0]


def test_state_dict_keys_are_torchvision_names(case: tuple[str, torch.nn.Module]) -> None:
    name, ref = case
    module = archgraph.compile(archgraph.load(name))
    ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours == theirs


def test_reference_weights_load_strictly_and_outputs_match(
    case: tuple[str, torch.nn.Module],
) -> None:
    name, ref = case
    state = randomize_state(ref, seed=1)
    module = archgraph.compile(archgraph.load(name), weights=state).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = ref(x), module(x)
    assert max_relative_error(got, expected) <= 1e-4


def test_macs_agree_with_flop_counter_and_table(case: tuple[str, torch.nn.Module]) -> None:
    name, ref = case
    ours = sum(c.macs for c in node_costs(archgraph.load(name)))
    counted = reference_macs(ref, torch.randn(1, 3, 224, 224))
    assert abs(ours - counted) / counted < 0.01
    assert abs(ours / 1e9 - TABLE[name][1]) / TABLE[name][1] < 0.01


def test_wrong_weights_are_refused_with_names(case: tuple[str, torch.nn.Module]) -> None:
    name, ref = case
    state = dict(ref.state_dict())
    state["fc.weigth"] = state.pop("fc.weight")
    with pytest.raises(archgraph.ArchgraphError) as err:
        archgraph.compile(archgraph.load(name), weights=state)
    assert "fc.weight" in str(err.value) and "fc.weigth" in str(err.value)

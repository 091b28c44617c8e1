"""regnet_y_400mf and shufflenet_v2_x1_0 against torchvision.models (the references nobody here
wrote): the parameter count torchvision publishes, the same state_dict names in the same order,
strict loading, equal outputs at -O0 and -O2, MACs as torch.utils.flop_counter counts them, the
zoo's one-line descriptions, and channel pruning at 0.5 giving a smaller network that runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torchvision
from torch import nn

import archgraph
from archgraph.cli import main
from archgraph.ir import Graph
from archgraph.profile.costs import node_costs
from tests.reference import count_parameters, max_relative_error, randomize_state, reference_macs

# name -> (torchvision weights enum: its meta holds the published parameter count, paper author)
MODELS = {
    "regnet_y_400mf": (torchvision.models.RegNet_Y_400MF_Weights, "Radosavovic et al. 2020"),
    "shufflenet_v2_x1_0": (torchvision.models.ShuffleNet_V2_X1_0_Weights, "Ma et al. 2018"),
}
SAMPLE_KEYS = {
    "regnet_y_400mf": [
        "trunk_output.block1.block1-0.proj.0.weight",
        "trunk_output.block3.block3-5.f.se.fc2.bias",
        "trunk_output.block4.block4-0.f.b.0.weight",
    ],
    "shufflenet_v2_x1_0": [
        "stage2.0.branch1.0.weight",
        "stage3.7.branch2.6.running_var",
        "conv5.1.num_batches_tracked",
    ],
}

Reference = tuple[nn.Module, dict[str, torch.Tensor]]


@pytest.fixture(scope="module", params=list(MODELS))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def reference(name: str) -> Iterator[Reference]:
    """The torchvision model in eval mode with random weights and statistics."""
    model = getattr(torchvision.models, name)(weights=None).eval()
    yield model, randomize_state(model, seed=1)


@pytest.fixture(scope="module")
def graph(name: str) -> Graph:
    return archgraph.load(name)


def test_parameter_count_is_torchvisions(name: str, reference: Reference, graph: Graph) -> None:
    ref, _ = reference
    published = MODELS[name][0].IMAGENET1K_V1.meta["num_params"]
    assert sum(c.params for c in node_costs(graph)) == count_parameters(ref) == published


@pytest.mark.parametrize("opt_level", [0, 2])
def test_reference_weights_load_strictly_and_outputs_match(
    name: str, reference: Reference, graph: Graph, opt_level: int
) -> None:
    ref, state = reference
    module = archgraph.compile(graph, opt_level, weights=state).eval()
    if opt_level == 0:
        assert list(module.state_dict()) == list(state)
    assert all(key in state for key in SAMPLE_KEYS[name])
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = ref(x), module(x)
    assert max_relative_error(got, expected) <= 1e-4


def test_macs_agree_with_flop_counter(name: str, reference: Reference, graph: Graph) -> None:
    ref, _ = reference
    ours = sum(c.macs for c in node_costs(graph))
    counted = reference_macs(ref, torch.randn(1, 3, 224, 224))
    assert abs(ours - counted) / counted < 0.01


def test_zoo_lists_them_with_the_paper(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(name + " ")]
    assert len(lines) == 1 and MODELS[name][1] in lines[0]


def test_prune_channels_half_gives_a_smaller_network_that_runs(name: str, graph: Graph) -> None:
    pruned, _ = archgraph.prune_channels(graph, 0.5)
    before = sum(c.params for c in node_costs(graph))
    after = sum(c.params for c in node_costs(pruned))
    assert after < 0.6 * before
    for level in (0, 2):
        module = archgraph.compile(pruned, level).eval()
        with torch.no_grad():
            y = module(torch.randn(2, 3, 224, 224))
        assert y.shape == (2, 1000) and torch.isfinite(y).all()


def test_prune_from_the_command_line_exits_0(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", name, "--set", "image_size=64", "--prune", "channels=0.5"]) == 0
    out = capsys.readouterr().out
    assert "removed" in out and "prunable channels" in out

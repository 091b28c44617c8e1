"""densenet121 and the VoVNet family in the zoo, checked against torchvision and timm (the
references nobody here wrote): the same parameter names and count, strict loading of the
reference state_dict, equal outputs, MACs as torch.utils.flop_counter counts them, the family
parameters reproducing sibling reference models, and the dense, OSA and SE blocks built from
Python matching the reference modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import timm
import torch
import torchvision
from timm.layers import EffectiveSEModule, SEModule
from torch import nn

import archgraph
from archgraph.ir import Graph
from archgraph.ir.weights import param_specs
from archgraph.profile.costs import node_costs
from tests.reference import count_parameters, max_relative_error, randomize_state, reference_macs

# ../shared/REFERENCE.md, at 224x224: parameters and GMACs
TABLE = {
    "densenet121": (7_978_856, 2.834),
    "vovnet39a": (22_600_296, 7.072),
    "ese_vovnet19b_dw": (6_543_080, 1.333),
    "ese_vovnet39b": (24_568_936, 7.074),
}
SAMPLE_KEYS = {
    "densenet121": ["features.norm0.weight", "features.denseblock3.denselayer11.norm2.running_var"],
    "vovnet39a": ["stem.0.bn.weight", "stages.2.blocks.0.conv_mid.4.bn.running_var"],
    "ese_vovnet19b_dw": ["stem.0.bn.weight", "stages.1.blocks.0.conv_mid.2.bn.num_batches_tracked"],
    "ese_vovnet39b": ["stem.0.bn.weight", "stages.2.blocks.0.conv_mid.4.bn.running_var"],
}

Reference = tuple[nn.Module, dict[str, torch.Tensor]]


def reference_model(name: str) -> nn.Module:
    if name.startswith("densenet"):
        return getattr(torchvision.models, name)(weights=None)
    return timm.create_model(name, pretrained=False)


@pytest.fixture(scope="module")
def references() -> Iterator[Callable[[str], Reference]]:
    """Reference models in eval mode with random weights and statistics (and their state_dicts),
    made once per module and shared by every test that asks for the same name."""
    cache: dict[str, Reference] = {}

    def get(name: str) -> Reference:
        if name not in cache:
            model = reference_model(name).eval()
            cache[name] = (model, randomize_state(model, seed=1))
        return cache[name]

    yield get
    cache.clear()


@pytest.fixture(scope="module", params=list(TABLE))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def reference(name: str, references: Callable[[str], Reference]) -> Reference:
    return references(name)


@pytest.fixture(scope="module")
def graph(name: str) -> Graph:
    return archgraph.load(name)


def test_parameter_count_is_exact(name: str, reference: Reference, graph: Graph) -> None:
    ref, _ = reference
    assert sum(c.params for c in node_costs(graph)) == count_parameters(ref) == TABLE[name][0]


def test_reference_weights_load_strictly_and_outputs_match(
    name: str, reference: Reference, graph: Graph
) -> None:
    ref, state = reference
    module = archgraph.compile(graph, weights=state).eval()
    assert list(module.state_dict()) == list(state)
    assert all(key in state for key in SAMPLE_KEYS[name])
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = ref(x), module(x)
    assert max_relative_error(got, expected) <= 1e-4


def test_macs_agree_with_flop_counter_and_table(
    name: str, reference: Reference, graph: Graph
) -> None:
    ref, _ = reference
    ours = sum(c.macs for c in node_costs(graph))
    counted = reference_macs(ref, torch.randn(1, 3, 224, 224))
    assert abs(ours - counted) / counted < 0.01
    gmacs = TABLE[name][1]
    assert abs(ours / 1e9 - gmacs) / gmacs < 0.01


@pytest.mark.parametrize(
    ("spec", "params", "sibling"),
    [
        ("densenet121", {"block_config": [6, 12, 32, 32]}, "densenet169"),
        ("vovnet39a", {"blocks_per_stage": [1, 1, 4, 3]}, "vovnet57a"),
        (
            "ese_vovnet39b",
            {
                "mid_channels": [64, 80, 96, 112],
                "out_channels": [112, 256, 384, 512],
                "blocks_per_stage": [1, 1, 1, 1],
                "layers_per_block": 3,
            },
            "ese_vovnet19b_slim",
        ),
        (
            "ese_vovnet19b_dw",
            {"mid_channels": [64, 80, 96, 112], "out_channels": [112, 256, 384, 512]},
            "ese_vovnet19b_slim_dw",
        ),
    ],
)
def test_family_parameters_reproduce_sibling_models(spec: str, params: dict, sibling: str) -> None:
    """A family spec with other width/depth parameters has exactly the sibling reference model's
    state_dict: the same keys, in the same order, with the same shapes."""
    graph = archgraph.load(spec, **params)
    ref_shapes = [(k, tuple(v.shape)) for k, v in reference_model(sibling).state_dict().items()]
    ours = [(k, s.shape) for k, s in param_specs(graph).items()]
    assert ours == ref_shapes


def _python_block(block: str, path: str, shape: tuple[int, ...], **args: object) -> Graph:
    b = archgraph.Builder(block)
    b.output(b.block(block, b.input("x", shape), name=path, **args))
    return b.build()


def _assert_matches_submodule(graph: Graph, ref: Reference, path: str, shape: tuple) -> None:
    """The graph takes the reference submodule's weights strictly and computes what it does."""
    model, state = ref
    weights = {k: v for k, v in state.items() if k.startswith(f"{path}.")}
    module = archgraph.compile(graph, weights=weights).eval()
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected, got = model.get_submodule(path)(x), module(x)
    assert max_relative_error(got, expected) <= 1e-4


def test_osa_block_concatenates_once_and_aggregates_every_layer(
    references: Callable[[str], Reference],
) -> None:
    """ese_vovnet19b_dw's first block (1x1 reduction 64 -> 128, three depthwise-separable layers,
    eSE) built from Python: one concat of the unreduced input and the three layer outputs, an
    aggregation conv over 64 + 3 * 128 channels, and timm's OsaBlock's function."""
    path, shape = "stages.0.blocks.0", (64, 14, 14)
    graph = _python_block(
        "osa_block",
        path,
        shape,
        mid_channels=128,
        out_channels=256,
        layers=3,
        depthwise=True,
        ese=True,
    )
    concats = [n for n in graph.nodes() if n.op == "concat"]
    assert len(concats) == 1
    layer_outputs = [f"{path}.conv_mid.{i}.bn.act" for i in range(3)]
    assert list(concats[0].inputs) == ["x", *layer_outputs]
    aggregation = graph[f"{path}.conv_concat.conv"]
    assert aggregation.inputs == (concats[0].id,)
    in_channels = 64 + sum(graph[o].type.shape[1] for o in layer_outputs)
    assert in_channels == 64 + 3 * 128
    weight = param_specs(graph)[f"{path}.conv_concat.conv.weight"]
    assert weight.shape == (256, in_channels, 1, 1)
    _assert_matches_submodule(graph, references("ese_vovnet19b_dw"), path, shape)


@pytest.mark.parametrize(
    ("model", "block", "path", "args", "shape"),
    [
        (
            "ese_vovnet39b",
            "osa_block",
            "stages.3.blocks.1",
            {"mid_channels": 224, "out_channels": 1024, "layers": 5, "residual": True, "ese": True},
            (1024, 7, 7),
        ),
        (
            "vovnet39a",
            "osa_stage",
            "stages.2",
            {"mid_channels": 192, "out_channels": 768, "blocks": 2, "layers": 5},
            (512, 14, 14),
        ),
        (
            "ese_vovnet19b_dw",
            "osa_conv",
            "stem.2",
            {"out_channels": 64, "stride": 2, "separable": True},
            (64, 17, 17),
        ),
        ("densenet121", "dense_block", "features.denseblock2", {"layers": 12}, (128, 14, 14)),
        ("densenet121", "dense_transition", "features.transition3", {}, (1024, 9, 9)),
    ],
)
def test_python_blocks_match_reference_modules(
    references: Callable[[str], Reference],
    model: str,
    block: str,
    path: str,
    args: dict,
    shape: tuple,
) -> None:
    """Each block built through the Python API, under the reference's module path, takes that
    module's weights strictly and computes what it computes (a 14x14 stage input exercises the
    pool's ceil_mode: 7x7 out, where floor mode gives 6x6)."""
    graph = _python_block(block, path, shape, **args)
    _assert_matches_submodule(graph, references(model), path, shape)


def test_dense_layer_concatenates_all_earlier_features(
    references: Callable[[str], Reference],
) -> None:
    """denselayer5 of denseblock3 fed the block input (256 channels) and four 32-channel layer
    outputs as separate inputs: one concat in front of norm1, and torchvision's function."""
    path = "features.denseblock3.denselayer5"
    shapes = [(256, 7, 7), *[(32, 7, 7)] * 4]
    b = archgraph.Builder("dense_layer")
    features = [b.input(f"x{i}", shape) for i, shape in enumerate(shapes)]
    b.output(b.block("dense_layer", *features, name=path, growth_rate=32))
    graph = b.build()
    assert graph[f"{path}.norm1"].inputs == (f"{path}.concat",)
    assert graph[f"{path}.concat"].inputs == tuple(f"x{i}" for i in range(5))
    model, state = references("densenet121")
    weights = {k: v for k, v in state.items() if k.startswith(f"{path}.")}
    module = archgraph.compile(graph, weights=weights).eval()
    gen = torch.Generator().manual_seed(6)
    xs = [torch.randn(2, *shape, generator=gen) for shape in shapes]
    with torch.no_grad():
        expected, got = model.get_submodule(path)(xs), module(*xs)
    assert max_relative_error(got, expected) <= 1e-4


@pytest.mark.parametrize(
    ("block", "make_reference", "args"),
    [
        ("effective_se", lambda: EffectiveSEModule(96), {}),
        ("squeeze_excite", lambda: SEModule(96), {}),
        (
            "squeeze_excite",
            lambda: SEModule(96, rd_ratio=0.25, gate_layer="hard_sigmoid"),
            {"rd_ratio": 0.25, "gate": "hardsigmoid"},
        ),
    ],
)
def test_se_blocks_match_timm(
    block: str, make_reference: Callable[[], nn.Module], args: dict
) -> None:
    ref = make_reference().eval()
    state = randomize_state(ref, seed=4)
    graph = _python_block(block, "attn", (96, 5, 5), **args)
    module = archgraph.compile(graph, weights={f"attn.{k}": v for k, v in state.items()}).eval()
    x = torch.randn(2, 96, 5, 5, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert max_relative_error(module(x), ref(x)) <= 1e-4

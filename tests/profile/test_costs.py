"""The cost model against references nobody here wrote: torch.utils.flop_counter on every zoo
spec's compiled module, the figures of ../shared/REFERENCE.md, and formulas computed by hand
(attention matmuls, VoVNet's memory access cost, bytes moved). Ops a cost rule cannot count are
listed as uncounted, never summed as zero."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from rich.console import Console
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

import archgraph
from archgraph import Builder
from archgraph.ir.types import TensorType
from archgraph.ops.registry import Cost, Emitter, OpDef, register_op
from archgraph.profile import profile
from archgraph.profile.costs import node_costs, totals, uncounted
from archgraph.profile.measure import example_inputs

aten = torch.ops.aten

# ../shared/REFERENCE.md: parameters and GMACs (flop_counter / 2 with attention matmuls counted)
REFERENCE_TABLE = {
    "resnet18": (11_689_512, 1.814),
    "resnet50": (25_557_032, 4.089),
    "densenet121": (7_978_856, 2.834),
    "vovnet39a": (22_600_296, 7.072),
    "ese_vovnet19b_dw": (6_543_080, 1.333),
    "ese_vovnet39b": (24_568_936, 7.074),
    "inception_resnet_v2": (55_843_464, 13.156),
    "vit_small_patch16_224": (22_050_664, 4.599),
    "pvt_v2_b0": (3_666_760, 0.566),
}
# the same counter without attention matmuls (REFERENCE.md)
WITHOUT_ATTENTION_GMACS = {"vit_small_patch16_224": 4.241, "pvt_v2_b0": 0.528}


def _cpu_sdpa(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    """torch's own SDPA formula, for the CPU kernel the counter has no entry for (REFERENCE.md:
    the counter misses scaled-dot-product attention on the CPU)."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def counter_flops(module: torch.nn.Module, inputs: list[torch.Tensor]) -> int:
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa}
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        module(*inputs)
    return counter.get_total_flops()


@pytest.mark.parametrize("name", archgraph.zoo())
def test_zoo_macs_and_matmul_flops_agree_with_flop_counter(name: str) -> None:
    graph = archgraph.load(name)
    module = archgraph.compile(graph).eval()
    counted = counter_flops(module, example_inputs(graph))
    costs = node_costs(graph)
    assert uncounted(costs) == []
    total = totals(costs)
    assert abs(total.macs - counted / 2) / (counted / 2) < 0.01
    matmul_flops = sum(c.matmul_flops for c in costs)
    assert matmul_flops == 2 * total.macs and abs(matmul_flops - counted) / counted < 0.01
    assert all(c.other_flops >= 0 for c in costs)  # FLOPs = matmul FLOPs + other FLOPs, never less


@pytest.mark.parametrize("name", sorted(set(REFERENCE_TABLE) & set(archgraph.zoo())))
def test_zoo_params_and_macs_match_reference_table(name: str) -> None:
    total = totals(node_costs(archgraph.load(name)))
    params, gmacs = REFERENCE_TABLE[name]
    assert total.params == params
    assert abs(total.macs / 1e9 - gmacs) / gmacs < 0.01


@pytest.mark.parametrize("name", sorted(set(WITHOUT_ATTENTION_GMACS) & set(archgraph.zoo())))
def test_attention_matmuls_are_counted(name: str) -> None:
    """The MACs of q k^T and attn v, by hand from the attention nodes' types, are what separates
    the reference count with attention from the one without."""
    graph = archgraph.load(name)
    attention_macs = 0
    for node in graph.nodes():
        if node.op == "mhsa":  # tokens [n, l, d]: q k^T and attn v are n*l*l*d MACs each
            n, length, d = graph[node.inputs[0]].type.shape
            attention_macs += 2 * n * length * length * d
        elif node.op == "sr_attention":  # [n, h, w, c]; keys reduced by an r x r stride-r conv
            n, h, w, c = graph[node.inputs[0]].type.shape
            r = node.args["sr_ratio"]
            attention_macs += 2 * n * (h * w) * ((h // r) * (w // r)) * c
    assert attention_macs > 0
    gap = REFERENCE_TABLE[name][1] - WITHOUT_ATTENTION_GMACS[name]
    assert abs(attention_macs / 1e9 - gap) <= 0.0015  # the table's figures carry 3 decimals
    total = totals(node_costs(graph)).macs
    assert abs(total / 1e9 - REFERENCE_TABLE[name][1]) / REFERENCE_TABLE[name][1] < 0.01


def test_conv_memory_access_cost_and_bytes_by_hand() -> None:
    b = Builder("mac")
    x = b.input("x", [32, 28, 28])
    y = b.node("conv2d", x, name="conv3", out_channels=64, kernel_size=3, padding=1, bias=False)
    y = b.node("conv2d", y, name="dw", out_channels=64, kernel_size=3, padding=1, groups=64)
    b.output(b.node("relu", y, name="act"))
    costs = {c.id: c for c in node_costs(b.build())}
    # VoVNet / ShuffleNet V2: MAC = h*w*(c_in + c_out) + k^2*c_in*c_out (elements)
    assert costs["conv3"].conv_mac == 28 * 28 * (32 + 64) + 9 * 32 * 64
    assert costs["dw"].conv_mac == 28 * 28 * (64 + 64) + 9 * 64  # depthwise: k^2 * c_out weights
    assert costs["act"].conv_mac is None
    # bytes read = input activation + weights (+ bias); written = output; float32
    assert costs["conv3"].bytes_read == 4 * (32 * 28 * 28 + 64 * 32 * 9)
    assert costs["dw"].bytes_read == 4 * (64 * 28 * 28 + 64 * 9 + 64)
    assert costs["dw"].bytes_written == 4 * 64 * 28 * 28
    assert costs["act"].memory_access_bytes == 2 * 4 * 64 * 28 * 28
    assert (
        costs["conv3"].macs == 28 * 28 * 64 * 32 * 9
        and costs["conv3"].flops == 2 * costs["conv3"].macs
    )


def _double(emit: Emitter, args: dict[str, Any], xs: list[Any]) -> Any:
    return emit.function(torch.mul, (xs[0], 2.0))


def _same(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return ins[0]


def _cannot(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost | None:
    return None


def _raises(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    raise NotImplementedError("data-dependent")


@pytest.fixture(scope="module")
def plugin_ops() -> Iterator[None]:
    """Three plugin ops a cost model cannot count: a rule returning None, a rule raising
    NotImplementedError, and no rule at all."""
    register_op(
        OpDef("test_none_cost", "x*2", infer=_same, cost=_cannot, lower=_double), replace=True
    )
    register_op(
        OpDef("test_raising_cost", "x*2", infer=_same, cost=_raises, lower=_double), replace=True
    )
    register_op(OpDef("test_no_cost", "x*2", infer=_same, lower=_double), replace=True)
    yield


def test_uncounted_ops_are_listed_never_zero(plugin_ops: None, tmp_path: Any) -> None:
    b = Builder("plugins")
    x = b.input("x", [8, 16, 16])
    y = b.node("conv2d", x, name="conv", out_channels=8, kernel_size=3, padding=1)
    y = b.node("test_none_cost", y, name="a")
    y = b.node("test_raising_cost", y, name="b")
    b.output(b.node("test_no_cost", y, name="c"))
    graph = b.build()
    costs = {c.id: c for c in node_costs(graph)}
    assert [c.id for c in uncounted(list(costs.values()))] == ["a", "b", "c"]
    for node_id in "abc":
        assert costs[node_id].macs is None and costs[node_id].flops is None
    assert "data-dependent" in costs["b"].reason and "declares no cost rule" in costs["c"].reason
    with pytest.raises(TypeError):  # summing them as numbers fails loudly instead of adding zero
        sum(c.macs for c in costs.values())

    result = profile(graph, warmup=1, repeats=2)
    data = result.to_json()
    assert [u["id"] for u in data["uncounted"]] == ["a", "b", "c"]
    assert data["macs"] == costs["conv"].macs  # the counted part, with the rest listed
    rows = {n["id"]: n for n in data["nodes"]}
    assert rows["a"]["macs"] is None and rows["a"]["latency_ms"] is not None  # still timed
    console = Console(width=200, record=True)
    result.print_table(console)
    text = console.export_text()
    assert "NOT COUNTED (3 nodes" in text and "declares no cost rule" in text
    a_row = next(line for line in text.splitlines() if line.startswith("│ a "))
    assert "?" in a_row
    json.loads(result.json_text())  # None becomes null, and the document stays valid JSON

"""The mixture-of-experts MLP (`moe_mlp`) against a plain-PyTorch reference written here, token
by token from the GShard / Switch Transformer definitions (softmax gate, top-k, capacity filled
first choices first, overflow dropped, load-balancing loss E * sum_e f_e * P_e), and the MoE zoo
specs (WideNet-B, the small MoE MLP): parameters and MACs by hand, active vs total params,
pruning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import archgraph
from archgraph import Builder
from archgraph.cli import main
from archgraph.ops.moe import collect_aux_loss
from archgraph.profile.costs import node_costs, totals
from archgraph.profile.report import summary_lines


def reference_moe(
    x: torch.Tensor, sd: dict[str, torch.Tensor], k: int, cf: float
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(output, aux loss, dropped choices): loops over samples, choice ranks and tokens."""
    wg = sd["moe.gate.weight"]
    w1, b1 = sd["moe.experts.fc1.weight"], sd["moe.experts.fc1.bias"]
    w2, b2 = sd["moe.experts.fc2.weight"], sd["moe.experts.fc2.bias"]
    n, length, d = x.shape
    e = wg.shape[0]
    cap = math.ceil(k * length * cf / e)
    out = torch.zeros_like(x)
    aux = torch.zeros(())
    dropped = 0
    for s in range(n):
        probs = torch.softmax(x[s] @ wg.t(), dim=-1)  # [L, E]
        top = [torch.topk(probs[t], k) for t in range(length)]
        fill = [0] * e
        for rank in range(k):  # every token's first choice, then every second choice
            for t in range(length):
                gate, expert = top[t].values[rank], int(top[t].indices[rank])
                if fill[expert] >= cap:
                    dropped += 1
                    continue
                fill[expert] += 1
                h = F.gelu(x[s, t] @ w1[expert].t() + b1[expert])
                out[s, t] += gate * (h @ w2[expert].t() + b2[expert])
        first = torch.tensor([int(top[t].indices[0]) for t in range(length)])
        f = torch.bincount(first, minlength=e).float() / length
        aux = aux + e * (f * probs.mean(dim=0)).sum()
    return out, aux / n, dropped


def _moe_graph(tokens: int, dim: int, experts: int, k: int, cf: float) -> archgraph.Graph:
    b = Builder("moe", batch=3)
    x = b.input("x", [tokens, dim])
    b.output(
        b.node(
            "moe_mlp", x, name="moe", num_experts=experts, hidden=24, top_k=k, capacity_factor=cf
        )
    )
    return b.build()


@pytest.mark.parametrize(("k", "cf"), [(1, 1.0), (2, 0.5), (2, 1.25), (3, 0.75)])
def test_moe_equals_reference_routing_capacity_and_aux_loss(k: int, cf: float) -> None:
    graph = _moe_graph(tokens=12, dim=16, experts=4, k=k, cf=cf)
    module = archgraph.compile(graph, seed=3).eval()
    x = torch.randn(3, 12, 16, generator=torch.Generator().manual_seed(k))
    with torch.no_grad():
        y = module(x)
    aux = collect_aux_loss(module)
    ref, ref_aux, dropped = reference_moe(x, module.state_dict(), k, cf)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(aux, ref_aux)
    if cf < 1.0:
        assert dropped > 0  # the capacity really bit
    assert collect_aux_loss(module) is None  # collected once, then reset


def test_tokens_over_capacity_get_nothing_and_pass_through_the_residual() -> None:
    b = Builder("moe_res")
    x = b.input("x", [8, 4])
    y = b.node("moe_mlp", x, name="moe", num_experts=2, hidden=8, top_k=1, capacity_factor=0.5)
    b.output(b.node("add", x, y, name="res"))
    sd = archgraph.compile(b.build()).state_dict()
    sd["moe.gate.weight"] = torch.tensor([[10.0, 0, 0, 0], [-10.0, 0, 0, 0]])
    module = archgraph.compile(b.build(), weights=sd).eval()
    x = torch.zeros(1, 8, 4)
    x[..., 0] = 1.0  # every token prefers expert 0, which has ceil(8 * 0.5 / 2) = 2 slots
    with torch.no_grad():
        out = module(x)
    assert not torch.equal(out[0, :2], x[0, :2])  # the first two tokens got expert 0
    torch.testing.assert_close(out[0, 2:], x[0, 2:], rtol=0, atol=0)  # the rest passed through


def test_aux_loss_is_differentiable_and_sums_over_shared_calls() -> None:
    module = archgraph.compile(archgraph.load("widenet_b", image_size=32, depth=3)).train()
    x = torch.randn(2, 3, 32, 32)
    module(x).sum().backward(retain_graph=True)
    moe = module.get_submodule("blocks.0.moe")
    calls = []
    handle = moe.register_forward_hook(lambda m, i, o: calls.append(m.aux_loss.detach().clone()))
    module.zero_grad()
    module(x)
    handle.remove()
    assert len(calls) == 3  # one shared layer, called at every depth
    aux = collect_aux_loss(module)
    assert aux is not None and aux.requires_grad
    torch.testing.assert_close(aux.detach(), calls[-1])
    aux.backward()
    grad = moe.gate.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_widenet_b_params_by_hand_and_shared_once() -> None:
    graph = archgraph.load("widenet_b")
    d, h, e, classes = 768, 3072, 4, 1000
    patch = 3 * 16 * 16 * d + d
    tokens = d + 197 * d  # cls_token, pos_embed
    attn = 3 * d * d + 3 * d + d * d + d
    moe = e * d + e * (2 * d * h + h + d)
    norms = 12 * 2 * 2 * d + 2 * d
    expected = patch + tokens + attn + moe + norms + d * classes + classes
    total = totals(node_costs(graph))
    assert total.params == expected
    module = archgraph.compile(graph)
    assert sum(p.numel() for p in module.parameters()) == expected
    keys = module.state_dict().keys()
    assert "blocks.0.attn.qkv.weight" in keys and "blocks.0.moe.gate.weight" in keys
    assert not any(k.startswith(("blocks.5.attn", "blocks.5.moe")) for k in keys)
    assert "blocks.5.norm1.weight" in keys and "blocks.5.norm2.weight" in keys
    # active: the gate and k = 2 of the 4 experts
    assert total.active_params == expected - (e - 2) * (2 * d * h + h + d)


def test_moe_macs_per_token_count_the_capacity_slots_of_the_top_k_experts() -> None:
    graph = archgraph.load("moe_mlp_small")
    cost = next(c for c in node_costs(graph) if c.op == "moe_mlp")
    length, d, e, h, k = 16, 64, 8, 128, 2
    slots = e * math.ceil(k * length * 1.0 / e)  # = k * L: capacity factor 1
    assert slots == k * length
    assert cost.macs / length == d * e + k * 2 * d * h  # gate + k experts per token
    assert cost.params == e * d + e * (2 * d * h + h + d)
    assert cost.active_params == e * d + k * (2 * d * h + h + d)


def test_prune_channels_refuses_widenet_naming_a_shared_node(capsys) -> None:
    args = ["compile", "widenet_b", "--set", "image_size=32", "--prune", "channels=0.5"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "widenet_b.yaml:" in err and "blocks.1.attn" in err and "blocks.0.attn" in err
    assert "Traceback" not in err


def test_prune_channels_prunes_the_small_moe_and_it_runs(tmp_path, capsys) -> None:
    spec = tmp_path / "pruned.yaml"
    assert (
        main(["compile", "moe_mlp_small", "--prune", "channels=0.5", "--emit-spec", str(spec)]) == 0
    )
    assert "removed 64 of 128 prunable channels" in capsys.readouterr().out
    pruned = archgraph.load(spec)
    assert pruned["fc"].type.shape[-1] == 64
    out = archgraph.compile(pruned).eval()(torch.randn(1, 16, 64))
    assert out.shape == (1, 10) and torch.isfinite(out).all()


def test_profile_reports_active_and_total_params() -> None:
    from archgraph.profile import profile

    graph = archgraph.load("moe_mlp_small")
    data = profile(graph, measure=False).to_json()
    d, e, h, k = 64, 8, 128, 2
    assert data["active_params"] == data["params"] - (e - k) * (2 * d * h + h + d)


def test_macs_per_token_count_the_top_k_experts_not_the_capacity_slack() -> None:
    """WideNet-B at 224 with capacity factor 1.2: the experts run E * C slots per sample (more
    than k * L), but a token's own work is the gate, its attention and its top-k experts."""
    from archgraph.profile import profile

    graph = archgraph.load("widenet_b")
    d, e, h, k, length, depth = 768, 4, 3072, 2, 197, 12
    moe = next(c for c in node_costs(graph) if c.op == "moe_mlp")
    assert moe.macs > length * (d * e + k * 2 * d * h)  # the capacity slack is in `macs`
    assert moe.macs_per_token == d * e + k * 2 * d * h
    attention = 4 * d * d + 2 * length * d  # qkv + proj, then q k^T and attn v per token
    expected = depth * (attention + d * e + k * 2 * d * h)
    data = profile(graph, measure=False).to_json()
    assert data["macs_per_token"] == expected
    assert "MACs per token" in "\n".join(summary_lines(data))


def test_macs_per_token_of_a_dense_vit_by_hand() -> None:
    """ViT-S/16: 12 blocks of qkv (3 d^2), q k^T and attn v (2 L d), proj (d^2), MLP (8 d^2) per
    token; patch embedding (a conv on the image) and the head (on the class token) are not
    token layers."""
    d, length = 384, 197
    total = totals(node_costs(archgraph.load("vit_small_patch16_224")))
    assert total.macs_per_token == 12 * (12 * d * d + 2 * length * d)
    assert totals(node_costs(archgraph.load("resnet50"))).macs_per_token is None

"""AutoInt (Song et al. 2019) in the zoo. There is no torchvision/timm reference, so the checks
are against torch itself and hand formulas: an interacting layer equals torch's
nn.MultiheadAttention configured to the paper's form and a per-head loop of plain tensor ops, the
embeddings equal their formulas, the whole model equals a forward pass written here, the
parameter count equals the paper's formula, and the analytic MACs equal torch's flop counter.

The paper scores fields by a plain inner product (no 1/sqrt(d') scaling): that is the default of
the `interacting` op and of the spec, and what the references below compute unless told to scale.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archgraph
from archgraph.builder import Builder
from archgraph.errors import SpecError
from archgraph.ir.weights import count_params
from archgraph.profile.costs import node_costs, totals

GEN = torch.Generator().manual_seed(0)


def _random_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """Load random normal values with std 1/sqrt(last dim) (PyTorch's scale for a linear weight
    [out, in]) into every tensor of `module`; return its state_dict. Activations stay O(1), so the
    attention scores neither vanish nor saturate and every term of the layer shows."""
    state = {
        k: torch.randn(v.shape, generator=GEN) / math.sqrt(v.shape[-1])
        for k, v in module.state_dict().items()
    }
    module.load_state_dict(state)
    return state


def _interacting_module(fields: int, dim: int, **args: object) -> nn.Module:
    b = Builder("layer")
    x = b.input("x", [fields, dim])
    b.output(b.node("interacting", x, name="layer", **args))
    return archgraph.compile(b.build()).eval()


def _per_head_reference(
    x: torch.Tensor, state: dict[str, torch.Tensor], prefix: str, heads: int, scaling: bool = False
) -> torch.Tensor:
    """Eqs. 5-8 of the paper, head by head: psi = <W_Q e_m, W_K e_k>, softmax over k, sum of
    W_V e_k, heads concatenated, + W_Res e_m, ReLU."""
    wq, wk, wv, wres = (
        state[f"{prefix}.{p}.weight"] for p in ("query", "key", "value", "residual")
    )
    d_head = wq.shape[0] // heads
    outs = []
    for h in range(heads):
        rows = slice(h * d_head, (h + 1) * d_head)
        q, k, v = x @ wq[rows].T, x @ wk[rows].T, x @ wv[rows].T
        scores = torch.einsum("nmd,nkd->nmk", q, k)
        if scaling:
            scores = scores / math.sqrt(d_head)
        outs.append(torch.einsum("nmk,nkd->nmd", scores.softmax(dim=-1), v))
    return torch.relu(torch.cat(outs, dim=-1) + x @ wres.T)


@pytest.mark.parametrize("scaling", [False, True])
def test_interacting_layer_equals_torch_multihead_attention(scaling: bool) -> None:
    # nn.MultiheadAttention needs input width = heads * d' (the paper's layers 2 and 3: 64 = 2 x 32).
    # It always scales scores by 1/sqrt(d'); the paper's unscaled form is MHA with W_Q
    # multiplied by sqrt(d'). Its output projection is set to the identity: AutoInt has none.
    fields, heads, d_head = 39, 2, 32
    dim = heads * d_head
    module = _interacting_module(fields, dim, num_heads=heads, head_dim=d_head, scaling=scaling)
    state = _random_weights(module)
    mha = nn.MultiheadAttention(dim, heads, bias=False, batch_first=True).eval()
    q_gain = 1.0 if scaling else math.sqrt(d_head)
    with torch.no_grad():
        mha.in_proj_weight.copy_(
            torch.cat(
                [
                    state["layer.query.weight"] * q_gain,
                    state["layer.key.weight"],
                    state["layer.value.weight"],
                ]
            )
        )
        mha.out_proj.weight.copy_(torch.eye(dim))
    x = torch.randn(4, fields, dim, generator=GEN)
    with torch.no_grad():
        attended, _ = mha(x, x, x, need_weights=False)
        expected = torch.relu(attended + x @ state["layer.residual.weight"].T)
        got = module(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scaling", [False, True])
def test_interacting_layer_equals_the_papers_equations_head_by_head(scaling: bool) -> None:
    # The first layer of the paper's model: d = 16 in, 2 heads of d' = 32 out.
    module = _interacting_module(39, 16, num_heads=2, head_dim=32, scaling=scaling)
    state = _random_weights(module)
    x = torch.randn(5, 39, 16, generator=GEN)
    with torch.no_grad():
        got = module(x)
    assert got.shape == (5, 39, 64)
    expected = _per_head_reference(x, state, "layer", heads=2, scaling=scaling)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_embeddings_equal_their_formulas() -> None:
    b = Builder("embeddings")
    numbers = b.input("numbers", [3])
    ids = b.input("ids", [4], dtype="int64")
    outs = [
        b.node("numeric_embedding", numbers, name="numeric", embedding_dim=5),
        b.node("field_embedding", ids, name="fields", vocab_sizes=[7, 3, 11, 2], embedding_dim=5),
        b.node("embedding", ids, name="shared", num_embeddings=11, embedding_dim=5),
    ]
    b.output(*outs)
    module = archgraph.compile(b.build()).eval()
    state = _random_weights(module)
    x = torch.randn(6, 3, generator=GEN)
    idx = torch.stack([torch.randint(0, v, (6,), generator=GEN) for v in (7, 3, 11, 2)], dim=1)
    with torch.no_grad():
        numeric, fields, shared = module(x, idx)
    # e_i = x_i * v_i
    torch.testing.assert_close(numeric, x[:, :, None] * state["numeric.weight"][None])
    for i in range(4):  # field i is looked up in its own table
        torch.testing.assert_close(
            fields[:, i], F.embedding(idx[:, i], state[f"fields.tables.{i}.weight"])
        )
    torch.testing.assert_close(shared, F.embedding(idx, state["shared.weight"]))


def test_embedding_ops_reject_wrong_inputs() -> None:
    b = Builder("bad")
    floats = b.input("floats", [4])
    ids = b.input("ids", [4], dtype="int64")
    with pytest.raises(SpecError, match="integer indices"):
        b.node("field_embedding", floats, name="a", vocab_sizes=[5] * 4, embedding_dim=8)
    with pytest.raises(SpecError, match="one vocabulary size per field") as err:
        b.node("field_embedding", ids, name="b", vocab_sizes=[5] * 3, embedding_dim=8)
    assert err.value.node == "b"
    with pytest.raises(SpecError, match="floating-point"):
        b.node("numeric_embedding", ids, name="c", embedding_dim=8)


def _autoint_reference(
    numerical: torch.Tensor,
    categorical: torch.Tensor,
    state: dict[str, torch.Tensor],
    layers: int,
    heads: int,
) -> torch.Tensor:
    """The whole model, written out: field embeddings (numerical first), interacting layers,
    flatten, linear: the logit."""
    numeric = numerical[:, :, None] * state["embed.numerical.weight"][None]
    tables = [state[f"embed.categorical.tables.{i}.weight"] for i in range(categorical.shape[1])]
    categ = torch.stack([F.embedding(categorical[:, i], t) for i, t in enumerate(tables)], dim=1)
    x = torch.cat([numeric, categ], dim=1)
    for i in range(layers):
        x = _per_head_reference(x, state, f"int_layers.{i}", heads=heads)
    return F.linear(x.flatten(1), state["fc.weight"], state["fc.bias"])


def _criteo_like_inputs(batch: int, vocab_sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    numerical = torch.randn(batch, 13, generator=GEN)
    categorical = torch.stack(
        [torch.randint(0, v, (batch,), generator=GEN) for v in vocab_sizes], dim=1
    )
    assert categorical.dtype == torch.int64
    return numerical, categorical


def test_autoint_runs_on_int64_and_float_inputs_and_equals_its_forward_written_out() -> None:
    logits = archgraph.compile(archgraph.load("autoint", sigmoid=False)).eval()
    state = _random_weights(logits)
    numerical, categorical = _criteo_like_inputs(8, [1000] * 26)
    with torch.no_grad():
        logit = logits(numerical, categorical)
    assert logit.shape == (8, 1)
    expected = _autoint_reference(numerical, categorical, state, layers=3, heads=2)
    torch.testing.assert_close(logit, expected, rtol=1e-5, atol=1e-6)
    # the zoo spec as it is: the click probability, sigmoid of the same logit
    probs = archgraph.compile(archgraph.load("autoint"), weights=state).eval()
    with torch.no_grad():
        prob = probs(numerical, categorical)
    assert prob.shape == (8, 1)
    torch.testing.assert_close(prob, torch.sigmoid(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        {},  # the paper's setting: d = 16, 3 layers, 2 heads of d' = 32, 1000 rows per field
        {
            "vocab_sizes": list(range(10, 36)),
            "embed_dim": 8,
            "num_heads": 3,
            "head_dim": 4,
            "num_layers": 2,
        },
    ],
)
def test_parameter_count_equals_the_hand_formula(params: dict) -> None:
    graph = archgraph.load("autoint", **params)
    vocab = params.get("vocab_sizes", [1000] * 26)
    d = params.get("embed_dim", 16)
    inner = params.get("num_heads", 2) * params.get("head_dim", 32)
    layers = params.get("num_layers", 3)
    tables = sum(v * d for v in vocab)
    numeric_vectors = 13 * d
    # W_Query, W_Key, W_Value, W_Res: d -> H*d' in the first layer, H*d' -> H*d' after it
    interacting = 4 * d * inner + (layers - 1) * 4 * inner * inner
    final_linear = 39 * inner + 1
    expected = tables + numeric_vectors + interacting + final_linear
    module = archgraph.compile(graph)
    assert count_params(graph) == sum(p.numel() for p in module.parameters()) == expected
    if not params:
        assert expected == 416_000 + 208 + 4_096 + 2 * 16_384 + 2_497


def test_macs_equal_torch_flop_counter() -> None:
    graph = archgraph.load("autoint", batch=4)
    module = archgraph.compile(graph).eval()
    numerical, categorical = _criteo_like_inputs(4, [1000] * 26)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(numerical, categorical)
    assert totals(node_costs(graph)).macs == counter.get_total_flops() // 2

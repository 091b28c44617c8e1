"""EMOv2's i2RMB and the emo2_small zoo spec. There is no timm/torchvision EMO, so the attention
is held to EMOv2's EW-MHSA as its authors define it, written out here window by window with
plain slicing: a close window is a Wh x Ww block of the map, a remote window the tokens
x[..., i::H/Wh, j::W/Ww] (EMOv2's 'b c (h1 n1) (w1 n2) -> (b n1 n2) c h1 w1'); q, k from a 1x1
conv of x split as (qk, heads, dim_head), v split as (heads, dim_head); both maps summed; a map
that is not whole windows zero-padded after its last row and column first and the result cropped
(EMOv2's F.pad and x[:, :, :H, :W]). The block is held to the i2RMB formula over that, with
EMOv2's layer scale on the projection, the spec compiles at every level, its heads are SDPA at
-O2, and pruning is exact on zeroed channels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import archgraph
from archgraph.cli import main
from archgraph.errors import SpecError
from archgraph.ir.weights import bind_weights
from archgraph.passes.prune import prune_channels
from archgraph.passes.sdpa import sdpa
from tests.prune.helpers import example_input, random_graph, run, zero_units
from tests.reference import max_relative_error


def _attend_windows(
    qk: torch.Tensor, v: torch.Tensor, heads: int, windows: list[tuple[slice, slice]]
) -> torch.Tensor:
    """Attention inside each window (a pair of slices of H and W), written back in place."""
    n, c2, _, _ = qk.shape
    out = torch.zeros_like(v)
    for rows, cols in windows:
        q, k = qk[:, :, rows, cols].flatten(2).view(n, 2, heads, c2 // (2 * heads), -1).unbind(1)
        val = v[:, :, rows, cols]
        vals = val.flatten(2).view(n, heads, -1, q.shape[-1])
        attn = (q.transpose(-2, -1) @ k * (c2 // (2 * heads)) ** -0.5).softmax(dim=-1)
        res = (vals @ attn.transpose(-2, -1)).reshape(n, -1, *val.shape[2:])
        out[:, :, rows, cols] = res
    return out


def emo_attention(
    x: torch.Tensor, v: torch.Tensor, w: torch.Tensor, heads: int, window: int, span: bool
) -> torch.Tensor:
    h0, w0 = x.shape[-2:]
    pad = (0, (window - w0 % window) % window, 0, (window - h0 % window) % window)
    x, v = F.pad(x, pad), F.pad(v, pad)
    qk = F.conv2d(x, w)
    _, _, h, wd = x.shape
    n1, n2 = h // window, wd // window
    close = [
        (slice(i * window, (i + 1) * window), slice(j * window, (j + 1) * window))
        for i in range(n1)
        for j in range(n2)
    ]
    out = _attend_windows(qk, v, heads, close)
    if span:
        remote = [(slice(i, None, n1), slice(j, None, n2)) for i in range(n1) for j in range(n2)]
        out = out + _attend_windows(qk, v, heads, remote)
    return out[:, :, :h0, :w0]


def _perturbed(key: str, t: torch.Tensor) -> torch.Tensor:
    """Random offsets on every float tensor (batchnorm statistics too), variances positive."""
    if not t.is_floating_point():
        return t
    fresh = t + 0.1 * torch.randn_like(t)
    return fresh.abs() + 0.5 if key.endswith("running_var") else fresh


def _graph(shapes: list[tuple[int, ...]], build) -> tuple[torch.nn.Module, dict]:
    b = archgraph.Builder("t")
    xs = [b.input(f"x{i}", s) for i, s in enumerate(shapes)]
    b.output(build(b, *xs))
    g = b.build()
    bind_weights(g, seed=0)
    assert g.weights is not None
    weights = {k: _perturbed(k, v) for k, v in g.weights.items()}
    return archgraph.compile(g, weights=weights).eval(), weights


@pytest.mark.parametrize("size", [(14, 21), (12, 17)])  # whole windows, and padded ones
@pytest.mark.parametrize("span", [False, True])
def test_attention_is_emos_close_and_remote_windows(span: bool, size: tuple[int, int]) -> None:
    def build(b, x, v):
        return b.node(
            "inverted_window_attention",
            x,
            v,
            name="attn",
            num_heads=2,
            window_size=7,
            qk_bias=False,
            span=span,
        )

    module, w = _graph([(32, *size), (64, *size)], build)
    gen = torch.Generator().manual_seed(1)
    x, v = torch.randn(2, 32, *size, generator=gen), torch.randn(2, 64, *size, generator=gen)
    expected = emo_attention(x, v, w["attn.qk.weight"], 2, 7, span)
    with torch.no_grad():
        assert max_relative_error(module(x, v), expected) <= 1e-5


@pytest.mark.parametrize("size", [14, 10])  # whole 7x7 windows, and padded ones
def test_i2rmb_is_the_inverted_residual_over_the_attention(size: int) -> None:
    module, w = _graph([(32, size, size)], lambda b, x: b.block("i2rmb", x, name="m", num_heads=2))
    x = torch.randn(2, 32, size, size, generator=torch.Generator().manual_seed(2))
    assert w["m.ls.gamma"].shape == (32, 1, 1)  # EMOv2's LayerScale2D, one gamma per channel

    def bn(t: torch.Tensor, key: str) -> torch.Tensor:
        return F.batch_norm(
            t,
            w[f"{key}.running_mean"],
            w[f"{key}.running_var"],
            w[f"{key}.weight"],
            w[f"{key}.bias"],
        )

    y = bn(x, "m.norm")
    v = F.silu(F.conv2d(y, w["m.v.conv.weight"]))
    v = emo_attention(y, v, w["m.attn.qk.weight"], 2, 7, span=True)
    z = F.silu(
        bn(F.conv2d(v, w["m.conv_local.conv.weight"], padding=1, groups=128), "m.conv_local.bn")
    )
    expected = x + w["m.ls.gamma"] * F.conv2d(v + z, w["m.proj.weight"])
    with torch.no_grad():
        assert max_relative_error(module(x), expected) <= 1e-5


def test_emo2_small_at_every_level_with_sdpa_heads() -> None:
    g = archgraph.load("emo2_small")
    attn = [n.id for n in g.nodes() if n.op == "inverted_window_attention"]
    assert len(attn) == 4  # the attending blocks of the last two stages
    swapped, _ = sdpa(g)
    assert [n.id for n in swapped.nodes() if n.op == "inverted_window_attention_sdpa"] == attn
    bind_weights(g, seed=1)
    x = torch.randn(1, 3, 224, 224)
    outs = []
    for level in (0, 1, 2):
        with torch.no_grad():
            outs.append(archgraph.compile(g, level).eval()(x))
    assert all(max_relative_error(o, outs[0]) <= 1e-4 for o in outs[1:])


def test_pruning_is_exact_on_zeroed_channels() -> None:
    g = random_graph("emo2_small", batch=1)
    x = example_input(g)
    zeroed = zero_units(g, 0.5)
    assert zeroed["channels"]
    reference = run(g, x)
    pruned, report = prune_channels(g, 0.5)
    assert report.after.macs < report.before.macs
    assert max_relative_error(run(pruned, x), reference) <= 1e-4


def test_cli_prunes_emo2_small_and_the_result_runs(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "emo_pruned.yaml"
    args = ["compile", "emo2_small", "--prune", "channels=0.5"]
    assert main([*args, "--emit-spec", str(spec)]) == 0
    assert "MACs" in capsys.readouterr().out
    module = archgraph.compile(archgraph.load(spec)).eval()
    with torch.no_grad():
        y = module(torch.randn(1, 3, 224, 224))
    assert y.shape == (1, 1000) and torch.isfinite(y).all()


@pytest.mark.parametrize(
    ("shapes", "args", "message"),
    [
        ([(32, 14, 14), (64, 7, 7)], {"num_heads": 2}, "of one batch and size"),
        ([(32, 14, 14), (64, 14, 14)], {"num_heads": 3}, "num_heads=3"),
        ([(32, 12, 12), (64, 12, 12)], {"num_heads": 2, "window_size": 0}, "at least one token"),
    ],
)
def test_attention_rejects_bad_inputs_with_located_errors(
    shapes: list, args: dict, message: str
) -> None:
    b = archgraph.Builder("bad")
    xs = [b.input(f"x{i}", s) for i, s in enumerate(shapes)]
    with pytest.raises(SpecError) as info:
        b.node("inverted_window_attention", *xs, name="bad", **args)
    assert info.value.node == "bad" and message in str(info.value)

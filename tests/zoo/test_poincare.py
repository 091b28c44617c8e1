"""Poincaré-ball ops against their closed forms, written here independently (float64, one
vector at a time), points staying inside the ball (norm < 1/sqrt(c)) even for inputs far too
large, finite gradients, and the poincare_resnet zoo spec (pruning refused at a named node)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import fx

import archgraph
from archgraph import Builder
from archgraph.cli import main


def _single(op: str, shape: list[int], batch: int = 4, n_inputs: int = 1, **args):
    b = Builder(op, batch=batch)
    xs = [b.input(f"x{i}", shape) for i in range(n_inputs)]
    b.output(b.node(op, *xs, name="op", **args))
    return archgraph.compile(b.build(), seed=7)


def exp0(v: torch.Tensor, c: float) -> torch.Tensor:
    n = v.norm()
    return math.tanh(math.sqrt(c) * n) * v / (math.sqrt(c) * n)


def log0(y: torch.Tensor, c: float) -> torch.Tensor:
    n = y.norm()
    return math.atanh(math.sqrt(c) * n) * y / (math.sqrt(c) * n)


def madd(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    xy, x2, y2 = float(x @ y), float(x @ x), float(y @ y)
    return ((1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y) / (1 + 2 * c * xy + c**2 * x2 * y2)


def pfc(x: torch.Tensor, z: torch.Tensor, r: torch.Tensor, c: float) -> torch.Tensor:
    """HNN++ Poincaré FC for one point x [in]: z [in, out], r [out]."""
    sc, lam = math.sqrt(c), 2 / (1 - c * float(x @ x))
    v = torch.empty(z.shape[1], dtype=torch.float64)
    for k in range(z.shape[1]):
        zk = z[:, k]
        a = float(zk.norm())
        t = lam * float(sc * x @ (zk / a)) * math.cosh(2 * sc * float(r[k]))
        v[k] = 2 * a / sc * math.asinh(t - (lam - 1) * math.sinh(2 * sc * float(r[k])))
    w = torch.sinh(sc * v) / sc
    return w / (1 + math.sqrt(1 + c * float(w @ w)))


@pytest.mark.parametrize("c", [0.5, 1.0, 2.0])
def test_exp_log_maps_and_mobius_addition_equal_their_formulas(c: float) -> None:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(4, 6, generator=g) * 0.4
    y = _single("expmap0", [6], c=c)(v)
    for i in range(4):
        torch.testing.assert_close(y[i].double(), exp0(v[i].double(), c), atol=1e-6, rtol=1e-5)
    back = _single("logmap0", [6], c=c)(y)
    for i in range(4):
        torch.testing.assert_close(back[i].double(), log0(y[i].double(), c), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(back, v, atol=1e-4, rtol=1e-4)
    a = y
    b = _single("expmap0", [6], c=c)(torch.randn(4, 6, generator=g) * 0.4)
    s = _single("mobius_add", [6], n_inputs=2, c=c)(a, b)
    for i in range(4):
        torch.testing.assert_close(
            s[i].double(), madd(a[i].double(), b[i].double(), c), atol=1e-6, rtol=1e-5
        )
    add = _single("mobius_add", [6], n_inputs=2, c=c)
    torch.testing.assert_close(add(a, torch.zeros_like(a)), a)  # x (+) 0 = x
    torch.testing.assert_close(add(-a, a), torch.zeros_like(a), atol=1e-6, rtol=0)  # -x (+) x = 0


def test_poincare_linear_equals_the_hnnpp_formula() -> None:
    c = 0.8
    module = _single("poincare_linear", [5], out_features=3, c=c)
    sd = module.state_dict()
    sd["op.bias"] = torch.tensor([0.1, -0.2, 0.05])  # nonzero r exercises the sinh/cosh terms
    module.load_state_dict(sd)
    x = _single("expmap0", [5], c=c)(torch.randn(4, 5) * 0.3)
    out = module(x)
    for i in range(4):
        ref = pfc(x[i].double(), sd["op.weight"].double(), sd["op.bias"].double(), c)
        assert ref.norm() < 0.99 / math.sqrt(c)  # inside the projection radius: the formula alone
        torch.testing.assert_close(out[i].double(), ref, atol=1e-5, rtol=1e-4)


def test_poincare_conv2d_equals_beta_concatenated_patches_through_the_fc() -> None:
    c, cin, cout, k = 1.0, 2, 3, 3
    module = _single(
        "poincare_conv2d",
        [cin, 5, 5],
        batch=1,
        out_channels=cout,
        kernel_size=k,
        padding=1,
        stride=2,
        c=c,
    )
    sd = {key: t.double() for key, t in module.state_dict().items()}
    x = _single("expmap0", [cin, 5, 5], batch=1, c=c)(torch.randn(1, cin, 5, 5) * 0.5)
    out = module(x)
    assert out.shape == (1, cout, 3, 3)
    # B(C k^2 / 2, 1/2) / B(C / 2, 1/2) with Gamma functions
    beta = (math.gamma(cin * k * k / 2) / math.gamma(cin * k * k / 2 + 0.5)) / (
        math.gamma(cin / 2) / math.gamma(cin / 2 + 0.5)
    )
    xp = torch.nn.functional.pad(x.double(), (1, 1, 1, 1))  # the origin pads
    for oy in range(3):
        for ox in range(3):
            tangent = torch.zeros(cin, k, k, dtype=torch.float64)
            for i in range(k):
                for j in range(k):
                    point = xp[0, :, 2 * oy + i, 2 * ox + j]
                    if point.norm() > 0:
                        tangent[:, i, j] = log0(point, c)
            joined = exp0(tangent.flatten() * beta, c)
            ref = pfc(joined, sd["op.weight"], sd["op.bias"], c)
            torch.testing.assert_close(out[0, :, oy, ox].double(), ref, atol=1e-5, rtol=1e-4)


def test_midpoint_pool_is_the_gyromidpoint() -> None:
    c = 1.0
    x = _single("expmap0", [3, 2, 2], batch=2, c=c)(torch.randn(2, 3, 2, 2))
    out = _single("poincare_midpoint_pool", [3, 2, 2], batch=2, c=c)(x)
    for s in range(2):
        pts = [x[s, :, i, j].double() for i in range(2) for j in range(2)]
        lams = [2 / (1 - c * float(p @ p)) for p in pts]
        m = sum(lam * p for lam, p in zip(lams, pts, strict=True)) / sum(lam - 1 for lam in lams)
        n = float(m.norm())
        ref = math.tanh(0.5 * math.atanh(math.sqrt(c) * n)) * m / (math.sqrt(c) * n)
        torch.testing.assert_close(out[s].double(), ref, atol=1e-6, rtol=1e-5)
    same = x[:, :, :1, :1].expand(2, 3, 2, 2).contiguous()  # one point four times: itself
    torch.testing.assert_close(
        _single("poincare_midpoint_pool", [3, 2, 2], batch=2, c=c)(same), x[:, :, 0, 0]
    )


class _Record(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, n: fx.Node):  # noqa: ANN201
        out = super().run_node(n)
        if "ir_id" in n.meta and isinstance(out, torch.Tensor):
            self.values[n.meta["ir_id"]] = out
        return out


@pytest.mark.parametrize("c", [1.0, 4.0])
def test_poincare_resnet_points_stay_in_the_ball_and_gradients_are_finite(c: float) -> None:
    graph = archgraph.load("poincare_resnet", c=c, image_size=16)
    module = archgraph.compile(graph, seed=1)
    x = (torch.randn(2, 3, 16, 16) * 1e3).requires_grad_()  # far outside any sensible range
    rec = _Record(module)
    out = rec.run(x)
    ball_ops = {"expmap0", "mobius_add", "poincare_conv2d", "poincare_midpoint_pool"}
    checked = 0
    for node in graph.nodes():
        if node.op in ball_ops:
            norms = rec.values[node.id].norm(dim=1)
            assert (norms < 1 / math.sqrt(c)).all(), node.id
            checked += 1
    assert checked >= 12
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_ops_project_points_that_would_leave_the_ball() -> None:
    c = 2.0
    huge = torch.randn(4, 6) * 1e6
    y = _single("expmap0", [6], c=c)(huge)
    assert (y.norm(dim=1) < 1 / math.sqrt(c)).all()
    s = _single("mobius_add", [6], n_inputs=2, c=c)(y, y)
    assert (s.norm(dim=1) < 1 / math.sqrt(c)).all()
    back = _single("logmap0", [6], c=c)(y)
    assert torch.isfinite(back).all()


def test_prune_channels_refuses_poincare_resnet_at_a_named_node(capsys) -> None:
    assert main(["compile", "poincare_resnet", "--prune", "channels=0.5"]) == 2
    err = capsys.readouterr().err
    assert "poincare_resnet.yaml:" in err and "node 'conv1'" in err and "poincare_conv2d" in err
    assert "Traceback" not in err

"""Gradient differential tests: a module compiled with mode="train" at -O1 and -O2 trains like
the -O0 module of the same graph: same weights, same input, same dropout draws (torch's
generator seeded before each step) -> the same loss, every parameter's gradient within 1e-4 of
that gradient's scale (max |-O0 gradient|), the same batchnorm running statistics after the
step, the same weights after SGD steps, and after .eval() the outputs -O0 computes in eval mode.

The checks run in float64: training-mode batchnorm at batch 2 over few pixels makes the float32
gradient ill-conditioned (torchvision's own resnet18 at 64 px differs from its float64 gradient
by up to 30% in NCHW), which would hide a wrong pass behind rounding noise. Zoo specs are loaded
at small image sizes and 10 classes, the whole architecture otherwise, to keep CI fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import archgraph
from archgraph import Graph
from archgraph.passes.prune import attach_masks
from archgraph.passes.prune.sparsity import prune_weights
from archgraph.profile.measure import example_inputs
from tests.passes.differential import outputs, scaled_error
from tests.passes.random_graphs import random_graphs, random_weights

TOLERANCE = 1e-4
BATCH = 2
# the smallest inputs each zoo spec takes whole (inception's valid convs need 75 px; EMO's
# windowed attention needs maps in whole 7x7 windows down to stride 32). regnet_y_400mf at 32 px
# ends in 1x1 maps, where training batchnorm normalizes 2 values per channel: its -O2 gradients
# then differ from -O0's by 4e-4 even in float64 (rounding amplified), and agree at 64 px.
IMAGE_SIZE = {"inception_resnet_v2": 75, "pvt_v2_b0": 64, "emo2_small": 224, "regnet_y_400mf": 64}
DTYPE = torch.float64


def load_small(name: str, image_size: int | None = None) -> Graph:
    """The zoo spec at a small image size and 10 classes, where its params have those knobs."""
    knobs = _spec_params(name)
    params: dict[str, int] = {}
    if "image_size" in knobs:
        params["image_size"] = image_size or IMAGE_SIZE.get(name, 32)
    if "num_classes" in knobs:
        params["num_classes"] = 10
    return archgraph.load(name, batch=BATCH, **params)


def _spec_params(name: str) -> set[str]:
    from archgraph.spec import zoo_path
    from archgraph.spec.yaml_source import parse_yaml

    path = zoo_path(name)
    return set(parse_yaml(path.read_text(), str(path)).get("params", {}))


def compile_train(graph: Graph, level: int, weights: dict[str, torch.Tensor]) -> torch.nn.Module:
    module = archgraph.compile(graph, level, weights=weights, mode="train")
    assert module.training
    return module.to(DTYPE)


def float_inputs(graph: Graph, seed: int = 0) -> list[torch.Tensor]:
    return [
        x.to(DTYPE) if x.is_floating_point() else x
        for x in example_inputs(graph, seed=seed, batch=BATCH)
    ]


def loss_of(module: torch.nn.Module, inputs: Sequence[torch.Tensor], seed: int) -> torch.Tensor:
    """A fixed random projection of every output (no symmetry for gradients to cancel in)."""
    torch.manual_seed(seed)  # dropout draws
    out = module(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    gen = torch.Generator().manual_seed(1234)
    return sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outs)


def scale_error(got: torch.Tensor, ref: torch.Tensor, floor: float = 1e-30) -> float:
    """max |got - ref| over max(max |ref|, floor); integer tensors must be equal."""
    if ref.dtype == torch.int64:
        return 0.0 if torch.equal(got, ref) else float("inf")
    if not ref.numel():
        return 0.0
    return float((got - ref).abs().max()) / max(float(ref.abs().max()), floor)


def grad_floor(grads: Sequence[torch.Tensor | None]) -> float:
    """A gradient that is zero in exact arithmetic (a bias before a training batchnorm over one
    pixel) is rounding noise: its scale is taken as at least 1e-9 of the largest gradient."""
    return 1e-9 * max((float(g.abs().max()) for g in grads if g is not None), default=0.0)


def check_train_step(graph: Graph, weights: dict[str, torch.Tensor], levels: Sequence[int]) -> None:
    """One step at each level against -O0: loss, gradients, running statistics, eval outputs."""
    inputs = float_inputs(graph)
    ref = compile_train(graph, 0, weights)
    ref_loss = loss_of(ref, inputs, seed=7)
    if ref_loss.requires_grad:  # a random graph's outputs may read no parameter
        ref_loss.backward()
    ref_params = dict(ref.named_parameters())
    floor = grad_floor([p.grad for p in ref_params.values()])
    ref.eval()
    ref_eval = outputs(ref, inputs)
    for level in levels:
        module = compile_train(graph, level, weights)
        loss = loss_of(module, inputs, seed=7)
        if loss.requires_grad:
            loss.backward()
        label = f"{graph.name} -O{level}"
        assert scale_error(loss.detach(), ref_loss.detach()) <= TOLERANCE, label
        params = dict(module.named_parameters())
        # every parameter keeps its -O0 name; a parameter -O0 never reads (a dead node's) may go
        assert set(params) <= set(ref_params), f"{label}: {set(params) - set(ref_params)}"
        for key, p in ref_params.items():
            if key not in params:
                assert p.grad is None, f"{label}: '{key}' is read at -O0 but gone"
                continue
            if p.grad is None:
                assert params[key].grad is None, f"{label}: '{key}' has a gradient only here"
                continue
            err = scale_error(params[key].grad, p.grad, floor)
            assert err <= TOLERANCE, f"{label}: gradient of '{key}' off by {err:.2e}"
        buffers = dict(module.named_buffers())
        for key, b in ref.named_buffers():
            assert key in buffers, f"{label}: buffer '{key}' is gone"
            err = scale_error(buffers[key], b)
            assert err <= TOLERANCE, f"{label}: buffer '{key}' off by {err:.2e} after the step"
        module.eval()
        err = scaled_error(outputs(module, inputs), ref_eval)
        assert err <= TOLERANCE, f"{label}: eval-mode outputs after training off by {err:.2e}"


@pytest.mark.parametrize("name", archgraph.zoo())
def test_zoo_spec_trains_at_o1_and_o2_like_o0(name: str) -> None:
    graph = load_small(name)
    check_train_step(graph, random_weights(graph, seed=1), levels=(1, 2))


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(random_graphs())
def test_random_graphs_train_through_every_level(graph: Graph) -> None:
    check_train_step(graph, random_weights(graph, seed=2), levels=(1, 2))


def sgd_steps(
    module: torch.nn.Module, inputs: Sequence[torch.Tensor], steps: int, masks: dict | None = None
) -> dict[str, torch.Tensor]:
    opt = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    if masks is not None:
        attach_masks(module, masks, opt)
    for step in range(steps):
        opt.zero_grad()
        loss_of(module, inputs, seed=step).backward()
        opt.step()
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# Several steps amplify rounding through a training batchnorm over very few values (2 samples
# x 1 pixel): the convolutional net trains on 64 px, where its last stage still has 2 x 2.
@pytest.mark.parametrize(("name", "size"), [("resnet18", 64), ("vit_small_patch16_224", 32)])
def test_sgd_steps_give_equal_weights(name: str, size: int) -> None:
    graph = load_small(name, size)
    weights = random_weights(graph, seed=3)
    inputs = float_inputs(graph)
    ref = sgd_steps(compile_train(graph, 0, weights), inputs, steps=3)
    for level in (1, 2):
        got = sgd_steps(compile_train(graph, level, weights), inputs, steps=3)
        assert set(got) == set(ref)
        for key, value in ref.items():
            err = scale_error(got[key], value)
            assert err <= TOLERANCE, f"-O{level}: '{key}' off by {err:.2e} after 3 steps"


def test_masked_weights_stay_zero_through_fused_ops() -> None:
    # ViT: its MLP linears take their GELU and residual add as fused epilogues in training
    graph = load_small("vit_small_patch16_224")
    graph.weights = random_weights(graph, seed=4)
    pruned, masks, _ = prune_weights(graph, 0.8, method="magnitude", scope="global")
    inputs = float_inputs(graph)
    ref = sgd_steps(compile_train(pruned, 0, pruned.weights), inputs, 3, masks)
    module = compile_train(pruned, 2, pruned.weights)
    fused = [n.id for n in module.meta["archgraph_ir"].nodes() if n.op == "linear_fused"]
    assert fused and any(f"{n}.weight" in masks for n in fused), "no masked fused layer"
    got = sgd_steps(module, inputs, 3, masks)
    for key, mask in masks.items():
        assert torch.all(got[key][mask == 0] == 0), f"'{key}' has masked weights back"
        assert torch.count_nonzero(got[key]) == torch.count_nonzero(mask)
    for key, value in ref.items():
        err = scale_error(got[key], value)
        assert err <= TOLERANCE, f"'{key}' off by {err:.2e} after 3 masked steps"


def test_train_mode_rejects_passes_that_are_not_train_safe() -> None:
    graph = load_small("resnet18")
    with pytest.raises(archgraph.SpecError, match="not train-safe"):
        archgraph.compile(graph, 0, passes="fold_bn", mode="train")
    with pytest.raises(archgraph.SpecError, match="compile mode"):
        archgraph.compile(graph, 1, mode="training")


def test_train_pipelines_fuse_and_keep_training_behaviour() -> None:
    """What the -O2 train pipeline makes of densenet121: training batchnorms fused with their
    ReLU and recomputed before convs, dense blocks in buffers; no folded BN."""
    ir = archgraph.compile(load_small("densenet121"), 2, mode="train").meta["archgraph_ir"]
    ops = [n.op for n in ir.nodes()]
    assert "batchnorm" not in ops and ops.count("batchnorm_act") == 121
    layer = ir["features.denseblock2.denselayer3.norm1"]
    assert layer.args["activation"] == "relu" and layer.args["recompute"]
    assert not ir["features.denseblock2.denselayer3.norm2"].args["recompute"]  # over a conv
    assert ir[layer.inputs[0]].op == "buffer_prefix"
    assert ops.count("buffer_init") == 4
    assert not any("pre_scale" in k for k in ir.weights)


def test_attention_dropout_becomes_sdpa_with_dropout_only_in_training() -> None:
    b = archgraph.Builder("attn", batch=BATCH)
    q, k, v = (b.input(n, [2, 5, 4]) for n in "qkv")
    kt = b.node("transpose", k, name="kt", dim0=-2, dim1=-1)
    s = b.node("scale", b.node("matmul", q, kt, name="raw"), name="scores", factor=0.5)
    p = b.node("dropout", b.node("softmax", s, name="probs", dim=-1), name="drop", p=0.4)
    b.output(b.node("matmul", p, v, name="mix"))
    graph = b.build()
    inputs = float_inputs(graph)
    ref = compile_train(graph, 0, {})
    module = compile_train(graph, 2, {})
    ops = [n.op for n in module.meta["archgraph_ir"].nodes()]
    assert "sdpa_dropout" in ops and "dropout" not in ops and "softmax" not in ops
    torch.manual_seed(3)
    trained = module(*inputs)
    torch.manual_seed(3)
    assert scaled_error([trained], [ref(*inputs)]) <= TOLERANCE  # the same dropout draws
    evaluated = outputs(module.eval(), inputs)
    assert scaled_error(evaluated, outputs(ref.eval(), inputs)) <= TOLERANCE
    assert scaled_error([trained], evaluated) > 0.01  # dropout acted while training


def test_cpu_backward_of_pointwise_groups_and_buffers_passes_gradcheck() -> None:
    from archgraph.codegen.kernels import cpu

    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(2, 3, 2, 2, generator=gen, dtype=DTYPE, requires_grad=True) for _ in "ab")
    steps = [("silu",), ("mul", 1), ("scale", 0.5), ("add", 0), ("tanh",)]
    assert torch.autograd.gradcheck(lambda x, y: cpu.pointwise_chain(steps, [x, y], {}), (a, b))
    c = torch.randn(2, 3, 2, 2, generator=gen, dtype=DTYPE, requires_grad=True)
    for act in ("relu", "sigmoid", "tanh"):  # backward by the activation's rule on the output
        residual = [("add", 2), ("add", 1), (act,)]
        assert torch.autograd.gradcheck(
            lambda *t, s=residual: cpu.pointwise_chain(s, t, {}), (a, b, c)
        )

    def block(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        buf = cpu.buffer_init(x, 6)
        first = cpu.buffer_prefix(buf, 3) * 2.0  # read before the write below
        buf = cpu.buffer_write(buf, y.sin(), 3)
        return first.sum() + (buf * buf).sum() + cpu.buffer_prefix(buf, 4).cos().sum()

    assert torch.autograd.gradcheck(block, (a, b))


@pytest.mark.parametrize("channels_last", [False, True])
def test_dense_block_buffer_gradients_equal_those_of_concatenation(channels_last: bool) -> None:
    """A dense block over a buffer (prefixes add their gradients into the one gradient the writes
    pass along) against the same block over torch.cat; the loss also reads the whole last buffer
    through sum(), whose gradient is an expanded tensor nobody may write into."""
    from archgraph.codegen.kernels import cpu

    gen = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x0 = torch.randn(2, 3, 4, 4, generator=gen, dtype=DTYPE).contiguous(memory_format=fmt)
    weights = [torch.randn(2, 3 + 2 * k, 1, 1, generator=gen, dtype=DTYPE) for k in range(3)]

    def block(x: torch.Tensor, ws: Sequence[torch.Tensor], buffered: bool) -> torch.Tensor:
        if buffered:
            buf, width = cpu.buffer_init(x, 9), 3
            for w in ws:
                y = torch.conv2d(cpu.buffer_prefix(buf, width), w).tanh()
                buf, width = cpu.buffer_write(buf, y, width), width + 2
            whole = buf
        else:
            feats = [x]
            for w in ws:
                feats.append(torch.conv2d(torch.cat(feats, 1), w).tanh())
            whole = torch.cat(feats, 1)
        proj = torch.randn(whole.shape, generator=torch.Generator().manual_seed(1), dtype=DTYPE)
        return (whole * proj).sum() + whole.sum()

    grads = []
    for buffered in (False, True):
        leaves = [t.clone().requires_grad_() for t in (x0, *weights)]
        block(leaves[0], leaves[1:], buffered).backward()
        grads.append([t.grad for t in leaves])
    for got, ref in zip(grads[1], grads[0], strict=True):
        assert scale_error(got, ref) <= 1e-12


def test_recomputed_bn_relu_output_is_not_kept_for_backward() -> None:
    """The memory-efficient dense layer: after the conv's forward nothing holds the BN-ReLU
    output (it is rebuilt in backward), and the gradients are those of BN-ReLU-conv."""
    import gc
    import weakref

    import torch.nn.functional as F
    from archgraph.codegen.kernels import cpu, recompute

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 4, 4, generator=gen, dtype=DTYPE).contiguous(
        memory_format=torch.channels_last
    )
    weight = torch.rand(6, generator=gen, dtype=DTYPE) + 0.5
    bias = torch.randn(6, generator=gen, dtype=DTYPE)
    conv = torch.randn(3, 6, 3, 3, generator=gen, dtype=DTYPE)
    grads = []
    for recomputed in (False, True):
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias, conv)]
        stats = torch.zeros(6, dtype=DTYPE), torch.ones(6, dtype=DTYPE)
        if recomputed:
            y = recompute.batchnorm_relu(*leaves[:3], *stats, 0.1, 1e-5, relu=True)
        else:
            y = F.relu(F.batch_norm(leaves[0], *stats, *leaves[1:3], True, 0.1, 1e-5))
        alive = weakref.ref(y)
        out = cpu.conv2d_fused(y, None, leaves[3], None, stride=(1, 1), padding=(1, 1),
                               dilation=(1, 1), groups=1, act="none", pre_scale=None,
                               pre_shift=None, pre_act="none", prepack=True,
                               cache=cpu.PackedWeight())  # fmt: skip
        del y
        gc.collect()
        assert (alive() is None) == recomputed
        out.square().sum().backward()
        grads.append([t.grad for t in leaves])
    for got, ref in zip(grads[1], grads[0], strict=True):
        assert scale_error(got, ref) <= 1e-10

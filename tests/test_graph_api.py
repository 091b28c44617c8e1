"""The Python graph API: one semantics with the YAML front end, located errors, every core op
lowered to the PyTorch it stands for."""

from __future__ import annotations

import operator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

import archgraph
from archgraph import Builder
from archgraph.errors import SpecError
from archgraph.ir.validate import validate
from archgraph.ir.weights import bind_weights


def resnet18_in_python(num_classes: int = 1000) -> archgraph.Graph:
    b = Builder("resnet18")
    x = b.input("x", [3, 224, 224])
    y = b.conv2d(x, name="conv1", out_channels=64, kernel_size=7, stride=2, padding=3, bias=False)
    y = b.relu(b.batchnorm(y, name="bn1"), name="relu")
    y = b.maxpool2d(y, name="maxpool", kernel_size=3, stride=2, padding=1)
    for stage, planes in enumerate([64, 128, 256, 512], start=1):
        with b.scope(f"layer{stage}"):
            for i in range(2):
                y = b.block(
                    "basic", y, name=str(i), planes=planes, stride=2 if stage > 1 and i == 0 else 1
                )
    y = b.adaptive_avgpool2d(y, name="avgpool", output_size=1)
    y = b.flatten(y, name="flatten")
    b.output(b.linear(y, name="fc", out_features=num_classes))
    return b.build()


def test_python_and_yaml_build_the_same_graph() -> None:
    # resnet18.yaml writes its basic block as a YAML template; here the built-in Python block.
    py, yml = resnet18_in_python(), archgraph.load("resnet18")
    assert [n.id for n in py.nodes()] == [n.id for n in yml.nodes()]
    for a, b in zip(py.nodes(), yml.nodes(), strict=True):
        assert (a.op, a.inputs, a.args, a.type) == (b.op, b.inputs, b.args, b.type), a.id
    assert py.outputs == yml.outputs


def test_spec_parameters_override() -> None:
    g = archgraph.load("resnet18", num_classes=10, image_size=64)
    assert g["fc"].type.shape == (1, 10)
    assert g["layer4.1.relu_out"].type.shape == (1, 512, 2, 2)


def test_python_errors_point_at_the_callers_line() -> None:
    b = Builder("t")
    x = b.input("x", [3, 8, 8])
    y = b.conv2d(x, name="c", out_channels=4, kernel_size=1)
    with pytest.raises(SpecError) as err:
        b.add(x, y, name="bad")  # the located line
    e = err.value
    assert e.node == "bad" and e.loc is not None and e.loc.file == __file__
    assert "b.add(x, y" in Path(__file__).read_text().splitlines()[e.loc.line - 1]


def test_unknown_block_argument_has_a_hint() -> None:
    b = Builder("t")
    x = b.input("x", [3, 8, 8])
    with pytest.raises(SpecError) as err:
        b.block("basic", x, name="blk", plans=8)
    assert "unknown argument 'plans'" in err.value.message and "'planes'" in (err.value.hint or "")


def every_core_op() -> archgraph.Graph:
    """A small net touching every op of the foundation issue."""
    b = Builder("all_ops", batch=2)
    x = b.input("x", [4, 8, 8])
    c = b.conv2d(
        x, name="conv", out_channels=8, kernel_size=3, padding=2, dilation=2, groups=2, stride=1
    )
    c = b.batchnorm(c, name="bn")
    acts = [
        b.node(op, c, name=op)
        for op in ("relu", "relu6", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid")
    ]
    g = b.gelu(acts[0], name="gelu", approximate="tanh")
    s = b.add(g, acts[1], name="sum")
    m = b.mul(s, acts[2], name="prod")
    cat = b.concat(m, acts[3], acts[4], name="cat")
    mp = b.maxpool2d(cat, name="mp", kernel_size=3, stride=2, padding=1, ceil_mode=True)
    ap = b.avgpool2d(mp, name="ap", kernel_size=2, stride=1)
    up = b.upsample(ap, name="up", scale_factor=2.0, mode="bilinear")
    amp = b.adaptive_maxpool2d(up, name="amp", output_size=[2, 2])
    tokens = b.transpose(
        b.reshape(amp, name="tok", shape=[24, 4]), name="tt", dim0=1, dim1=2
    )  # [N, 4, 24]
    tokens = b.layernorm(tokens, name="ln")
    att = b.mhsa(tokens, name="attn", num_heads=4)
    scores = b.softmax(
        b.matmul(att, b.permute(att, name="perm", dims=[0, 2, 1]), name="mm"), name="sm"
    )
    mixed = b.dropout(b.identity(scores, name="id"), name="drop", p=0.1)
    pooled = b.adaptive_avgpool2d(up, name="gap", output_size=1)
    flat = b.flatten(pooled, name="flat")
    head = b.linear(flat, name="fc", out_features=5)
    b.output(head, b.flatten(mixed, name="flat2"))
    return b.build()


def reference_forward(
    sd: dict[str, torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same network written by hand in plain PyTorch."""
    c = F.conv2d(x, sd["conv.weight"], sd["conv.bias"], padding=2, dilation=2, groups=2)
    c = F.batch_norm(
        c,
        sd["bn.running_mean"],
        sd["bn.running_var"],
        sd["bn.weight"],
        sd["bn.bias"],
        False,
        0.0,
        1e-5,
    )
    relu, relu6, silu, sig, tanh = F.relu(c), F.relu6(c), F.silu(c), torch.sigmoid(c), torch.tanh(c)
    g = F.gelu(relu, approximate="tanh")
    m = operator.mul(g + relu6, silu)
    cat = torch.cat([m, sig, tanh], 1)
    mp = F.max_pool2d(cat, 3, 2, 1, ceil_mode=True)
    ap = F.avg_pool2d(mp, 2, 1)
    up = F.interpolate(ap, scale_factor=2.0, mode="bilinear", align_corners=False)
    amp = F.adaptive_max_pool2d(up, 2)
    tokens = amp.reshape(amp.shape[0], 24, 4).transpose(1, 2)
    tokens = F.layer_norm(tokens, (24,), sd["ln.weight"], sd["ln.bias"])
    n, length, d = tokens.shape
    qkv = F.linear(tokens, sd["attn.qkv.weight"], sd["attn.qkv.bias"]).reshape(
        n, length, 3, 4, d // 4
    )
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    att = torch.softmax(q @ k.transpose(-1, -2) / (d // 4) ** 0.5, -1) @ v
    att = F.linear(
        att.transpose(1, 2).reshape(n, length, d), sd["attn.proj.weight"], sd["attn.proj.bias"]
    )
    scores = torch.softmax(att @ att.permute(0, 2, 1), -1)
    head = F.linear(F.adaptive_avg_pool2d(up, 1).flatten(1), sd["fc.weight"], sd["fc.bias"])
    return head, scores.flatten(1)


def test_every_core_op_lowers_to_the_pytorch_it_stands_for() -> None:
    graph = every_core_op()
    module = archgraph.compile(graph, seed=3).eval()
    sd = module.state_dict()
    sd["bn.running_mean"].normal_()  # make BN statistics matter
    sd["bn.running_var"].uniform_(0.5, 2.0)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        got, want = module(x), reference_forward(sd, x)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_inferred_types_match_real_shapes() -> None:
    graph = every_core_op()
    module = archgraph.compile(graph)
    ShapeProp(module).propagate(torch.randn(2, 4, 8, 8))
    checked = 0
    for node in module.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        ir = graph[node.meta["ir_id"]]
        assert tuple(node.meta["tensor_meta"].shape) == ir.type.shape, ir.id
        checked += 1
    assert checked == len(graph) - 1


def test_state_dict_keys_are_node_ids_plus_param_names() -> None:
    keys = set(archgraph.compile(every_core_op()).state_dict())
    assert {
        "conv.weight",
        "conv.bias",
        "bn.num_batches_tracked",
        "attn.qkv.weight",
        "fc.bias",
    } <= keys
    assert all(
        k.rpartition(".")[0].split(".")[0] in {"conv", "bn", "ln", "attn", "fc"} for k in keys
    )


def test_same_seed_same_weights_and_graph_unchanged_by_compile() -> None:
    graph = every_core_op()
    a = archgraph.compile(graph, seed=7).state_dict()
    b = archgraph.compile(graph, seed=7).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert graph.weights is None  # compile works on a copy
    validate(graph)


@pytest.mark.parametrize("bound", [False, True])
def test_training_the_module_changes_neither_the_graph_nor_the_given_weights(bound: bool) -> None:
    """compile hands its own fresh tensors to the module: a step on the module's parameters
    touches no tensor the caller holds (the state_dict passed in, or a graph's bound weights)."""
    graph = every_core_op()
    given = {k: v.clone() for k, v in archgraph.compile(graph, seed=3).state_dict().items()}
    if bound:
        graph = graph.copy()
        bind_weights(graph, given)
        snapshot = {k: v.clone() for k, v in graph.weights.items()}
        module = archgraph.compile(graph)
    else:
        snapshot = {k: v.clone() for k, v in given.items()}
        module = archgraph.compile(graph, weights=given)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    held = graph.weights if bound else given
    assert all(torch.equal(held[k], snapshot[k]) for k in snapshot)


@pytest.mark.parametrize("opt_level", [0, 1, 2])
def test_a_node_may_read_one_value_twice(opt_level: int, tmp_path: Path) -> None:
    """x * x and a + a: the same value wired to two inputs of one node, from Python and YAML,
    at every level (the fused pointwise group must read it twice too)."""
    b = Builder("square")
    x = b.input("x", [4, 8, 8])
    a = b.conv2d(x, name="conv", out_channels=4, kernel_size=3, padding=1)
    b.output(b.add(b.mul(a, a, name="sq"), b.relu(a, name="act"), name="out"))
    graph = b.build()
    spec = tmp_path / "square.yaml"
    spec.write_text(
        "name: square\ninputs: {x: [4, 8, 8]}\nnodes:\n"
        "  conv: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n"
        "  sq: {op: mul, in: [conv, conv]}\n  act: {op: relu, in: conv}\n"
        "  out: {op: add, in: [sq, act]}\noutputs: [out]\n"
    )
    assert [n.inputs for n in archgraph.load(spec).nodes()] == [n.inputs for n in graph.nodes()]
    module = archgraph.compile(graph, opt_level, seed=1).eval()
    conv = archgraph.compile(graph, seed=1).conv
    inp = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        y = conv(inp)
        assert torch.allclose(module(inp), y * y + torch.relu(y), atol=1e-5)

"""Each pass on graphs small enough to see what it must do, checked against references nobody
here wrote (torch.nn.utils.fusion, torchvision, timm) or hand-computed counts."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

import archgraph
from archgraph import Builder, Graph
from archgraph.errors import GraphError
from archgraph.ir.weights import bind_weights
from archgraph.passes import PASSES, Change, Pass, PassManager, run_pipeline
from tests.passes.differential import check_against_o0
from tests.passes.random_graphs import random_weights


def _bound(graph: Graph, seed: int = 0) -> Graph:
    graph.weights = random_weights(graph, seed)
    return graph


def _run(graph: Graph, *names: str) -> Graph:
    out, _ = run_pipeline(graph, passes=list(names))
    return out


def _ops(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes()]


def test_fold_bn_matches_torch_fusion_for_conv_and_linear() -> None:
    b = Builder("fold")
    x = b.input("x", [3, 8, 8])
    y = b.node("conv2d", x, name="conv", out_channels=6, kernel_size=3, padding=1, bias=False)
    y = b.node("batchnorm", y, name="bn", eps=1e-3)
    y = b.node("adaptive_avgpool2d", y, name="pool")
    y = b.node("flatten", y, name="flat")
    y = b.node("linear", y, name="fc", out_features=5)
    b.output(b.node("batchnorm", y, name="bn_fc"))
    graph = _bound(b.build())
    folded = _run(graph, "fold_bn")
    assert _ops(folded) == ["input", "conv2d", "adaptive_avgpool2d", "flatten", "linear"]
    w = graph.weights
    ref_w, ref_b = fuse_conv_bn_weights(
        w["conv.weight"], None, w["bn.running_mean"], w["bn.running_var"], 1e-3,
        w["bn.weight"], w["bn.bias"],
    )  # fmt: skip
    torch.testing.assert_close(folded.weights["conv.weight"], ref_w.detach())
    torch.testing.assert_close(folded.weights["conv.bias"], ref_b.detach())
    ref_w, ref_b = fuse_linear_bn_weights(
        w["fc.weight"], w["fc.bias"], w["bn_fc.running_mean"], w["bn_fc.running_var"], 1e-5,
        w["bn_fc.weight"], w["bn_fc.bias"],
    )  # fmt: skip
    torch.testing.assert_close(folded.weights["fc.weight"], ref_w.detach())
    torch.testing.assert_close(folded.weights["fc.bias"], ref_b.detach())
    assert folded.outputs == ["fc"]  # the folded layer keeps its id and takes the output


def test_fold_bn_leaves_a_conv_with_two_consumers() -> None:
    b = Builder("shared")
    x = b.input("x", [4, 6, 6])
    y = b.node("conv2d", x, name="conv", out_channels=4, kernel_size=1)
    z = b.node("batchnorm", y, name="bn")
    b.output(b.node("add", y, z, name="add"))
    graph = _bound(b.build())
    assert "batchnorm" in _ops(_run(graph, "fold_bn"))
    check_against_o0(graph, graph.weights)


def _basic_block(b: Builder, x: str, prefix: str = "") -> str:
    """conv0-bn0-relu0, conv1-bn1, add x, relu (a ResNet basic block, 8 channels); node names
    start with `prefix`."""
    y = b.node("conv2d", x, name=f"{prefix}conv0", out_channels=8, kernel_size=3, padding=1,
               bias=False)  # fmt: skip
    y = b.node("relu", b.node("batchnorm", y, name=f"{prefix}bn0"), name=f"{prefix}relu0")
    y = b.node("conv2d", y, name=f"{prefix}conv1", out_channels=8, kernel_size=3, padding=1,
               bias=False)  # fmt: skip
    y = b.node("add", b.node("batchnorm", y, name=f"{prefix}bn1"), x, name=f"{prefix}add")
    return b.node("relu", y, name=f"{prefix}relu")


def _resnet_unit() -> Graph:
    """One basic block over the graph's input."""
    b = Builder("unit")
    b.output(_basic_block(b, b.input("x", [8, 6, 6])))
    return _bound(b.build())


def test_fuse_conv_absorbs_bias_residual_and_activation() -> None:
    graph = _resnet_unit()
    out = _run(graph, "fold_bn", "fuse_conv")
    assert _ops(out) == ["input", "conv2d_fused", "conv2d_fused"]
    assert out["conv0"].inputs == ("x",) and out["conv0"].args["activation"] == "relu"
    conv = out["conv1"]
    assert conv.inputs == ("conv0", "x") and conv.args["residual"]
    assert conv.args["activation"] == "relu" and conv.args["bias"]
    assert out.outputs == ["conv1"]
    check_against_o0(graph, graph.weights, levels=(1, 2))


def test_densenet_layers_get_a_bn_relu_prologue_and_match_torchvision() -> None:
    import torchvision

    ref = torchvision.models.densenet121(weights=None).eval()
    from tests.reference import randomize_state

    state = randomize_state(ref, seed=3)
    graph = archgraph.load("densenet121", batch=2)
    module = archgraph.compile(graph, 2, state).eval()
    optimized = module.meta["archgraph_ir"]
    prologues = [n for n in optimized.nodes() if n.args.get("pre_affine")]
    assert len(prologues) == 58 + 3  # every dense layer's norm1-relu1, every transition's norm
    assert not [n for n in optimized.nodes() if n.op == "concat"]
    writes = [n for n in optimized.nodes() if n.op == "buffer_write"]
    assert len(writes) == 6 + 12 + 24 + 16  # one per dense layer: its output, written once
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = ref(x), module(x)
    assert float((got - expected).abs().max() / expected.abs().max()) < 1e-4


def test_dense_concat_reports_the_re_concatenation_bytes() -> None:
    graph = archgraph.load("densenet121")
    bind_weights(graph)
    before, _ = run_pipeline(graph, passes="fold_bn,fuse_conv")
    concats = [n for n in before.nodes() if n.op == "concat"]
    heads = [n for n in concats if n.id.endswith(".concat") and ".denselayer" not in n.id]
    assert len(heads) == 4 and len(concats) == 4 + 5 + 11 + 23 + 15
    _, reports = run_pipeline(before, passes="dense_concat")
    # every concat's output goes; each feature map is written once instead (its own bytes)
    expected = sum(n.type.nbytes for n in concats) - sum(
        before[f].type.nbytes for h in heads for f in h.inputs
    )
    assert reports[0].groups_fused == 4
    assert reports[0].bytes_saved == expected > 0


def test_dense_concat_splits_u_net_skip_concats_into_their_convs() -> None:
    """A lone concat read only by convs (a U-Net decoder's [skip, up]) is never made: the conv
    reads its parts, keeps its id and weights, and the estimated peak memory drops."""
    from archgraph.passes import LEVELS
    from archgraph.profile.memory import liveness_peak

    graph = archgraph.load("unet2d", image_size=64)
    bind_weights(graph)
    before, _ = run_pipeline(graph, passes=[p for p in LEVELS[2] if p != "dense_concat"])
    concats = {n.id: n for n in before.nodes() if n.op == "concat"}
    assert len(concats) == 4  # one skip concatenation per decoder level
    after, reports = run_pipeline(before, passes="dense_concat")
    assert "concat" not in _ops(after)
    parted = [n for n in after.nodes() if n.args.get("parts", 1) > 1]
    assert sorted(before[n.id].inputs[0] for n in parted) == sorted(concats)
    for conv in parted:
        cat = concats[before[conv.id].inputs[0]]
        assert conv.op == "conv2d_fused" and conv.inputs[:2] == cat.inputs
        assert conv.args["parts"] == 2 and conv.args["activation"] == "relu"
        assert torch.equal(after.weights[f"{conv.id}.weight"], before.weights[f"{conv.id}.weight"])
    assert reports[0].bytes_saved == sum(c.type.nbytes for c in concats.values())
    assert liveness_peak(after) < liveness_peak(before)
    check_against_o0(graph, graph.weights, levels=(2,))


def test_sdpa_rewrites_the_explicit_pattern_and_attention_ops() -> None:
    b = Builder("attn")
    t = b.input("t", [10, 8])
    q = b.node(
        "reshape", b.node("linear", t, name="q", out_features=8), name="qh", shape=[10, 2, 4]
    )
    k = b.node(
        "reshape", b.node("linear", t, name="k", out_features=8), name="kh", shape=[10, 2, 4]
    )
    v = b.node(
        "reshape", b.node("linear", t, name="v", out_features=8), name="vh", shape=[10, 2, 4]
    )
    q, k, v = (b.node("permute", a, name=f"{a.id}_p", dims=[0, 2, 1, 3]) for a in (q, k, v))
    kt = b.node("transpose", k, name="kt", dim0=-2, dim1=-1)
    s = b.node("scale", b.node("matmul", q, kt, name="qk"), name="scaled", factor=0.5)
    p = b.node("softmax", s, name="probs", dim=-1)
    o = b.node("matmul", p, v, name="out")
    m = b.node("mhsa", t, name="mhsa", num_heads=2)
    b.output(o, m)
    graph = _bound(b.build())
    out = _run(graph, "sdpa")
    assert out["out"].op == "sdpa" and out["out"].args["scale"] == 0.5
    assert out["mhsa"].op == "mhsa_sdpa"
    assert not {"softmax", "matmul", "scale"} & set(_ops(out))
    merged = _run(out, "fuse_qkv")
    linears = [n for n in merged.nodes() if n.op == "linear"]
    assert [n.args["out_features"] for n in linears] == [24]
    torch.testing.assert_close(
        merged.weights[f"{linears[0].id}.weight"],
        torch.cat([graph.weights[f"{n}.weight"] for n in "qkv"]),
    )
    check_against_o0(graph, graph.weights, passes=[["sdpa"], ["sdpa", "fuse_qkv"]])


def test_vit_at_o2_matches_timm() -> None:
    import timm

    from tests.reference import randomize_state

    ref = timm.create_model("vit_small_patch16_224", pretrained=False).eval()
    state = randomize_state(ref, seed=4)
    module = archgraph.compile(archgraph.load("vit_small_patch16_224"), 2, state).eval()
    ops = _ops(module.meta["archgraph_ir"])
    assert ops.count("mhsa_sdpa") == 12 and ops.count("linear_fused") == 25
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = ref(x), module(x)
    assert float((got - expected).abs().max() / expected.abs().max()) < 1e-4


def test_parallel_convs_merge_in_inception_resnet_v2() -> None:
    graph = archgraph.load("inception_resnet_v2")
    bind_weights(graph)
    _, reports = run_pipeline(graph, 2)
    horizontal = next(r for r in reports if r.name == "fuse_parallel_convs")
    # 1x1 convs over one input (timm's InceptionResnetV2): Mixed_5b 1, Block35 x10, Mixed_6a 0
    # (its 3x3/2 and 1x1 differ in geometry), Block17 x20, Mixed_7a 1, Block8 x9 + the last 1
    assert horizontal.groups_fused == 1 + 10 + 0 + 20 + 1 + 10
    assert horizontal.nodes_after > horizontal.nodes_before  # a merged conv plus one narrow each


def test_canonicalize_rules() -> None:
    b = Builder("canon")
    x = b.input("x", [4, 5, 5])
    y = b.node("scale", x, name="one", factor=1.0)
    y = b.node("scale", y, name="a", factor=2.0)
    y = b.node("scale", y, name="b", factor=3.0)
    y = b.node("concat", y, name="cat")
    y = b.node("flatten", y, name="flat", start_dim=2)
    y = b.node("transpose", y, name="t1", dim0=1, dim1=2)
    y = b.node("transpose", y, name="t2", dim0=2, dim1=1)
    y = b.node("permute", y, name="perm", dims=[0, 1, 2])
    b.output(b.node("relu", y, name="relu"))
    graph = _bound(b.build())
    out = _run(graph, "canonicalize")
    assert _ops(out) == ["input", "scale", "flatten", "relu"]
    assert out["b"].args["factor"] == 6.0
    check_against_o0(graph, graph.weights, levels=(1, 2))


def test_dce_cse_and_identity_removal() -> None:
    b = Builder("cleanup")
    x = b.input("x", [4, 5, 5])
    a = b.node("relu", x, name="a")
    c = b.node("relu", x, name="c")
    b.node("conv2d", x, name="dead", out_channels=4, kernel_size=1)
    y = b.node(
        "conv2d", b.node("dropout", a, name="drop", p=0.5), name="ya", out_channels=4, kernel_size=1
    )
    z = b.node("conv2d", b.node("identity", c, name="id"), name="yc", out_channels=4, kernel_size=1)
    b.output(b.node("add", y, z, name="sum"))
    graph = _bound(b.build())
    out = _run(graph, "remove_identity", "dce", "cse")
    assert _ops(out) == ["input", "relu", "conv2d", "conv2d", "add"]
    assert "dead.weight" not in out.weights and "dead" not in out
    assert out["ya"].inputs == out["yc"].inputs == ("a",)
    merged = _run(out, "fuse_parallel_convs")
    assert [n.op for n in merged.nodes()].count("conv2d") == 1
    check_against_o0(graph, graph.weights, levels=(1, 2))


def test_layout_prepacks_and_keeps_outputs_contiguous() -> None:
    graph = _resnet_unit()
    out = _run(graph, "layout")
    assert _ops(out) == [
        "input", "memory_format", "conv2d_fused", "batchnorm", "relu", "conv2d_fused", "batchnorm",
        "add", "relu", "memory_format",
    ]  # fmt: skip
    assert out["conv0"].args["prepack"] and out["conv1"].args["prepack"]
    module = archgraph.compile(graph, 2).eval()
    with torch.no_grad():
        y = module(torch.randn(2, 8, 6, 6))
    assert y.is_contiguous()


def test_pass_manager_verifies_after_every_pass() -> None:
    graph = _resnet_unit()

    def lose_weights(g: Graph) -> tuple[Graph, Change]:
        out = g.copy()
        out.weights = {k: v for k, v in out.weights.items() if not k.startswith("bn1")}
        return out, Change()

    def break_type(g: Graph) -> tuple[Graph, Change]:
        out = Graph(g.name, outputs=list(g.outputs), weights=g.weights)
        for node in g.nodes():
            out.add(node.evolve(type=node.type.with_shape((1, 1))) if node.id == "add" else node)
        return out, Change()

    with pytest.raises(GraphError, match="after pass 'lose'"):
        PassManager([Pass("lose", "drops weights", lose_weights)]).run(graph)
    with pytest.raises(GraphError, match="after pass 'break'"):
        PassManager([Pass("break", "wrong type", break_type)]).run(graph)


def test_reports_chain_and_count_what_changed() -> None:
    graph = archgraph.load("resnet50")
    bind_weights(graph)
    optimized, reports = run_pipeline(graph, 1)
    assert [r.name for r in reports] == [
        "canonicalize", "remove_identity", "dce", "cse", "fold_bn", "fuse_conv", "fuse_pointwise"
    ]  # fmt: skip
    for a, b in zip(reports, reports[1:], strict=False):
        assert a.nodes_after == b.nodes_before
    assert reports[0].nodes_before == len(graph) and reports[-1].nodes_after == len(optimized)
    bns = [n for n in graph.nodes() if n.op == "batchnorm"]
    fold = reports[4]
    assert fold.groups_fused == len(bns) == 53
    assert fold.nodes_after == len(graph) - 53
    assert fold.bytes_saved == sum(n.type.nbytes for n in bns)
    assert all(r.seconds >= 0 for r in reports)


def test_every_pass_is_listed_in_a_level() -> None:
    from archgraph.passes import LEVELS, TRAIN_LEVELS, TRAIN_SAFE

    assert set(LEVELS[2]) | set(TRAIN_LEVELS[2]) == set(PASSES)
    assert set(LEVELS[1]) < set(LEVELS[2]) and LEVELS[0] == []
    assert set(TRAIN_LEVELS[1]) < set(TRAIN_LEVELS[2]) and TRAIN_LEVELS[0] == []
    assert set(TRAIN_LEVELS[2]) == set(TRAIN_SAFE)


def _two_blocks(*, first_is_output: bool = False, read_after: bool = False) -> Graph:
    b = Builder("two_blocks")
    x = b.input("x", [8, 6, 6])
    y1 = _basic_block(b, x, "block1.")
    y2 = _basic_block(b, y1, "block2.")
    if read_after:  # block1's output is read again after block2
        y2 = b.node("add", y2, y1, name="late_read")
    b.output(y2)
    if first_is_output:
        b.output(y1)
    return _bound(b.build())


def _inplace_flags(graph: Graph) -> dict[str, bool]:
    out, _ = run_pipeline(graph, 2)
    return {
        n.id: n.args["residual_inplace"]
        for n in out.nodes()
        if n.op == "conv2d_fused" and n.args["residual"]
    }


def test_inplace_residual_donates_only_a_residual_nobody_reads_afterwards() -> None:
    # block1's residual is the caller's input; block2's is block1's output, which block2's
    # first conv has read before its last conv adds into it
    assert _inplace_flags(_two_blocks()) == {"block1.conv1": False, "block2.conv1": True}
    # a graph output, or a value read after the conv, is never written into
    assert _inplace_flags(_two_blocks(first_is_output=True))["block2.conv1"] is False
    assert _inplace_flags(_two_blocks(read_after=True))["block2.conv1"] is False
    for graph in (_two_blocks(), _two_blocks(first_is_output=True), _two_blocks(read_after=True)):
        check_against_o0(graph, graph.weights, levels=(2,))  # inputs untouched, too


def test_inplace_residual_really_writes_into_the_residual() -> None:
    from archgraph.codegen.kernels import cpu

    graph = _two_blocks()
    module = archgraph.compile(graph, 2).eval()
    seen: list[tuple[int, int]] = []
    real = cpu.conv2d_fused

    def spy(x, residual, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        y = real(x, residual, *args, **kwargs)
        if residual is not None:
            seen.append((y.data_ptr(), residual.data_ptr()))
        return y

    cpu.conv2d_fused = spy
    try:
        with torch.inference_mode():
            module(torch.randn(2, 8, 6, 6))
    finally:
        cpu.conv2d_fused = real
    assert len(seen) == 2
    assert seen[0][0] != seen[0][1]  # block1 adds into a fresh tensor
    assert seen[1][0] == seen[1][1]  # block2 adds into block1's output


def test_resnet50_adds_every_block_into_its_residual_buffer() -> None:
    graph = archgraph.load("resnet50")
    bind_weights(graph)
    flags = _inplace_flags(graph)
    # 3 + 4 + 6 + 3 bottlenecks, one residual add each: every one is donated (the first of a
    # stage adds into its downsample conv's output, the others into the previous block's)
    assert len(flags) == 16 and all(flags.values())


def test_validation_refuses_an_overwrite_of_a_value_read_later() -> None:
    out, _ = run_pipeline(_two_blocks(read_after=True), 2)
    conv = out["block2.conv1"]
    broken = Graph(out.name, outputs=list(out.outputs), weights=out.weights)
    for node in out.nodes():
        if node.id == conv.id:
            node = node.evolve(args={**node.args, "residual_inplace": True})
        broken.add(node)
    with pytest.raises(GraphError, match="overwrites input 1"):
        PassManager([Pass("flag", "sets the flag", lambda g: (broken, Change()))]).run(out)

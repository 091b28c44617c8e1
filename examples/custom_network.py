"""Build a custom network with residual, dense and attention parts through the Python graph API,
compile it to a torch.fx.GraphModule, run it and print its profile summary.

    bash scripts/dev python examples/custom_network.py
"""

from __future__ import annotations

import torch

import archgraph
from archgraph import Builder, Value
from archgraph.profile.costs import node_costs, totals


def dense_stage(b: Builder, x: Value, *, layers: int, growth: int) -> Value:
    """Dense connectivity written by hand: every layer sees the concat of all earlier outputs."""
    features = [x]
    for i in range(layers):
        with b.scope(f"layer{i}"):
            inp = features[0] if len(features) == 1 else b.concat(*features, name="cat")
            y = b.batchnorm(inp, name="norm")
            y = b.relu(y, name="act")
            features.append(
                b.conv2d(y, name="conv", out_channels=growth, kernel_size=3, padding=1, bias=False)
            )
    return b.concat(*features, name="out")


def build(num_classes: int = 10) -> archgraph.Graph:
    b = Builder("hybrid", "residual stem, dense stage, attention head")
    x = b.input("image", [3, 32, 32])
    y = b.conv2d(x, name="stem", out_channels=32, kernel_size=3, padding=1, bias=False)
    y = b.relu(b.batchnorm(y, name="stem_bn"), name="stem_act")
    y = b.block("basic", y, name="res", planes=32)  # a built-in residual block (torchvision layout)
    with b.scope("dense"):
        y = dense_stage(b, y, layers=3, growth=16)  # 32 + 3 * 16 = 80 channels
    y = b.conv2d(y, name="reduce", out_channels=64, kernel_size=1, stride=2)  # [N, 64, 16, 16]
    tokens = b.transpose(b.flatten(y, name="tokens", start_dim=2), name="tokens_t", dim0=1, dim1=2)
    with b.scope("encoder"):
        h = b.layernorm(tokens, name="norm")
        tokens = b.add(tokens, b.mhsa(h, name="attn", num_heads=4), name="residual")
    pooled = b.flatten(b.adaptive_avgpool2d(y, name="pool"), name="flat")
    mixed = b.linear(b.flatten(tokens, name="flat_tokens"), name="mix", out_features=64)
    both = b.concat(pooled, mixed, name="features")
    b.output(b.linear(both, name="head", out_features=num_classes))
    return b.build()


def main() -> None:
    graph = build()
    module = archgraph.compile(graph).eval()
    with torch.no_grad():
        logits = module(torch.randn(4, 3, 32, 32))
    t = totals(node_costs(graph))
    print(
        f"{graph.name}: {len(graph)} nodes, {t.params:,} params, {t.macs / 1e6:.1f} M MACs, logits {tuple(logits.shape)}"
    )
    print(module.code.splitlines()[3])


if __name__ == "__main__":
    main()

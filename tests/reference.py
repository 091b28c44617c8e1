"""Helpers for comparing archgraph models against reference implementations (torchvision, timm)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def randomize_state(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Give every floating tensor of `model` random values (running_var kept positive), load them
    into the model and return the state_dict. Random statistics make batchnorm matter, so a wrong
    wiring cannot hide behind the identity that default BN buffers would be."""
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        fresh = torch.randn(value.shape, generator=gen) * 0.1
        if key.endswith("running_var"):
            fresh = fresh.abs() + 0.5
        elif key.endswith(("bn.weight", "norm.weight")) or ".bn" in key and key.endswith("weight"):
            fresh = fresh + 1.0
        state[key] = fresh.to(value.dtype)
    model.load_state_dict(state)
    return state


def max_relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| divided by the output scale max |ref|."""
    assert out.shape == ref.shape, f"shape {tuple(out.shape)} != reference {tuple(ref.shape)}"
    scale = ref.abs().max().clamp_min(1e-12)
    return float((out - ref).abs().max() / scale)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def reference_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs as torch.utils.flop_counter counts them (its FLOPs / 2) at batch 1."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


# PyTorch's own function for each activation the fused groups apply (the unfused reference)
TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "silu": F.silu,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "gelu": F.gelu,
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
}

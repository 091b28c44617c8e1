"""moe_mlp: a mixture-of-experts MLP over tokens [N, L, D] (GShard, Switch Transformer; the MoE
layer of WideNet, Xue et al. 2022 "Go Wider Instead of Deeper").

Routing, per sample (each sample's L tokens are one group, so a token's output never depends on
the other samples in the batch):
  probs = softmax(x W_g^T) over the E experts (`gate.weight`, no bias)
  each token picks its top-k experts; its gate for expert e is probs[e] (not renormalized)
  expert capacity C = ceil(k * L * capacity_factor / E) slots per sample
  slots are filled by priority: every token's first choice in token order, then every token's
  second choice, ...; a choice that finds its expert full is dropped: the token gets nothing
  from that expert (with no choice left it passes through the block's residual unchanged)
  y = sum over kept choices of gate * expert_e(x), expert_e = fc2_e(act(fc1_e(x)))
The experts run on their capacity buffers [N, E, C, D] (one batched matmul per layer), so the
cost rule counts E * C expert slots per sample: the k active experts per token, plus the slack
the capacity factor leaves (C * E = k * L when the capacity factor is 1 and E divides k * L);
its active MACs (the profiler's MACs per token) are the gate and the k experts of each token.

Load balancing (Switch Transformer eq. 4): aux = E * sum_e f_e * P_e with f_e the fraction of a
sample's tokens whose first choice is e and P_e the mean router probability of e, averaged over
the samples. The module adds it to its `aux_loss` attribute at each call (a shared layer called
at every depth sums them); a trainer reads and resets all of them with `collect_aux_loss`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    FLOAT,
    INT,
    STR,
    Arg,
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    need_rank,
    register_op,
)

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


def capacity(tokens: int, num_experts: int, top_k: int, capacity_factor: float) -> int:
    """Expert slots per sample: ceil(k * L * capacity_factor / E), at least 1."""
    return max(1, math.ceil(top_k * tokens * capacity_factor / num_experts))


class ExpertLinear(nn.Module):
    """E independent linear layers: weight [E, out, in], bias [E, out]."""

    def __init__(self, experts: int, fan_in: int, fan_out: int, device: Any = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(experts, fan_out, fan_in, device=device))
        self.bias = nn.Parameter(torch.empty(experts, fan_out, device=device))

    def forward(self, buf: torch.Tensor) -> torch.Tensor:
        """buf [N, E, C, in] -> [N, E, C, out]: each expert on its own slots."""
        return buf @ self.weight.transpose(-1, -2) + self.bias[:, None, :]


class Experts(nn.Module):
    def __init__(self, experts: int, dim: int, hidden: int, device: Any = None) -> None:
        super().__init__()
        self.fc1 = ExpertLinear(experts, dim, hidden, device)
        self.fc2 = ExpertLinear(experts, hidden, dim, device)


class MoEMLP(nn.Module):
    """Softmax-gated top-k mixture of expert MLPs with capacity (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        num_experts: int,
        top_k: int,
        capacity_factor: float,
        activation: str,
        device: Any = None,
    ) -> None:
        super().__init__()
        self.num_experts, self.top_k, self.capacity_factor = num_experts, top_k, capacity_factor
        self.act = _ACTIVATIONS[activation]
        self.gate = nn.Linear(dim, num_experts, bias=False, device=device)
        self.experts = Experts(num_experts, dim, hidden, device)
        self.aux_loss: torch.Tensor | None = None

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """(gates [N, L, k], experts [N, L, k], slots [N, L, k], capacity C); a slot >= C is a
        dropped choice. Adds this call's load-balancing loss to `aux_loss`."""
        n, length, _ = x.shape
        e, k = self.num_experts, self.top_k
        probs = self.gate(x).softmax(dim=-1)
        gates, idx = probs.topk(k, dim=-1)
        cap = capacity(length, e, k, self.capacity_factor)
        # priority: all first choices in token order, then all second choices, ...
        onehot = F.one_hot(idx, e).transpose(1, 2).reshape(n, k * length, e)
        slots = ((onehot.cumsum(dim=1) - 1) * onehot).sum(dim=-1)
        slots = slots.reshape(n, k, length).transpose(1, 2)
        first = onehot[:, :length].to(probs.dtype)  # the first choices
        aux = e * (first.mean(dim=1) * probs.mean(dim=1)).sum(dim=-1).mean()
        self.aux_loss = aux if self.aux_loss is None else self.aux_loss + aux
        return gates, idx, slots, cap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape
        gates, idx, slots, cap = self.route(x)
        kept = slots < cap
        sample = torch.arange(n, device=x.device)[:, None, None].expand_as(idx)
        tokens = x[:, :, None, :].expand(n, length, self.top_k, d)
        buf = x.new_zeros(n, self.num_experts, cap, d)
        buf = buf.index_put((sample[kept], idx[kept], slots[kept]), tokens[kept])
        out = self.experts.fc2(self.act(self.experts.fc1(buf)))
        picked = out[sample, idx, slots.clamp(max=cap - 1)]  # [N, L, k, D]
        weight = (gates * kept.to(gates.dtype))[..., None]
        return (picked * weight).sum(dim=2)


def collect_aux_loss(module: nn.Module) -> torch.Tensor | None:
    """The sum of the load-balancing losses every MoE layer in `module` computed since the last
    collection (None if none ran), and reset them: call once per training step and add it,
    scaled, to the task loss."""
    total = None
    for m in module.modules():
        if isinstance(m, MoEMLP) and m.aux_loss is not None:
            total = m.aux_loss if total is None else total + m.aux_loss
            m.aux_loss = None
    return total


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [3], "tokens [N, L, D]")
    e, k = args["num_experts"], args["top_k"]
    if e < 1 or not 1 <= k <= e:
        raise ShapeMismatch(
            "top_k must be between 1 and num_experts",
            expected=f"1 <= top_k <= num_experts ({e})",
            found=f"top_k={k}",
        )
    if args["hidden"] < 1 or not 0 < args["capacity_factor"] < math.inf:
        raise ShapeMismatch(
            "hidden and capacity_factor must be positive",
            expected="hidden >= 1, a finite capacity_factor > 0",
            found=f"hidden={args['hidden']}, capacity_factor={args['capacity_factor']}",
        )
    return x


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    d, h, e = ins[0].shape[2], args["hidden"], args["num_experts"]
    return {
        "gate.weight": ParamSpec((e, d), "kaiming_uniform", fan_in=d),
        "experts.fc1.weight": ParamSpec((e, h, d), "kaiming_uniform", fan_in=d),
        "experts.fc1.bias": ParamSpec((e, h), "fan_in_uniform", fan_in=d),
        "experts.fc2.weight": ParamSpec((e, d, h), "kaiming_uniform", fan_in=h),
        "experts.fc2.bias": ParamSpec((e, d), "fan_in_uniform", fan_in=h),
    }


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    n, length, d = ins[0].shape
    h, e, k = args["hidden"], args["num_experts"], args["top_k"]
    slots = n * e * capacity(length, e, k, args["capacity_factor"])
    gate = n * length * d * e
    experts = slots * 2 * d * h
    softmax = 5 * n * length * e
    pointwise = slots * (h + d) + slots * 8 * h + 2 * n * length * k * d  # biases, act, combine
    expert_params = e * (2 * d * h + h + d)
    return Cost(
        macs=gate + experts,
        flops=2 * (gate + experts) + softmax + pointwise,
        inactive_params=expert_params * (e - k) // e,
        active_macs=gate + n * length * k * 2 * d * h,
    )


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return MoEMLP(
        ins[0].shape[2],
        args["hidden"],
        args["num_experts"],
        args["top_k"],
        args["capacity_factor"],
        args["activation"],
        device="meta",
    )


MOE_MLP = register_op(
    OpDef(
        name="moe_mlp",
        doc="mixture-of-experts MLP over tokens [N, L, D]: softmax gate, top-k routing, "
        "expert capacity (overflow dropped), load-balancing loss in `aux_loss`",
        args={
            "num_experts": Arg(INT),
            "hidden": Arg(INT, doc="each expert's hidden width"),
            "top_k": Arg(INT, 2),
            "capacity_factor": Arg(FLOAT, 1.25),
            "activation": Arg(STR, "gelu", choices=tuple(_ACTIVATIONS)),
        },
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
        # channels=None: pruning sees an opaque op (its experts mix the token width)
    )
)

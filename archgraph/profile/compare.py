"""The contenders a profile is compared with, as ratios.

- `-O<n>` (--compare): the same graph compiled at another optimization level (before/after passes).
- `eager`: PyTorch running the same network op by op. For a spec named like a torchvision or
  timm model whose state_dict loads strictly and whose outputs equal ours, that reference model
  is the eager baseline; otherwise it is archgraph's own -O0 fx module, which is plain PyTorch
  ops (modules and torch functions, nothing fused) and so runs the way eager PyTorch does. Which
  one was used is recorded in the contender's description.
- `inductor`: torch.compile (backend inductor) of the eager baseline; its first call, which
  compiles, is timed separately from the steady-state latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from archgraph.errors import ArchgraphError
from archgraph.ir.graph import Graph

AGAINST = ("eager", "inductor")
PARITY_TOLERANCE = 1e-4  # max |ours - reference| / max |reference|


@dataclass
class Contender:
    name: str
    description: str
    fn: Callable[..., Any]
    first_call_s: float | None = None  # torch.compile: the call that compiles
    note: str = ""


def parse_against(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in AGAINST]
    if unknown or not names:
        raise ArchgraphError(
            "--against takes a comma-separated list of baselines",
            expected=", ".join(AGAINST),
            found=text,
        )
    return list(dict.fromkeys(names))


def parse_opt_level(text: str) -> int:
    """'-O1', 'O1' or '1'."""
    digits = text.lstrip("-").removeprefix("O")
    if not digits.isdigit():
        raise ArchgraphError(
            "--compare takes an optimization level", expected="-O0, -O1, ...", found=text
        )
    return int(digits)


def _reference_model(name: str) -> tuple[nn.Module, str] | None:
    import timm
    import torchvision

    if name in torchvision.models.list_models():
        return torchvision.models.get_model(name, weights=None), f"torchvision.models.{name}"
    if timm.is_model(name):
        return timm.create_model(name, pretrained=False), f"timm {name}"
    return None


def _outputs(result: Any) -> tuple[torch.Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)


def eager_baseline(
    graph: Graph, module_o0: fx.GraphModule, inputs: Sequence[torch.Tensor]
) -> tuple[nn.Module, str, str]:
    """The eager PyTorch module to compare with, its description, and a note on the choice."""
    found = _reference_model(graph.name)
    fallback = "archgraph -O0 fx module (plain PyTorch ops, nothing fused)"
    if found is None:
        return module_o0, fallback, f"no torchvision/timm model is named '{graph.name}'"
    reference, description = found
    try:
        reference.load_state_dict(module_o0.state_dict(), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        return module_o0, fallback, f"{description} does not load the spec's weights: {first}"
    reference = reference.eval().to(inputs[0].device)
    with torch.inference_mode():
        ours, theirs = _outputs(module_o0(*inputs)), _outputs(reference(*inputs))
    if len(ours) != len(theirs) or any(
        a.shape != b.shape for a, b in zip(ours, theirs, strict=True)
    ):
        return module_o0, fallback, f"{description} returns differently shaped outputs"
    error = max(
        float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
        for a, b in zip(ours, theirs, strict=True)
    )
    if error > PARITY_TOLERANCE:
        return (
            module_o0,
            fallback,
            f"{description} computes something else (max relative error {error:.1e})",
        )
    return reference, description, f"outputs equal archgraph's (max relative error {error:.1e})"


def inductor(eager: nn.Module, description: str, inputs: Sequence[torch.Tensor]) -> Contender:
    """torch.compile of the eager baseline, its first (compiling) call timed."""
    compiled = torch.compile(eager, backend="inductor")
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            compiled(*inputs)
    except Exception as e:  # noqa: BLE001 - inductor needs a C++ toolchain; report, don't crash
        raise ArchgraphError(
            "torch.compile (inductor) failed on this model",
            found=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
            hint="inductor on the CPU needs a working C++ compiler; leave inductor out of --against",
        ) from None
    if inputs and inputs[0].is_cuda:
        torch.cuda.synchronize()
    return Contender(
        "inductor",
        f"torch.compile({description}), backend inductor",
        compiled,
        time.perf_counter() - start,
    )

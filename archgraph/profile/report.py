"""A profile: analytic costs joined with measured latencies, as a terminal table and as JSON.

JSON schema (all numbers per batch of `batch` samples):
  model, batch, device, opt_level, compile_s,
  params, macs, flops,                      # totals; FLOPs = 2*MACs + pointwise/reduction work
  latency_ms, latency_p10_ms, latency_p90_ms, throughput_per_s,   # end to end, median after warm-up
  nodes: [{id, op, shape, params, macs, flops, latency_ms, share}]  # share of the summed node latency
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from archgraph.profile.costs import NodeCost, totals
from archgraph.profile.measure import Timing


@dataclass
class Profile:
    model: str
    batch: int
    device: str
    opt_level: int
    compile_s: float
    costs: list[NodeCost]
    node_times: dict[str, Timing] = field(default_factory=dict)
    end_to_end: Timing | None = None

    def to_json(self) -> dict[str, Any]:
        total = totals(self.costs)
        summed = sum(t.median_ms for t in self.node_times.values()) or 1.0
        e2e = self.end_to_end
        nodes = []
        for c in self.costs:
            if c.op == "input":
                continue
            t = self.node_times.get(c.id)
            nodes.append(
                {
                    "id": c.id,
                    "op": c.op,
                    "shape": list(c.shape),
                    "params": c.params,
                    "macs": c.macs,
                    "flops": c.flops,
                    "latency_ms": t.median_ms if t else None,
                    "share": (t.median_ms / summed) if t else None,
                }
            )
        return {
            "model": self.model,
            "batch": self.batch,
            "device": self.device,
            "opt_level": self.opt_level,
            "compile_s": self.compile_s,
            "params": total.params,
            "macs": total.macs,
            "flops": total.flops,
            "latency_ms": e2e.median_ms if e2e else None,
            "latency_p10_ms": e2e.p10_ms if e2e else None,
            "latency_p90_ms": e2e.p90_ms if e2e else None,
            "throughput_per_s": (self.batch * 1e3 / e2e.median_ms) if e2e else None,
            "nodes": nodes,
        }

    def write_json(self, path: str | Path) -> None:
        write_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")

    def print_table(self, console: Console) -> None:
        data = self.to_json()
        table = Table(title=f"{self.model} — batch {self.batch}, {self.device}, -O{self.opt_level}", show_lines=False)
        for col, justify in [("id", "left"), ("op", "left"), ("output shape", "left"), ("params", "right"),
                             ("MACs", "right"), ("FLOPs", "right"), ("latency ms", "right"), ("share", "right")]:
            table.add_column(col, justify=justify, no_wrap=col == "id")
        for n in data["nodes"]:
            lat = "" if n["latency_ms"] is None else f"{n['latency_ms']:.3f}"
            share = "" if n["share"] is None else f"{100 * n['share']:.1f}%"
            table.add_row(n["id"], n["op"], str(n["shape"]), f"{n['params']:,}", human(n["macs"]),
                          human(n["flops"]), lat, share)
        e2e = "" if data["latency_ms"] is None else f"{data['latency_ms']:.3f}"
        table.add_section()
        table.add_row("total", "", "", f"{data['params']:,}", human(data["macs"]), human(data["flops"]), e2e, "")
        console.print(table)
        if data["latency_ms"] is not None:
            console.print(
                f"params {data['params']:,} | MACs {human(data['macs'])} | FLOPs {human(data['flops'])} "
                f"(2 per MAC + pointwise) | latency median {data['latency_ms']:.2f} ms "
                f"(p10 {data['latency_p10_ms']:.2f}, p90 {data['latency_p90_ms']:.2f}) | "
                f"{data['throughput_per_s']:.1f} samples/s | compile {data['compile_s'] * 1e3:.0f} ms"
            )


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f} {unit}"
    return f"{n:.0f}"


def write_atomic(path: str | Path, text: str) -> None:
    """Write a whole file or nothing: a temporary sibling renamed into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)

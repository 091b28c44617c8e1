"""A profile: analytic costs joined with measured latencies and memory, as JSON (schema in
docs/profile-json.md and archgraph/profile/schema.py) and as a terminal table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from torch import fx

from archgraph.ir.graph import Graph
from archgraph.profile.costs import NodeCost, totals
from archgraph.profile.measure import NodeTimes, Timing
from archgraph.profile.phases import Phase

SCHEMA_ID = "archgraph.profile/2"


@dataclass(frozen=True)
class ContenderResult:
    """A baseline measured beside the profiled module (interleaved with it)."""

    name: str
    description: str
    latency: Timing
    first_call_s: float | None = None
    note: str = ""
    compile_s: float | None = None
    params: int | None = None
    macs: int | None = None
    flops: int | None = None
    peak_estimate_bytes: int | None = None


@dataclass
class PeakMemory:
    estimate_bytes: int
    estimate_method: str
    measured_bytes: int | None = None
    measured_method: str | None = None


@dataclass
class Profile:
    model: str
    batch: int
    device: str
    opt_level: int
    compile_s: float
    costs: list[NodeCost]
    graph: Graph | None = None  # the graph the module was lowered from
    module: fx.GraphModule | None = None  # the module that was measured
    load_s: float | None = None
    phases: list[Phase] = field(default_factory=list)
    node_times: NodeTimes | None = None
    end_to_end: Timing | None = None
    warmup: int = 0
    repeats: int = 0
    threads: int = 1
    peak: PeakMemory | None = None
    module_params: int | None = None
    contenders: list[ContenderResult] = field(default_factory=list)
    depth: int | None = None

    # ---- rows -----------------------------------------------------------------------------
    @property
    def computing_costs(self) -> list[NodeCost]:
        """The costs of the nodes that compute (graph inputs left out)."""
        return [c for c in self.costs if c.op != "input"]

    def node_rows(self) -> list[dict[str, Any]]:
        timings = self.node_times.timings if self.node_times else {}
        summed = sum(t.median_ms for t in timings.values()) or 1.0
        rows = []
        for c in self.computing_costs:
            t = timings.get(c.id)
            rows.append(
                {
                    "id": c.id,
                    "op": c.op,
                    "shape": list(c.shape),
                    "params": c.params,
                    "macs": c.macs,
                    "flops": c.flops,
                    "matmul_flops": c.matmul_flops,
                    "other_flops": c.other_flops,
                    "activation_bytes": c.out_bytes,
                    "bytes_read": c.bytes_read,
                    "bytes_written": c.bytes_written,
                    "memory_access_bytes": c.memory_access_bytes,
                    "conv_mac": c.conv_mac,
                    "latency_ms": t.median_ms if t else None,
                    "latency_p10_ms": t.p10_ms if t else None,
                    "latency_p90_ms": t.p90_ms if t else None,
                    "share": (t.median_ms / summed) if t else None,
                }
            )
        return rows

    # ---- JSON -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        costs = self.computing_costs
        total = totals(costs)
        e2e, timings = self.end_to_end, (self.node_times.timings if self.node_times else {})
        nodes = self.node_rows()
        data: dict[str, Any] = {
            "schema": SCHEMA_ID,
            "model": self.model,
            "batch": self.batch,
            "device": self.device,
            "opt_level": self.opt_level,
            "threads": self.threads,
            "params": total.params,
            "module_params": self.module_params,
            "active_params": total.active_params,
            "macs": total.macs,
            "macs_per_token": total.macs_per_token,
            "flops": total.flops,
            "matmul_flops": 2 * total.macs,
            "other_flops": total.flops - 2 * total.macs,
            "uncounted": [
                {"id": c.id, "op": c.op, "reason": c.reason} for c in costs if not c.counted
            ],
            "activation_bytes": total.out_bytes,
            "weight_bytes": total.weight_bytes,
            "memory_access_bytes": total.memory_access_bytes,
            "conv_mac": total.conv_mac,
            "latency_ms": e2e.median_ms if e2e else None,
            "latency_p10_ms": e2e.p10_ms if e2e else None,
            "latency_p90_ms": e2e.p90_ms if e2e else None,
            "throughput_per_s": (self.batch * 1e3 / e2e.median_ms) if e2e else None,
            "node_latency_sum_ms": sum(t.median_ms for t in timings.values()) if timings else None,
            "timer": ("cuda_events" if self.device.startswith("cuda") else "perf_counter")
            if e2e
            else None,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "peak_memory": None
            if self.peak is None
            else {
                "estimate_bytes": self.peak.estimate_bytes,
                "estimate_method": self.peak.estimate_method,
                "measured_bytes": self.peak.measured_bytes,
                "measured_method": self.peak.measured_method,
            },
            "load_s": self.load_s,
            "compile_s": self.compile_s,
            "compile_phases": [{"name": p.name, "seconds": p.seconds} for p in self.phases],
            "nodes": nodes,
            "groups": group_rows(nodes, self.depth) if self.depth else None,
            "depth": self.depth,
            "comparisons": [self._contender_json(c, total) for c in self.contenders],
        }
        return data

    def _contender_json(self, c: ContenderResult, total: NodeCost) -> dict[str, Any]:
        own = {
            "latency_ms": self.end_to_end.median_ms if self.end_to_end else None,
            "compile_s": self.compile_s,
            "params": total.params,
            "macs": total.macs,
            "flops": total.flops,
            "peak_estimate_bytes": self.peak.estimate_bytes if self.peak else None,
        }
        theirs = {
            "latency_ms": c.latency.median_ms,
            "compile_s": c.compile_s,
            "params": c.params,
            "macs": c.macs,
            "flops": c.flops,
            "peak_estimate_bytes": c.peak_estimate_bytes,
        }
        return {
            "name": c.name,
            "description": c.description,
            "note": c.note,
            **theirs,
            "latency_p10_ms": c.latency.p10_ms,
            "latency_p90_ms": c.latency.p90_ms,
            "first_call_s": c.first_call_s,
            "ratios": {k: _ratio(own[k], v) for k, v in theirs.items()},
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    # ---- terminal -------------------------------------------------------------------------
    def print_table(self, console: Console) -> None:
        data = self.to_json()
        title = f"{self.model} — batch {self.batch}, {self.device}, -O{self.opt_level}"
        if self.depth:
            _print_rows(
                console, title + f", grouped at depth {self.depth}", data["groups"], "scope"
            )
        else:
            _print_rows(console, title, data["nodes"], "id")
        for line in summary_lines(data):
            console.print(line)
        if data["comparisons"]:
            _print_comparisons(console, data)


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def group_rows(nodes: list[dict[str, Any]], depth: int) -> list[dict[str, Any]]:
    """Node rows summed by the first `depth` components of their dotted ids, in first-seen
    order. A group's MACs/FLOPs are None when one of its nodes is uncounted."""
    groups: dict[str, dict[str, Any]] = {}
    for n in nodes:
        scope = ".".join(n["id"].split(".")[:depth])
        g = groups.setdefault(
            scope,
            {
                "scope": scope,
                "nodes": 0,
                "ops": [],
                "params": 0,
                "macs": 0,
                "flops": 0,
                "activation_bytes": 0,
                "memory_access_bytes": 0,
                "latency_ms": None,
                "share": None,
            },
        )
        g["nodes"] += 1
        if n["op"] not in g["ops"]:
            g["ops"].append(n["op"])
        for key in ("params", "activation_bytes", "memory_access_bytes"):
            g[key] += n[key]
        for key in ("macs", "flops"):
            g[key] = None if g[key] is None or n[key] is None else g[key] + n[key]
        for key in ("latency_ms", "share"):
            if n[key] is not None:
                g[key] = (g[key] or 0.0) + n[key]
    return list(groups.values())


_COLUMNS = [
    ("op", "left"),
    ("output shape", "left"),
    ("params", "right"),
    ("MACs", "right"),
    ("FLOPs", "right"),
    ("act. bytes", "right"),
    ("mem. access", "right"),
    ("ms (median)", "right"),
    ("p10–p90 ms", "right"),
    ("share", "right"),
]


def _print_rows(console: Console, title: str, rows: list[dict[str, Any]], key: str) -> None:
    table = Table(title=title, show_lines=False)
    table.add_column(key, justify="left", no_wrap=True)
    for col, justify in _COLUMNS:
        table.add_column(col, justify=justify, no_wrap=True)
    for r in rows:
        lat = r["latency_ms"]
        spread = (
            f"{r['latency_p10_ms']:.3f}–{r['latency_p90_ms']:.3f}"
            if r.get("latency_p10_ms") is not None
            else ""
        )
        table.add_row(
            r[key],
            r["op"] if "op" in r else (r["ops"][0] if r["nodes"] == 1 else f"{r['nodes']} nodes"),
            str(r["shape"]) if "shape" in r else "",
            f"{r['params']:,}",
            _count(r["macs"]),
            _count(r["flops"]),
            human_bytes(r["activation_bytes"]),
            human_bytes(r["memory_access_bytes"]),
            "" if lat is None else f"{lat:.3f}",
            spread,
            "" if r["share"] is None else f"{100 * r['share']:.1f}%",
        )
    console.print(table)


def _count(n: int | None) -> str:
    return "?" if n is None else human(n)


def summary_lines(data: dict[str, Any]) -> list[str]:
    lines = [
        f"params {data['params']:,} (the compiled module holds {data['module_params']:,}, each tensor once) | "
        if data["module_params"] is not None
        else f"params {data['params']:,} | ",
    ]
    if data.get("active_params", data["params"]) != data["params"]:
        lines[0] += f"active params {data['active_params']:,} per token (MoE: top-k experts) | "
    if data.get("macs_per_token") is not None:
        lines[0] += f"MACs per token {human(round(data['macs_per_token']))} (token layers) | "
    lines[0] += (
        f"MACs {human(data['macs'])} | FLOPs {human(data['flops'])} = matmul {human(data['matmul_flops'])} "
        f"(2 per MAC) + other {human(data['other_flops'])} (pointwise, norm, softmax, pooling) | "
        f"activations {human_bytes(data['activation_bytes'])}, weights {human_bytes(data['weight_bytes'])}, "
        f"memory access {human_bytes(data['memory_access_bytes'])}"
    )
    if data["uncounted"]:
        lines.append(
            f"NOT COUNTED ({len(data['uncounted'])} nodes; MACs/FLOPs above leave them out): "
            + "; ".join(f"{u['id']} ({u['op']}): {u['reason']}" for u in data["uncounted"])
        )
    if data["latency_ms"] is not None:
        lines.append(
            f"latency median {data['latency_ms']:.3f} ms (p10 {data['latency_p10_ms']:.3f}, p90 "
            f"{data['latency_p90_ms']:.3f}) over {data['repeats']} runs after {data['warmup']} warm-up, "
            f"{data['timer']}, {data['threads']} threads | {data['throughput_per_s']:.1f} samples/s at batch "
            f"{data['batch']} | per-node medians sum to {data['node_latency_sum_ms']:.3f} ms"
        )
    peak = data["peak_memory"]
    if peak is not None:
        measured = (
            f", measured {human_bytes(peak['measured_bytes'])} ({peak['measured_method']})"
            if peak["measured_bytes"] is not None
            else ""
        )
        lines.append(
            f"peak activation memory: estimate {human_bytes(peak['estimate_bytes'])} (liveness){measured}"
        )
    phases = ", ".join(f"{p['name']} {p['seconds'] * 1e3:.1f} ms" for p in data["compile_phases"])
    load = f"load spec {data['load_s'] * 1e3:.1f} ms; " if data["load_s"] is not None else ""
    lines.append(
        f"{load}compile {data['compile_s'] * 1e3:.1f} ms" + (f": {phases}" if phases else "")
    )
    return lines


# The comparison table's columns, in the terminal and in the HTML report (which adds a note).
COMPARISON_COLUMNS = (
    "baseline",
    "what it is",
    "ms (median)",
    "p10–p90 ms",
    "latency ratio",
    "MACs ratio",
    "params ratio",
    "peak est. ratio",
    "first call s",
)


def _print_comparisons(console: Console, data: dict[str, Any]) -> None:
    subject = f"archgraph -O{data['opt_level']}"
    table = Table(title=f"{subject} relative to each baseline (ratio = {subject} / baseline)")
    for col in COMPARISON_COLUMNS:
        table.add_column(col, justify="left" if col in ("baseline", "what it is") else "right")
    table.add_row(
        subject,
        "this profile",
        f"{data['latency_ms']:.3f}",
        f"{data['latency_p10_ms']:.3f}–{data['latency_p90_ms']:.3f}",
        "1.00x",
        "",
        "",
        "",
        "",
    )
    for c in data["comparisons"]:
        r = c["ratios"]
        table.add_row(
            c["name"],
            c["description"],
            f"{c['latency_ms']:.3f}",
            f"{c['latency_p10_ms']:.3f}–{c['latency_p90_ms']:.3f}",
            _times(r["latency_ms"]),
            _times(r["macs"]),
            _times(r["params"]),
            _times(r["peak_estimate_bytes"]),
            "" if c["first_call_s"] is None else f"{c['first_call_s']:.1f}",
        )
    console.print(table)
    for c in data["comparisons"]:
        if c["note"]:
            console.print(f"{c['name']}: {c['note']}")


def _times(r: float | None) -> str:
    return "" if r is None else f"{r:.2f}x"


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f} {unit}"
    return f"{n:.0f}"


def human_bytes(n: float | None) -> str:
    if n is None:
        return ""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"

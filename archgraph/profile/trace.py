"""A Chrome trace (chrome://tracing, Perfetto) of one measured run: one complete event
(ph "X", ts and dur in microseconds) per node, taken from the run whose node total is the
median of the timed runs."""

from __future__ import annotations

import json
from typing import Any

from archgraph.profile.report import Profile


def chrome_trace(profile: Profile) -> dict[str, Any]:
    if profile.node_times is None or not profile.node_times.median_run:
        raise ValueError("the profile has no measured node times to trace")
    rows = {r["id"]: r for r in profile.node_rows()}
    spans = profile.node_times.median_run
    events: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "pid": 0,
            "tid": 0,
            "args": {
                "name": f"archgraph {profile.model} ({profile.device}, -O{profile.opt_level}, batch {profile.batch})"
            },
        },
        {
            "name": "thread_name",
            "ph": "M",
            "pid": 0,
            "tid": 0,
            "args": {"name": "nodes (median run)"},
        },
    ]
    end = max(s.start_s + s.duration_s for s in spans)
    events.append(
        {
            "name": "forward",
            "cat": "model",
            "ph": "X",
            "pid": 0,
            "tid": 0,
            "ts": 0.0,
            "dur": end * 1e6,
        }
    )
    for span in spans:
        row = rows.get(span.id, {})
        events.append(
            {
                "name": span.id,
                "cat": row.get("op", "node"),
                "ph": "X",
                "pid": 0,
                "tid": 0,
                "ts": span.start_s * 1e6,
                "dur": span.duration_s * 1e6,
                "args": {
                    k: row[k]
                    for k in ("op", "shape", "params", "macs", "flops", "latency_ms", "share")
                    if k in row
                },
            }
        )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"model": profile.model, "schema": "archgraph.trace/1"},
    }


def chrome_trace_text(profile: Profile) -> str:
    return json.dumps(chrome_trace(profile), indent=1) + "\n"

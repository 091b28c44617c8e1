"""What a sweep can record about a point, and the table columns each metric fills.

Costs are those of the graph as compiled at the point's -O level (what `archgraph compile
--profile` reports), taken at the sweep's batch size:

  params          trainable parameters
  macs, flops     the ops' cost rules (profile/costs.py); `uncounted` lists nodes no rule counts
  memory_access   bytes read + written by all nodes (`memory_access_bytes`)
  conv_mac        VoVNet's memory access cost of the conv layers, in elements
  peak_memory     liveness estimate of peak activation bytes (`peak_bytes`)
  latency         median, p10 and p90 of end-to-end calls, in ms, after warm-up (measured)
  peak_memory_measured  peak bytes allocated during one call (`peak_measured_bytes`, measured)
  synflow         log10 of the SynFlow score (Tanaka et al. 2020), a zero-cost accuracy proxy
                  (see synflow.py); there is no trained accuracy in a sweep

Measured columns (and `seconds`, a point's wall time) vary from run to run; everything else is a
function of the point's settings alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    columns: tuple[str, ...]
    measured: bool = False  # needs the point's cores to itself while it runs


METRICS: dict[str, Metric] = {
    "params": Metric(("params",)),
    "macs": Metric(("macs", "uncounted")),
    "flops": Metric(("flops", "uncounted")),
    "memory_access": Metric(("memory_access_bytes",)),
    "conv_mac": Metric(("conv_mac",)),
    "peak_memory": Metric(("peak_bytes",)),
    "latency": Metric(("latency_ms", "latency_p10_ms", "latency_p90_ms"), measured=True),
    "peak_memory_measured": Metric(("peak_measured_bytes",), measured=True),
    "synflow": Metric(("synflow",)),
}
NUMERIC_COLUMNS = frozenset(c for m in METRICS.values() for c in m.columns) - {"uncounted"}
# columns that differ between two runs of the same point
TIMING_COLUMNS = frozenset(
    {"latency_ms", "latency_p10_ms", "latency_p90_ms", "peak_measured_bytes", "seconds"}
)


def metric_columns(metrics: tuple[str, ...]) -> list[str]:
    """The columns `metrics` fill, in order, each once."""
    out: list[str] = []
    for name in metrics:
        out.extend(c for c in METRICS[name].columns if c not in out)
    return out


def measured(metrics: tuple[str, ...]) -> bool:
    return any(METRICS[m].measured for m in metrics)

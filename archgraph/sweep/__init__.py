"""Design-space sweeps: a sweep file names a base spec and the settings to vary (spec params,
rewrites, prunes, -O levels); every point runs in isolation on a local process pool or as Ray
tasks, its metrics are appended to a CSV table as it finishes, and an HTML report draws the
Pareto front. docs/sweeps.md describes the file format and the outputs.

    result = archgraph.sweep.run_sweep("examples/sweep_vovnet.yaml", workers=2)
"""

from archgraph.sweep.fileformat import SweepFile, load_sweep
from archgraph.sweep.runner import SweepResult, run_sweep

__all__ = ["SweepFile", "SweepResult", "load_sweep", "run_sweep"]

"""Graph passes: the PassManager, one module per pass, and the -O level pipelines.

graph, reports = run_pipeline(graph, opt_level=2)       # weights bound first
graph, reports = run_pipeline(graph, passes="fold_bn,fuse_conv")
for r in reports: print(r.line())
"""

from archgraph.passes.manager import Change, Pass, PassManager, PassReport
from archgraph.passes.pipelines import (
    LEVELS,
    MODES,
    PASSES,
    TRAIN_LEVELS,
    TRAIN_SAFE,
    explain,
    parse_passes,
    pass_context,
    pipeline,
    register_pass,
    run_pipeline,
)

__all__ = [
    "LEVELS",
    "MODES",
    "PASSES",
    "TRAIN_LEVELS",
    "TRAIN_SAFE",
    "Change",
    "Pass",
    "explain",
    "PassManager",
    "PassReport",
    "parse_passes",
    "pass_context",
    "pipeline",
    "register_pass",
    "run_pipeline",
]

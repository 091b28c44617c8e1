"""Graph passes: the PassManager, one module per pass, and the -O level pipelines.

graph, reports = run_pipeline(graph, opt_level=2)       # weights bound first
graph, reports = run_pipeline(graph, passes="fold_bn,fuse_conv")
for r in reports: print(r.line())
"""

from archgraph.passes.manager import Change, Pass, PassManager, PassReport
from archgraph.passes.pipelines import (
    LEVELS,
    PASSES,
    explain,
    parse_passes,
    pass_context,
    pipeline,
    register_pass,
    run_pipeline,
)

__all__ = [
    "LEVELS",
    "PASSES",
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

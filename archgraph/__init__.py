"""archgraph: a graph-based neural architecture compiler.

graph = archgraph.load("resnet50")            # a YAML spec, or a zoo name
module = archgraph.compile(graph, weights=sd) # torch.fx.GraphModule
c = archgraph.build("resnet50", 2)            # load, transform, compile once, cost: a Compilation
"""

from archgraph import blocks as _blocks  # noqa: F401  (registers the built-in blocks)
from archgraph import ops as _ops  # noqa: F401  (registers the built-in ops)
from archgraph import plugins  # archgraph.plugins.load_plugin("my_ops.py")
from archgraph.api import Compilation, Measure, build, compile, load, zoo
from archgraph.blocks.registry import register_block
from archgraph.builder import Builder, Value
from archgraph.errors import ArchgraphError, SpecError
from archgraph.ir import Graph, TensorType
from archgraph.ops.registry import register_op
from archgraph.passes.prune import prune_channels, prune_weights
from archgraph.passes.rewrites import rewrite
from archgraph.spec import Limits

__all__ = [
    "ArchgraphError",
    "Builder",
    "Compilation",
    "Graph",
    "Limits",
    "Measure",
    "SpecError",
    "TensorType",
    "Value",
    "build",
    "compile",
    "load",
    "plugins",
    "prune_channels",
    "prune_weights",
    "register_block",
    "register_op",
    "rewrite",
    "zoo",
]
__version__ = "0.1.0"

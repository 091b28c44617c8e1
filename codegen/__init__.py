"""archgraph's back end (installed as archgraph.codegen): lowering to torch.fx."""

from archgraph.codegen.fx import lower

__all__ = ["lower"]

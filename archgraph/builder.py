"""The Python graph API. The YAML front end makes exactly these calls, so both syntaxes share one
semantics: every node is checked (op, args, arity, shapes) the moment it is added, and an error
names the node id and where it was written (the spec position, or the user's Python line)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from archgraph.blocks.registry import BlockDef, get_block
from archgraph.errors import ArchgraphError, Loc, SpecError
from archgraph.ir.graph import Graph, Node
from archgraph.ir.sharing import check_share
from archgraph.ir.types import TensorType
from archgraph.ir.validate import validate
from archgraph.ops.registry import ShapeMismatch, get_op

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The name of a node or block call that takes the id of the block call it is in, so a one-op
# block called as `features.2.0` can own `features.2.0.weight`.
SELF = "."


def _caller_loc() -> Loc | None:
    """The first stack frame outside archgraph: where a Python user made the call."""
    frame = sys._getframe(2)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return Loc(frame.f_code.co_filename, frame.f_lineno) if frame is not None else None


@dataclass(frozen=True)
class Value:
    """A handle on a node's output while building: its id and type."""

    id: str
    type: TensorType

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def channels(self) -> int:
        return self.type.shape[1]


class Builder:
    """Builds a Graph node by node.

    >>> b = Builder("tiny")
    >>> x = b.input("x", [3, 32, 32])
    >>> y = b.node("conv2d", x, name="conv", out_channels=8, kernel_size=3, padding=1)
    >>> b.output(b.node("relu", y, name="act"))
    >>> graph = b.build()
    """

    def __init__(self, name: str, description: str = "", *, batch: int = 1) -> None:
        if not isinstance(batch, int) or batch < 1:
            raise SpecError(
                "batch size must be a positive integer", expected=">= 1", found=repr(batch)
            )
        self.graph = Graph(name, description)
        self.batch = batch
        self._scope: list[str] = []
        self._auto: dict[str, int] = {}

    # ---- naming ---------------------------------------------------------------------------
    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Nodes added inside get ids prefixed with the dotted scope ('layer1.0.conv1');
        the scope SELF ('.') is the enclosing one."""
        if name == SELF:
            self._own_scope()
            yield
            return
        self._scope.append(str(name))
        try:
            yield
        finally:
            self._scope.pop()

    def qualify(self, name: str) -> str:
        """The id of `name` in the current scope; SELF ('.') is the scope's own id."""
        if name == SELF:
            return self._own_scope()
        return ".".join([*self._scope, name])

    def _own_scope(self) -> str:
        if not self._scope:
            raise SpecError(
                "the name '.' stands for the block call it is in, and there is none here",
                expected="'.' inside a block (a template or a block function)",
                found="'.' at the top level",
                hint="give the node a name",
            )
        return ".".join(self._scope)

    def _fresh(self, op: str) -> str:
        base = self.qualify(op)
        while True:
            n = self._auto.get(base, 0)
            self._auto[base] = n + 1
            candidate = base if n == 0 else f"{base}_{n}"
            if candidate not in self.graph:
                return candidate

    def value(self, node_id: str) -> Value:
        return Value(node_id, self.graph[node_id].type)

    # ---- nodes ----------------------------------------------------------------------------
    def input(
        self,
        name: str,
        shape: list[int] | tuple[int, ...],
        dtype: str = "float32",
        *,
        loc: Loc | None = None,
    ) -> Value:
        """A graph input; `shape` is per sample (the builder's batch size is put in front)."""
        if not isinstance(shape, list | tuple):
            raise SpecError(
                f"input '{name}' needs a shape",
                node=name,
                loc=loc or _caller_loc(),
                expected="a list of positive sizes, e.g. [3, 224, 224]",
                found=repr(shape),
            )
        return self.node("input", name=name, loc=loc, shape=[self.batch, *shape], dtype=dtype)

    def node(
        self,
        op: str,
        *inputs: Value,
        name: str | None = None,
        loc: Loc | None = None,
        share: str | None = None,
        **args: Any,
    ) -> Value:
        """Add one op node; returns its output. Raises SpecError located at `loc`.

        share: the full id of an earlier node of the same op and arguments whose parameters
        this node uses (archgraph.ir.sharing); the state_dict holds them once, under that id."""
        loc = loc or _caller_loc()
        node_id = self.qualify(name) if name is not None else self._fresh(op)
        try:
            if node_id in self.graph:
                raise SpecError(f"duplicate node id '{node_id}'", hint="give the node another name")
            opdef = get_op(op)
            opdef.check_arity(len(inputs))
            norm = opdef.normalize_args(args)
            out = opdef.infer(norm, [v.type for v in inputs])
            node = Node(node_id, op, tuple(v.id for v in inputs), norm, out, loc, share)
            check_share(self.graph, node)
        except ShapeMismatch as e:
            found = e.found
            if e.input_index is not None and e.input_index < len(inputs):
                found = f"{found} from '{inputs[e.input_index].id}'"
            field = "in" if e.input_index is not None else None
            raise SpecError(
                e.message, node=node_id, loc=loc, expected=e.expected, found=found, field=field
            ) from None
        except ArchgraphError as e:
            raise e.located(loc, node_id) from None
        self.graph.add(node)
        return Value(node_id, out)

    def block(
        self, block: str | BlockDef, *inputs: Value, name: str, loc: Loc | None = None, **args: Any
    ) -> Value:
        """Call a block (a registered name, or a BlockDef) inside the scope `name`."""
        loc = loc or _caller_loc()
        try:
            bdef = block if isinstance(block, BlockDef) else get_block(block)
            bdef.check_args(args)
        except ArchgraphError as e:
            raise e.located(loc, self.qualify(name)) from None
        with self.scope(name):
            return bdef.fn(self, *inputs, **args)

    def output(self, *values: Value) -> None:
        for v in values:
            if v.id not in self.graph.outputs:
                self.graph.outputs.append(v.id)

    def build(self) -> Graph:
        """Finish: verify the whole graph and hand it over."""
        if not self.graph.outputs:
            raise SpecError(
                "the network has no outputs", hint="call output(...) / list `outputs:` in the spec"
            )
        validate(self.graph)
        return self.graph

    def __getattr__(self, op: str) -> Any:
        """`b.conv2d(x, name=..., ...)` is `b.node("conv2d", x, name=..., ...)`."""
        if op.startswith("_"):
            raise AttributeError(op)

        def call(*inputs: Value, **kwargs: Any) -> Value:
            return self.node(op, *inputs, **kwargs)

        return call

"""The Builder the YAML front end uses: the same calls a Python user makes, with a spec's limits
enforced on every node as it is added (count, tensor sizes of outputs and parameters), nodes made
by Python blocks located at the spec entry that called the block, and Python exceptions from an
op's rules turned into located errors (RuleCrash)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from archgraph.builder import Builder, Value
from archgraph.errors import ArchgraphError, Loc, SpecError
from archgraph.ops.registry import get_op
from archgraph.spec.limits import Limits, limit_hint


class RuleCrash(SpecError):
    """A spec value made an op's or a block's Python code raise instead of reporting a SpecError.

    The spec is at fault (the error is located like any other), but the rule should have said
    what is wrong: the fuzzer counts these as bugs in the rule. The original exception is kept
    as `__cause__`.
    """

    @classmethod
    def of(cls, what: str, exc: BaseException, loc: Loc | None, node: str | None) -> RuleCrash:
        crash = cls(
            f"{what} failed on these arguments: {type(exc).__name__}: {str(exc)[:200]}",
            loc=loc,
            node=node,
            hint="check the argument values; archgraph should have said what is wrong here, "
            "so please report it",
        )
        crash.__cause__ = exc
        return crash


class BoundedBuilder(Builder):
    def __init__(
        self, name: str, description: str = "", *, batch: int = 1, limits: Limits = Limits()
    ) -> None:
        super().__init__(name, description, batch=batch)
        self.limits = limits
        self._call_locs: list[Loc] = []
        self._edges = 0

    @contextmanager
    def called_from(self, loc: Loc) -> Iterator[None]:
        """Nodes a Python block adds without a location get the spec entry that called it."""
        self._call_locs.append(loc)
        try:
            yield
        finally:
            self._call_locs.pop()

    def node(
        self, op: str, *inputs: Value, name: str | None = None, loc: Loc | None = None, **args: Any
    ) -> Value:
        loc = loc or (self._call_locs[-1] if self._call_locs else None)
        if len(self.graph) >= self.limits.max_graph_nodes:
            raise SpecError(
                "the network has too many nodes",
                loc=loc,
                node=self.qualify(name or op),
                expected=f"at most {self.limits.max_graph_nodes} nodes",
                found="more",
                hint=limit_hint("max_graph_nodes"),
            )
        self._edges += len(inputs)
        if self._edges > self.limits.max_graph_edges:
            raise SpecError(
                "the network has too many connections (node inputs, counted over all nodes)",
                loc=loc,
                node=self.qualify(name or op),
                expected=f"at most {self.limits.max_graph_edges}",
                found="more",
                hint=limit_hint("max_graph_edges"),
            )
        try:
            value = super().node(op, *inputs, name=name, loc=loc, **args)
            self._check_sizes(value, [v.type for v in inputs], loc)
        except ArchgraphError:
            raise
        except Exception as e:
            raise RuleCrash.of(f"op '{op}'", e, loc, self.qualify(name) if name else None) from e
        return value

    def _check_sizes(self, value: Value, ins: list[Any], loc: Loc | None) -> None:
        node = self.graph[value.id]
        shape = node.type.shape
        if any(not isinstance(d, int) or d < 1 for d in shape):
            raise SpecError(
                f"op '{node.op}' would produce an empty or negative shape",
                loc=loc,
                node=node.id,
                expected="positive sizes in every dimension",
                found=str(node.type),
                hint="check the sizes, strides and padding that lead here",
            )
        tensors = {"output": node.type.numel}
        for pname, spec in get_op(node.op).params(node.args, ins).items():
            tensors[f"parameter '{pname or node.id}'"] = spec.numel
        limit = self.limits.max_tensor_elements
        for what, numel in tensors.items():
            if numel > limit:
                raise SpecError(
                    f"the {what} of op '{node.op}' is too large",
                    loc=loc,
                    node=node.id,
                    expected=f"at most {limit} elements",
                    found=f"{numel} elements" + (f" {node.type}" if what == "output" else ""),
                    hint=limit_hint("max_tensor_elements"),
                )

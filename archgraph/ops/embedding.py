"""Embeddings of tabular fields (CTR models such as AutoInt, Song et al. 2019).

- `embedding`: one table shared by every index, int64 [N, ...] -> [N, ..., D] (torch's nn.Embedding).
- `field_embedding`: one table per categorical field, int64 [N, F] -> [N, F, D]; field i looks up
  its own index x[:, i] in its own table `tables.<i>` of `vocab_sizes[i]` rows.
- `numeric_embedding`: one learned vector per numerical field, scaled by the field's value,
  float [N, F] -> [N, F, D] with e_i = x_i * v_i (AutoInt's embedding of numerical features).

Lookups are gathers: they count no MACs and no FLOPs. Tables start from a truncated normal
(std 0.02), as the small-init embeddings of CTR codebases do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    INT,
    INTS,
    Arg,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    free,
    need_rank,
    pointwise_cost,
    register_op,
)


def _need_indices(x: TensorType) -> None:
    if x.dtype != "int64":
        raise ShapeMismatch(
            "embedding lookups need integer indices",
            expected="an int64 tensor of indices",
            found=str(x),
            input_index=0,
        )


def _need_positive(value: int, what: str) -> None:
    if value < 1:
        raise ShapeMismatch(f"{what} must be positive", expected=">= 1", found=str(value))


# ---- embedding: one shared table ----------------------------------------------------------
def _embedding_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = ins[0]
    _need_indices(x)
    _need_positive(args["num_embeddings"], "num_embeddings")
    _need_positive(args["embedding_dim"], "embedding_dim")
    return TensorType((*x.shape, args["embedding_dim"]), "float32")


def _embedding_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    return {"weight": ParamSpec((args["num_embeddings"], args["embedding_dim"]), "trunc_normal")}


def _embedding_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return nn.Embedding(args["num_embeddings"], args["embedding_dim"], device="meta")


EMBEDDING = register_op(
    OpDef(
        name="embedding",
        doc="look int64 indices [N, ...] up in one table: [N, ..., embedding_dim]",
        args={"num_embeddings": Arg(INT), "embedding_dim": Arg(INT)},
        infer=_embedding_infer,
        params=_embedding_params,
        cost=free,
        module=_embedding_module,
    )
)


# ---- field_embedding: one table per categorical field -------------------------------------
class FieldEmbedding(nn.Module):
    """Field i of x [N, F] is looked up in `tables[i]`; the results are stacked to [N, F, D]."""

    def __init__(self, vocab_sizes: tuple[int, ...], dim: int, device: Any = None) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(v, dim, device=device) for v in vocab_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([table(x[:, i]) for i, table in enumerate(self.tables)], dim=1)


def _field_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [2], "field indices [N, F]")
    _need_indices(x)
    vocab_sizes = args["vocab_sizes"]
    if len(vocab_sizes) != x.shape[1]:
        raise ShapeMismatch(
            "field_embedding needs one vocabulary size per field",
            expected=f"{x.shape[1]} vocab_sizes (one per field of {x})",
            found=f"{len(vocab_sizes)}",
        )
    for size in vocab_sizes:
        _need_positive(size, "every vocabulary size")
    _need_positive(args["embedding_dim"], "embedding_dim")
    return TensorType((x.shape[0], x.shape[1], args["embedding_dim"]), "float32")


def _field_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    dim = args["embedding_dim"]
    return {
        f"tables.{i}.weight": ParamSpec((size, dim), "trunc_normal")
        for i, size in enumerate(args["vocab_sizes"])
    }


def _field_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return FieldEmbedding(args["vocab_sizes"], args["embedding_dim"], device="meta")


FIELD_EMBEDDING = register_op(
    OpDef(
        name="field_embedding",
        doc="one table per categorical field: int64 [N, F] -> [N, F, embedding_dim]",
        args={
            "vocab_sizes": Arg(INTS, doc="rows of each field's table"),
            "embedding_dim": Arg(INT),
        },
        infer=_field_infer,
        params=_field_params,
        cost=free,
        module=_field_module,
    )
)


# ---- numeric_embedding: a learned vector per numerical field, scaled by its value ----------
class NumericEmbedding(nn.Module):
    """e_i = x_i * v_i: x [N, F] times `weight` [F, D] (one row v_i per field) -> [N, F, D]."""

    def __init__(self, num_fields: int, dim: int, device: Any = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_fields, dim, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) * self.weight


def _numeric_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [2], "numerical fields [N, F]")
    if not x.torch_dtype.is_floating_point:
        raise ShapeMismatch(
            "numeric_embedding scales vectors by field values",
            expected="a floating-point tensor [N, F]",
            found=str(x),
            input_index=0,
        )
    _need_positive(args["embedding_dim"], "embedding_dim")
    return x.with_shape((x.shape[0], x.shape[1], args["embedding_dim"]))


def _numeric_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    return {"weight": ParamSpec((ins[0].shape[1], args["embedding_dim"]), "trunc_normal")}


def _numeric_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return NumericEmbedding(ins[0].shape[1], args["embedding_dim"], device="meta")


NUMERIC_EMBEDDING = register_op(
    OpDef(
        name="numeric_embedding",
        doc="a learned vector per numerical field scaled by its value: [N, F] -> [N, F, D]",
        args={"embedding_dim": Arg(INT)},
        infer=_numeric_infer,
        params=_numeric_params,
        cost=pointwise_cost(1),
        module=_numeric_module,
    )
)

"""AutoInt blocks (Song et al. 2019, "AutoInt: Automatic Feature Interaction Learning via
Self-Attentive Neural Networks").

`autoint_embedding` maps the raw fields to one D-dim embedding per field: numerical fields by a
learned vector scaled by the value (`numerical`), categorical fields by a table per field
(`categorical`); numerical fields come first in the stacked [N, F_num + F_cat, D] (`fields`).
`interacting_layers` stacks the interacting layers (the `interacting` op), ids `<scope>.0`,
`<scope>.1`, ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin
from archgraph.errors import SpecError

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


@builtin
def autoint_embedding(
    b: Builder, numerical: Value, categorical: Value, *, dim: int, vocab_sizes: list[int]
) -> Value:
    """Field embeddings [N, F, dim] of numerical [N, F_num] and categorical int64 [N, F_cat]."""
    num = b.node("numeric_embedding", numerical, name="numerical", embedding_dim=dim)
    cat = b.node(
        "field_embedding",
        categorical,
        name="categorical",
        vocab_sizes=vocab_sizes,
        embedding_dim=dim,
    )
    return b.node("concat", num, cat, name="fields", dim=1)


@builtin
def interacting_layers(
    b: Builder,
    x: Value,
    *,
    num_layers: int = 3,
    num_heads: int = 2,
    head_dim: int = 32,
    scaling: bool = False,
) -> Value:
    """`num_layers` AutoInt interacting layers over field embeddings [N, F, D]."""
    if not isinstance(num_layers, int) or num_layers < 0:
        raise SpecError(
            "num_layers must be a count of layers",
            expected="an integer >= 0",
            found=repr(num_layers),
        )
    for i in range(num_layers):
        x = b.node(
            "interacting", x, name=str(i), num_heads=num_heads, head_dim=head_dim, scaling=scaling
        )
    return x

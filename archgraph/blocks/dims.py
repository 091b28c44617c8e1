"""The op of each kind for a block's spatial rank: `dims: 2` builds over NCHW images, `dims: 3`
over NCDHW volumes (dense blocks, U-Net units)."""

from __future__ import annotations

from archgraph.errors import SpecError

_OPS = {
    2: {"conv": "conv2d", "avgpool": "avgpool2d"},
    3: {"conv": "conv3d", "avgpool": "avgpool3d"},
}


def spatial_op(kind: str, dims: int) -> str:
    """The `kind` op ("conv", "avgpool") over `dims` spatial dims; a located error otherwise."""
    if dims not in _OPS:
        raise SpecError(
            "blocks are built over 2-D images or 3-D volumes",
            expected="dims: 2 or 3",
            found=str(dims),
        )
    return _OPS[dims][kind]

"""Training checkpoints: the model, optimizer, learning-rate schedule, sparse schedule (the masks
are module buffers), epoch and RNG state, written atomically — a temporary sibling, flushed and
fsync'd, then os.replace'd over the target — so a crash leaves the old checkpoint or the new
one, never half of one. Read back with torch.load(weights_only=True): a checkpoint is data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from archgraph.errors import ArchgraphError, Loc

FORMAT = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (plus a format number) to `path` atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state saved at `path`; a located error if it is missing or not a checkpoint."""
    where = Loc(str(path))
    if not Path(path).is_file():
        raise ArchgraphError(
            "no checkpoint to resume from",
            loc=where,
            hint="train once with --checkpoint PATH (without --resume) to create it",
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises pickle, zip and runtime errors alike on bad files
        raise ArchgraphError(
            "cannot read the checkpoint", loc=where, found=str(e).splitlines()[0][:200]
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ArchgraphError(
            "not an archgraph training checkpoint",
            loc=where,
            expected=f"format {FORMAT}",
            found=repr(state.get("format")) if isinstance(state, dict) else type(state).__name__,
        )
    return state

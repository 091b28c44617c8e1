"""Kernel names from source hashes: a kernel renders its body with a placeholder name, and its
name is its kind plus a hash of that body, so identical kernels share one name (and one compiled
module in the cache) however many fused groups produce them."""

from __future__ import annotations

import hashlib
from functools import cached_property

PLACEHOLDER = "KERNEL_NAME"


class HashNamed:
    """Mixin for kernel classes with a `kind` and a `_render(name) -> C source` method."""

    kind: str

    def _render(self, name: str) -> str:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self._rendered[0]

    @property
    def source(self) -> str:
        """The kernel's C source (without the module preamble)."""
        return self._rendered[1]

    @cached_property
    def _rendered(self) -> tuple[str, str]:
        body = self._render(PLACEHOLDER)
        digest = hashlib.sha256(body.encode()).hexdigest()[:16]
        name = f"ag_{self.kind}_{digest}"
        return name, body.replace(PLACEHOLDER, name)

"""A loaded document: plain JSON-shaped data plus where each part of it was written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Document"]


@dataclass(frozen=True)
class Document:
    """A loaded document: its data, where each part of it was written, and where it came from.

    `positions` maps RFC 6901 pointers to 1-based (line, col). Most documents compile
    without anyone asking for a position, so the loaders hand over mappings that find
    positions on demand rather than recording one for every value up front.
    """

    data: Any
    positions: Mapping[str, tuple[int, int]]
    source: str
    format: str  # "yaml" | "json"

    def position(self, pointer: str) -> tuple[int, int] | None:
        """The line:col of `pointer`, else of its nearest written ancestor (a defaulted field
        has no position of its own, but its parent does)."""
        while True:
            found = self.positions.get(pointer)
            if found is not None or not pointer:
                return found
            pointer = pointer[: pointer.rfind("/")] if "/" in pointer else ""

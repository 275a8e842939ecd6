"""Offsets in a text to the 1-based line:col people see in their editor."""

from __future__ import annotations

import bisect
import re

__all__ = ["LineIndex", "line_col", "line_text"]


class LineIndex:
    """Offset -> (line, col) by binary search over line starts: for many lookups in one text."""

    def __init__(self, text: str) -> None:
        self._starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def at(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1


def line_col(text: str | bytes, offset: int) -> tuple[int, int]:
    """The line:col of one offset (text or raw bytes, for faults found before decoding)."""
    newline = "\n" if isinstance(text, str) else b"\n"
    line_start = text.rfind(newline, 0, offset) + 1  # type: ignore[arg-type]
    return text.count(newline, 0, offset) + 1, offset - line_start + 1  # type: ignore[arg-type]


def line_text(text: str, line: int) -> str:
    """The text of a 1-based line, or "" past the end."""
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""

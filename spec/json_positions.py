"""Where each value of a JSON text was written, found by a token scan on first use.

`json.loads` gives no positions and keeps the last of two duplicate keys silently; a small
scan of the (already valid) text recovers both. Most documents compile without anyone
asking for a line number, so the scan waits until an error or a warning needs one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from klippfisk.spec.collector import collector_paused
from klippfisk.spec.errors import Problem
from klippfisk.spec.lines import LineIndex
from klippfisk.spec.pointer import last_key, pointer_join

__all__ = ["JsonScan", "duplicate_problems"]

Duplicate = tuple[str, tuple[int, int], tuple[int, int]]  # pointer, first and second line:col


class JsonScan(Mapping[str, tuple[int, int]]):
    """Positions of every value in valid JSON text (pointer -> line:col), scanned when read."""

    _TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+', re.DOTALL)

    def __init__(self, text: str) -> None:
        self._text = text
        self._positions: dict[str, tuple[int, int]] | None = None
        self._duplicates: list[Duplicate] = []

    def __getitem__(self, pointer: str) -> tuple[int, int]:
        return self._scanned()[pointer]

    def get(self, pointer: str, default: Any = None) -> Any:
        """Mapping.get without its KeyError round trip."""
        return self._scanned().get(pointer, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._scanned())

    def __len__(self) -> int:
        return len(self._scanned())

    @property
    def duplicates(self) -> list[Duplicate]:
        """(pointer, first line:col, second line:col) for each repeated key."""
        self._scanned()
        return self._duplicates

    def _scanned(self) -> dict[str, tuple[int, int]]:
        if self._positions is None:
            with collector_paused(self._text):
                self._positions = self._scan()
        return self._positions

    def _scan(self) -> dict[str, tuple[int, int]]:
        lines = LineIndex(self._text)
        positions: dict[str, tuple[int, int]] = {}
        # one frame per open container: [pointer, is_object, next index, expecting a key]
        stack: list[list[Any]] = []
        seen_keys: list[set[str]] = []
        child = ""
        for match in self._TOKEN.finditer(self._text):
            token = match.group()
            top = stack[-1] if stack else None
            if token in ",:":
                if top is not None and top[1]:
                    top[3] = token == ","
                continue
            if token in "}]":
                stack.pop()
                if token == "}":
                    seen_keys.pop()
                continue
            if top is not None and top[1] and top[3]:  # an object key
                key = json.loads(token) if "\\" in token else token[1:-1]
                child = pointer_join(top[0], key)
                at = lines.at(match.start())
                if key in seen_keys[-1]:
                    self._duplicates.append((child, positions[child], at))
                seen_keys[-1].add(key)
                positions[child] = at
                continue
            if top is None:
                child = ""
                positions[child] = lines.at(match.start())
            elif not top[1]:
                child = pointer_join(top[0], top[2])
                top[2] += 1
                positions[child] = lines.at(match.start())
            if token in "{[":
                stack.append([child, token == "{", 0, True])
                if token == "{":
                    seen_keys.append(set())
        return positions


def duplicate_problems(duplicates: list[Duplicate]) -> list[Problem]:
    """One problem per repeated key, naming both lines."""
    problems = []
    for pointer, first, second in duplicates:
        key = last_key(pointer)
        problems.append(
            Problem(
                pointer,
                f"the key {key!r} appears twice, on line {first[0]} and on line {second[0]}",
                "Keep one of them; a JSON reader would silently drop the first.",
                second[0],
                second[1],
                "duplicate-key",
            )
        )
    return problems

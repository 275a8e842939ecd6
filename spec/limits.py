"""Bounds on what the compiler will read, and the errors that say one was crossed.

A job document may come from a stranger (a URL in a post, an HTTP body), so every route in
(bytes, text, already-parsed data) is held to the same size, depth, node and alias limits:
hostile input costs an error, never the host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from klippfisk.spec.errors import LoadError, Problem, load_error
from klippfisk.spec.pointer import pointer_join

__all__ = ["DEFAULT_LIMITS", "LoadLimits", "check_shape", "limit_error", "size_limit_error"]


@dataclass(frozen=True)
class LoadLimits:
    """Bounds on what a loader will read, so hostile input costs an error, not the host."""

    max_bytes: int = 10 * 1024 * 1024
    max_depth: int = 64
    max_aliases: int = 100  # YAML alias uses; a billion-laughs file is an error, not an OOM
    max_nodes: int = 1_000_000
    fetch_timeout_seconds: float = 10.0  # URLs only: connect/read timeout
    max_redirects: int = 5  # URLs only


DEFAULT_LIMITS = LoadLimits()

_LIMIT_TEXT: dict[str, Callable[[LoadLimits], str]] = {
    "too-deep": lambda lim: f"the document nests deeper than {lim.max_depth} levels",
    "too-many-nodes": lambda lim: f"the document expands to more than {lim.max_nodes} values",
    "too-many-aliases": lambda lim: f"the document uses more than {lim.max_aliases} aliases",
}
_LIMIT_HINT = {
    "too-deep": "Flatten the document.",
    "too-many-nodes": "Make the document smaller, or use fewer aliases of large anchors.",
    "too-many-aliases": "Write the repeated parts out, or use fewer aliases.",
}


def size_limit_error(source: str, limits: LoadLimits) -> LoadError:
    """The one wording for "too big", whichever route (file, URL, template) finds it."""
    return load_error(
        source,
        "too-large",
        f"the document is larger than the {limits.max_bytes} byte limit",
        "Split it, or raise the limit if the file is really meant to be this big.",
    )


def limit_error(
    code: str,
    pointer: str,
    limits: LoadLimits,
    source: str,
    where: tuple[int, int] | None = None,
) -> LoadError:
    """A depth, node or alias limit crossed at `pointer` (line:col `where`, when known)."""
    line, column = where or (None, None)
    problem = Problem(pointer, _LIMIT_TEXT[code](limits), _LIMIT_HINT[code], line, column, code)
    return LoadError([problem], source)


def check_shape(
    data: Any,
    limits: LoadLimits,
    source: str,
    positions: Mapping[str, tuple[int, int]] | None = None,
) -> None:
    """Depth and node limits for data that is already parsed (JSON text, an HTTP body).

    Every HTTP submission passes here, and almost all are within the limits, so a quick
    count decides first; only data that crosses a limit is walked again to name the place.
    """
    if not _within(data, limits):
        _raise_at_breach(data, limits, source, positions)


def _within(data: Any, limits: LoadLimits) -> bool:
    """Whether `data` keeps to the depth and node limits, counted level by level.

    A level is counted before the next one is gathered and gathering stops at the node
    limit, so a mapping that contains itself (or a million times over) ends in False.
    """
    level, depth, nodes = [data], 0, 0
    while level:
        nodes += len(level)
        if nodes > limits.max_nodes or depth > limits.max_depth:
            return False
        below: list[Any] = []
        for value in level:
            if type(value) is dict or isinstance(value, Mapping):  # the ABC check is slow
                below.extend(value.values())
            elif isinstance(value, list | tuple):
                below.extend(value)
            else:
                continue
            if nodes + len(below) > limits.max_nodes:
                return False
        level, depth = below, depth + 1
    return True


def _raise_at_breach(
    data: Any,
    limits: LoadLimits,
    source: str,
    positions: Mapping[str, tuple[int, int]] | None,
) -> None:
    """The limit error at the first node a depth-first walk finds past a limit.

    The walk keeps its own stack, so no nesting can overflow Python's, and it stops at the
    node limit, so even a mapping that contains itself ends in an error.
    """
    nodes = 0
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, pointer, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes or depth > limits.max_depth:
            code = "too-many-nodes" if nodes > limits.max_nodes else "too-deep"
            where = positions.get(pointer) if positions is not None else None
            raise limit_error(code, pointer, limits, source, where)
        if type(value) is dict or isinstance(value, Mapping):  # the ABC check is slow
            stack.extend((v, pointer_join(pointer, str(k)), depth + 1) for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((v, pointer_join(pointer, i), depth + 1) for i, v in enumerate(value))

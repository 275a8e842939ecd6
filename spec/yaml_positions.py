"""Where each value of a YAML document was written, read from its composed nodes on demand.

The loader keeps libyaml's nodes (each has its mark) instead of recording a position for
every value while it builds the data: most documents compile without anyone asking for a
line number, and the few lookups a report needs follow one pointer down the nodes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from klippfisk.spec.pointer import last_key, pointer_join

__all__ = ["MERGE_TAG", "NodePositions", "where"]

MERGE_TAG = "tag:yaml.org,2002:merge"


def where(mark: Any) -> tuple[int, int]:
    """A libyaml mark (0-based) as the 1-based line:col people see."""
    return mark.line + 1, mark.column + 1


class NodePositions(Mapping[str, tuple[int, int]]):
    """pointer -> line:col, read from the composed nodes of a document that loaded cleanly.

    A value's position is where its key was written (or, in a list, the item itself).
    Looking one up follows the pointer down the nodes; listing them all walks every node.
    Merge keys resolve as the loader resolved them: own keys first, then merged maps in order.
    """

    def __init__(self, root: Node) -> None:
        self._root = root
        self._entries: dict[int, dict[str, tuple[Node, Node]]] = {}
        # pointer -> (node, mark) or None: a report looks up many pointers that share their
        # first steps, so each step down is taken once
        self._found: dict[str, tuple[Node, Any] | None] = {"": (root, root.start_mark)}

    def __getitem__(self, pointer: str) -> tuple[int, int]:
        found = self._find(pointer)
        if found is None:
            raise KeyError(pointer)
        return where(found[1])

    def get(self, pointer: str, default: Any = None) -> Any:
        """Mapping.get without its KeyError round trip: a report asks once per pointer."""
        found = self._find(pointer)
        return default if found is None else where(found[1])

    def _find(self, pointer: str) -> tuple[Node, Any] | None:
        """(node, mark) at `pointer`: from its nearest looked-up ancestor, step by step down."""
        if pointer in self._found:
            return self._found[pointer]
        if not pointer.startswith("/"):
            return None
        missing = []
        while pointer not in self._found:  # ends at "", the root, at the latest
            missing.append(pointer)
            pointer = pointer.rpartition("/")[0]
        found = self._found[pointer]
        for step in reversed(missing):
            if found is not None:
                found = self._child(found[0], last_key(step))
            self._found[step] = found
        return found

    def _child(self, node: Node, token: str) -> tuple[Node, Any] | None:
        if isinstance(node, MappingNode) and token in (entries := self._entries_of(node)):
            key_node, value = entries[token]
            return value, key_node.start_mark
        if isinstance(node, SequenceNode) and _is_index(token, len(node.value)):
            item = node.value[int(token)]
            return item, item.start_mark
        return None

    def __iter__(self) -> Iterator[str]:
        stack: list[tuple[Node, str]] = [(self._root, "")]
        while stack:
            node, pointer = stack.pop()
            yield pointer
            if isinstance(node, MappingNode):
                entries = self._entries_of(node).items()
                stack.extend((value, pointer_join(pointer, key)) for key, (_, value) in entries)
            elif isinstance(node, SequenceNode):
                stack.extend((item, pointer_join(pointer, i)) for i, item in enumerate(node.value))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _entries_of(self, node: MappingNode) -> dict[str, tuple[Node, Node]]:
        """key -> (key node, value node) of a mapping, merged keys included."""
        found = self._entries.get(id(node))
        if found is None:
            own: dict[str, tuple[Node, Node]] = {}
            merged: dict[str, tuple[Node, Node]] = {}
            for key_node, value_node in node.value:
                if key_node.tag != MERGE_TAG:
                    own[key_node.value] = (key_node, value_node)
                    continue
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    for key, pair in self._entries_of(source).items():
                        merged.setdefault(key, pair)
            found = self._entries[id(node)] = {**merged, **own}
        return found


def _is_index(token: str, length: int) -> bool:
    return token.isascii() and token.isdigit() and str(int(token)) == token and int(token) < length

"""YAML text to plain data by way of libyaml's nodes, with every limit enforced on the way.

`yaml.safe_load` is not enough for a compiler that must point at the faulty line: it forgets
positions, keeps the last of two duplicate keys silently, expands a billion-laughs file until
memory runs out, and hands back dates, sets and bytes that JSON cannot carry. So the text is
composed into nodes by libyaml (fast, and the nodes keep their marks) and walked here once to
build the data. The nodes are kept: a position is looked up in them only when a problem, a
warning or a migration note asks for one (`klippfisk.spec.yaml_positions`), not recorded for every
value.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from klippfisk.spec.document import Document
from klippfisk.spec.errors import LoadError, Problem, load_error, shown
from klippfisk.spec.limits import LoadLimits, limit_error
from klippfisk.spec.lines import line_col, line_text
from klippfisk.spec.pointer import pointer_join
from klippfisk.spec.yaml_positions import MERGE_TAG, NodePositions, where

__all__ = ["load_yaml"]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = yaml.resolver.Resolver()  # the safe loader's YAML 1.1 implicit tags
_CACHED_SCALAR = 128  # characters: keys and short values repeat, long text does not
# libyaml's composer recurses on the C stack (10_000 levels measured fine, 100_000 crash the
# process); a document that could nest deeper than this is first checked with the flat
# event parser.
_C_NESTING_GUARD = 2000
# The libyaml that PyYAML 6.0.4's wheels bundle refuses more than 1000 levels itself, and may
# do so before the event check sees level 65: in flow context its scanner reads up to 1024
# characters ahead, so `[[[[...` crosses its limit first. Nesting past libyaml's limit is
# nesting past ours (when ours is lower), so that refusal is reported as ours, located where
# libyaml stopped; any other libyaml, or a higher limit of ours, leaves it a located syntax
# problem in libyaml's words.
_LIBYAML_MAX_NESTING = 1000
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"
_INDENT = re.compile("[ ?:-]*")  # what counts as indentation for `_might_nest_deeper_than`
_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"  # most scalars: their value is the text as written
# A path is built as a chain of (parent path, key) pairs, and spelt out as a JSON pointer
# only when an error needs one: most walks never fail.
_Path = tuple[Any, ...]
_ROOT: _Path = ()


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """libyaml's safe loader, remembering the tags of short plain scalars.

    libyaml calls back into Python to resolve the tag of every plain scalar (a regex per
    candidate tag), and job files repeat the same few words (keys, `docker`, `batch`, `main`),
    so a bounded cache of the answers takes a good part of that back out of composing.
    """

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0] and len(value) <= _CACHED_SCALAR:
            return _plain_scalar_tag(value)
        return str(super().resolve(kind, value, implicit))


@functools.lru_cache(maxsize=4096)
def _plain_scalar_tag(value: str) -> str:
    return str(_RESOLVER.resolve(ScalarNode, value, (True, False)))


def load_yaml(text: str, source: str, limits: LoadLimits) -> Document:
    """One YAML 1.1 document (safe tags only) as a Document; raises LoadError, located."""
    loader = _Loader(text)
    try:
        if _might_nest_deeper_than(text, _C_NESTING_GUARD):
            _check_depth_by_events(text, source, limits)
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        stopped_at = _libyaml_depth_refusal(exc, limits)
        if stopped_at is not None:
            raise limit_error("too-deep", "", limits, source, stopped_at) from None
        raise LoadError([_yaml_problem(exc, text)], source) from None
    except RecursionError:  # only the pure-Python composer (no libyaml) recurses in Python
        raise limit_error("too-deep", "", limits, source) from None
    finally:
        loader.dispose()
    if node is None:
        raise load_error(
            source,
            "empty",
            "the document is empty (only comments or blank lines)",
            "Write a job spec into it.",
        )
    aliases_possible = "*" in text
    if aliases_possible:
        _check_expansion(node, source, limits)
    walker = _Walker(loader, limits, source, aliases_possible=aliases_possible)
    data = walker.walk(node, _ROOT, 0, node.start_mark)
    return Document(data, NodePositions(node), source, "yaml")


def _might_nest_deeper_than(text: str, levels: int) -> bool:
    """Whether the text could nest more than `levels` deep: each flow level needs a bracket,
    and each block level a deeper indentation, where `- `, `? ` and `: ` indicators count as
    indentation (a block sequence may share its parent key's column, hence twice). Both are
    bounded by the length, so a short text needs no look at all."""
    if 3 * len(text) + 4 <= levels:
        return False
    # per line, not a multi-line regex: `^` makes the regex engine test every character,
    # which cost 2 ms on a 110 kB file with one long line (an inline wasm module); and a
    # match, not lstrip, which would copy that line
    widest = max(_INDENT.match(line).end() for line in text.split("\n"))  # type: ignore[union-attr]
    # `in` runs at memchr speed and count() does not: many long texts have no brackets
    brackets = sum(text.count(bracket) for bracket in "[{" if bracket in text)
    return brackets + 2 * (widest + 1) + 2 > levels


def _libyaml_depth_refusal(exc: yaml.YAMLError, limits: LoadLimits) -> tuple[int, int] | None:
    """Where libyaml stopped the text for nesting past its own limit (so past ours), if so."""
    mark = getattr(exc, "problem_mark", None)
    if (
        mark is None
        or limits.max_depth >= _LIBYAML_MAX_NESTING
        or getattr(exc, "problem", None) != _LIBYAML_TOO_DEEP
    ):
        return None
    return where(mark)


def _check_depth_by_events(text: str, source: str, limits: LoadLimits) -> None:
    """The depth limit, enforced without composing nodes (so without deep C recursion)."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.max_depth + 1:  # the walker's depth counts from 0 at the root
                raise limit_error("too-deep", "", limits, source, where(event.start_mark))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: Node, source: str, limits: LoadLimits) -> None:
    """Refuses, before anything is expanded, a document whose aliases would multiply it past
    the node limit (billion laughs) or that contains itself. Sizes are summed once per
    distinct node, so the check costs as much as the text, not as much as the expansion."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > limits.max_nodes:
                at = where(node.start_mark)
                raise limit_error("too-many-nodes", "", limits, source, at)
        elif key in open_nodes:
            raise load_error(
                source,
                "alias-loop",
                "an alias refers to the node that contains it",
                "Remove the self-referencing alias.",
                *where(node.start_mark),
            )
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [value for _, value in node.value]
    return []


def _pointer(path: _Path) -> str:
    keys = []
    while path:
        path, key = path
        keys.append(key)
    pointer = ""
    for key in reversed(keys):
        pointer = pointer_join(pointer, key)
    return pointer


class _Walker:
    """Turns composed nodes into plain data, enforcing limits.

    An alias is the same node object met again; `_check_expansion` has already bounded what
    aliases expand to, so here they are only counted (each use written in the text, not the
    ones nested inside an expansion).
    """

    def __init__(
        self, constructor: Any, limits: LoadLimits, source: str, *, aliases_possible: bool
    ) -> None:
        self._constructor = constructor
        self._limits = limits
        self._source = source
        self._nodes = 0
        self._alias_uses = 0
        self._seen: set[int] | None = set() if aliases_possible else None
        self._replaying = 0

    def walk(self, node: Node, path: _Path, depth: int, mark: Any) -> Any:
        """The value of `node`, found at `path`, written at `mark`."""
        if self._seen is None:
            return self._build(node, path, depth, mark)
        key = id(node)
        if key not in self._seen:
            self._seen.add(key)
            return self._build(node, path, depth, mark)
        if not self._replaying:
            self._alias_uses += 1
            if self._alias_uses > self._limits.max_aliases:
                raise self._limit("too-many-aliases", path, mark)
        self._replaying += 1
        try:
            return self._build(node, path, depth, mark)
        finally:
            self._replaying -= 1

    def _build(self, node: Node, path: _Path, depth: int, mark: Any) -> Any:
        self._nodes += 1
        if self._nodes > self._limits.max_nodes:
            raise self._limit("too-many-nodes", path, mark)
        if depth > self._limits.max_depth:
            raise self._limit("too-deep", path, mark)
        if isinstance(node, ScalarNode):
            return node.value if node.tag == _STR else self._scalar(node, path)
        if isinstance(node, SequenceNode):
            self._require_tag(node, _TAG + "seq", path)
            items = []
            texts, most = self._texts_below(depth), self._limits.max_nodes
            for i, item in enumerate(node.value):
                if texts and item.tag == _STR and type(item) is ScalarNode and self._nodes < most:
                    self._nodes += 1
                    items.append(item.value)
                else:
                    items.append(self.walk(item, (path, i), depth + 1, item.start_mark))
            return items
        self._require_tag(node, _TAG + "map", path)
        return self._mapping(node, path, depth)

    def _texts_below(self, depth: int) -> bool:
        """Whether the plain-text children of a collection at `depth` may be taken as they
        are, skipping two calls (`walk`, `_build`) for most values of a document: when no
        alias can repeat them and they are within the depth limit. The caller still counts
        each one against the node limit, and walks it instead when that would be crossed."""
        return self._seen is None and depth < self._limits.max_depth

    def _mapping(self, node: MappingNode, path: _Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[Node] = []
        explicit: list[tuple[str, Node, Node]] = []
        key_marks: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._key(key_node, path)
            if key in key_marks:
                first = key_marks[key]
                raise self._fail(
                    "duplicate-key",
                    _pointer((path, key)),
                    f"the key {key!r} appears twice, on line {first.line + 1} and on line "
                    f"{key_node.start_mark.line + 1}",
                    "Keep one of them; YAML would silently drop the first.",
                    key_node.start_mark,
                )
            key_marks[key] = key_node.start_mark
            explicit.append((key, key_node, value_node))
        for source in reversed(merges):
            result.update(self._merged(source, path, depth))
        texts, most = self._texts_below(depth), self._limits.max_nodes
        for key, key_node, value_node in explicit:
            plain = value_node.tag == _STR and type(value_node) is ScalarNode
            if texts and plain and self._nodes < most:
                self._nodes += 1
                result[key] = value_node.value
            else:
                result[key] = self.walk(value_node, (path, key), depth + 1, key_node.start_mark)
        return result

    def _merged(self, source: Node, path: _Path, depth: int) -> dict[str, Any]:
        """YAML 1.1 merge (`<<: *base` or `<<: [*a, *b]`): earlier maps win, own keys win."""
        if isinstance(source, SequenceNode):
            merged: dict[str, Any] = {}
            for item in reversed(source.value):
                merged.update(self._merged(item, path, depth))
            return merged
        if not isinstance(source, MappingNode):
            raise self._fail(
                "merge",
                _pointer(path),
                "a merge key (<<) must name a mapping",
                "Point `<<` at a mapping, e.g. `<<: *defaults`.",
                source.start_mark,
            )
        return self.walk(source, path, depth, source.start_mark)

    def _key(self, node: Node, path: _Path) -> str:
        if not isinstance(node, ScalarNode):
            raise self._fail(
                "key",
                _pointer(path),
                "a key is a list or mapping, not text",
                "Use plain text keys.",
                node.start_mark,
            )
        return node.value  # the key as written: `yes:` stays "yes", `1:` stays "1"

    def _scalar(self, node: ScalarNode, path: _Path) -> Any:
        tag = node.tag
        if tag == _TAG + "timestamp":
            return node.value  # JSON has no dates; keep the text as written
        kind = tag.removeprefix(_TAG)
        if kind not in ("int", "float", "bool", "null"):
            raise self._unsupported(node, path)
        try:
            value = getattr(self._constructor, f"construct_yaml_{kind}")(node)
        except (ValueError, yaml.YAMLError):
            raise self._fail(
                "scalar",
                _pointer(path),
                f"{shown(node.value)} is not a valid {kind}",
                "Correct the value (quote it to keep it as text) or drop an explicit !!tag.",
                node.start_mark,
            ) from None
        if kind == "float" and not math.isfinite(value):
            raise self._fail(
                "number",
                _pointer(path),
                f"{node.value!r} is not a finite number",
                "Write a finite number, or quote it to mean text.",
                node.start_mark,
            )
        return value

    def _require_tag(self, node: Node, tag: str, path: _Path) -> None:
        if node.tag != tag:
            raise self._unsupported(node, path)

    def _unsupported(self, node: Node, path: _Path) -> LoadError:
        return self._fail(
            "tag",
            _pointer(path),
            f"the YAML tag {node.tag} is not supported",
            "Remove the tag; job specs hold only text, numbers, true/false, null, "
            "lists and mappings.",
            node.start_mark,
        )

    def _limit(self, code: str, path: _Path, mark: Any) -> LoadError:
        return limit_error(code, _pointer(path), self._limits, self._source, where(mark))

    def _fail(self, code: str, pointer: str, message: str, hint: str, mark: Any) -> LoadError:
        problem = Problem(pointer, message, hint, *where(mark), code)
        return LoadError([problem], self._source)


# libyaml's wording for the faults people actually make, and what to say instead
_YAML_FAULTS: tuple[tuple[str, str, str], ...] = (
    (
        "but found another document",
        "the file holds more than one YAML document",
        "Put one job per file and remove the extra `---` line.",
    ),
    (
        "found undefined alias",
        "an alias (*name) refers to an anchor (&name) that is not defined before it",
        "Define the anchor first, or check the spelling of the alias.",
    ),
    (
        "found duplicate anchor",
        "the same anchor (&name) is defined twice",
        "Give each anchor its own name.",
    ),
)


def _yaml_problem(exc: yaml.YAMLError, text: str) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = line_col(text, min(exc.position, len(text)))
        return Problem(
            "",
            f"the character #x{exc.character:04x} is not allowed in YAML",
            "Remove it, or write it as an escape inside a double-quoted string.",
            line,
            col,
            "syntax",
        )
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = where(mark) if mark is not None else (None, None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None) or ""
    for wording, message, hint in _YAML_FAULTS:
        if wording in problem or wording in context:
            return Problem("", message, hint, line, col, "syntax")
    if line is not None and "\t" in line_text(text, line)[: col or 1]:
        return Problem(
            "",
            "a tab is used for indentation, which YAML does not allow",
            "Indent with spaces.",
            line,
            col,
            "syntax",
        )
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return Problem(
        "",
        message,
        "Fix the YAML syntax at this position (indentation, a missing "
        "quote or an unclosed bracket is usual).",
        line,
        col,
        "syntax",
    )

"""Bytes to a `Document`: plain JSON-shaped data plus a line:col for every JSON pointer.

`yaml.safe_load` is not enough for a compiler that must point at the faulty line: it forgets
positions, keeps the last of two duplicate keys silently, expands a billion-laughs file until
memory runs out, and hands back dates, sets and bytes that JSON cannot carry. So YAML is
composed into nodes by libyaml (fast, and the nodes keep their marks) and walked here once,
which builds the data, records positions and enforces every limit on the way. JSON (a
document whose first character is `{` or `[`) is parsed by the C `json` module for speed and
exact JSON number semantics; its positions come from a small token scan, run only when
someone asks for a position.
"""

from __future__ import annotations

import bisect
import gc
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from spec.errors import LoadError, Problem

__all__ = ["DEFAULT_LIMITS", "Document", "LoadLimits", "load_document", "pointer_join"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# libyaml's composer recurses on the C stack (10_000 levels measured fine, 100_000 crash the
# process); a document that could nest deeper than this is first checked with the flat
# event parser.
_C_NESTING_GUARD = 2000
_TAG = "tag:yaml.org,2002:"
_PAUSE_COLLECTOR_FROM = 256 * 1024  # characters
_BLOCK_PREFIX = re.compile(r"^[ ?:-]*", re.MULTILINE)


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


@dataclass(frozen=True)
class Document:
    """A loaded document: its data, where each part of it was written, and where it came from."""

    data: Any
    positions: Mapping[str, tuple[int, int]]  # RFC 6901 pointer -> (line, col), 1-based
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


def load_document(
    data: bytes | str, *, source: str = "<input>", limits: LoadLimits | None = None
) -> Document:
    """Read one YAML (1.1, safe) or JSON document; raises LoadError with every fault located."""
    limits = limits or DEFAULT_LIMITS
    text = _decode(data, source, limits)
    stripped = text.lstrip()
    if not stripped:
        raise _error(source, "empty", "the document is empty", "Write a job spec into it.")
    with _collector_paused(text):
        if stripped[0] in "{[":
            return _load_json(text, source, limits)
        return _load_yaml(text, source, limits)


def pointer_join(parent: str, key: str | int) -> str:
    """RFC 6901: `~` and `/` in a key are escaped so the pointer splits back unambiguously."""
    if isinstance(key, str) and ("~" in key or "/" in key):
        key = key.replace("~", "~0").replace("/", "~1")
    return f"{parent}/{key}"


def size_limit_error(source: str, limits: LoadLimits) -> LoadError:
    """The one wording for "too big", shared with `spec.sources`, which checks it earlier."""
    return _error(
        source,
        "too-large",
        f"the document is larger than the {limits.max_bytes} byte limit",
        "Split it, or raise the limit if the file is really meant to be this big.",
    )


# -- bytes to text -------------------------------------------------------------------------


def _decode(data: bytes | str, source: str, limits: LoadLimits) -> str:
    """Text from bytes, refusing (before any parsing) what is too big, binary or not UTF-8."""
    if isinstance(data, str):
        if len(data) > limits.max_bytes:  # every character is at least one byte
            raise size_limit_error(source, limits)
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _error(
                source,
                "encoding",
                "the text holds an unpaired surrogate, which is not Unicode",
                "Save the document as UTF-8 text.",
                *_line_col(data, exc.start),
            ) from None
    else:
        raw = bytes(data)
    if len(raw) > limits.max_bytes:
        raise size_limit_error(source, limits)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise _error(
            source, "encoding", "the document is UTF-16 or UTF-32 encoded", "Save it as UTF-8 text."
        )
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise _error(
            source,
            "binary",
            "the document holds NUL bytes, so it is binary, not text",
            "Give a YAML or JSON text file saved as UTF-8.",
            *_line_col(raw, nul),
        )
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(
            source,
            "encoding",
            f"byte 0x{raw[exc.start]:02x} is not valid UTF-8",
            "Save the document as UTF-8 text.",
            *_line_col(raw, exc.start),
        ) from None


# -- JSON ----------------------------------------------------------------------------------


class _NotJson(ValueError):
    """A JSON value the data model cannot hold (NaN, Infinity, an overflowing number)."""


def _load_json(text: str, source: str, limits: LoadLimits) -> Document:
    duplicates = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        result = dict(items)
        if len(result) != len(items):
            duplicates = True
        return result

    try:
        data = json.loads(
            text, object_pairs_hook=pairs, parse_constant=_refuse_constant, parse_float=_finite
        )
    except RecursionError:
        raise _limit_error("too-deep", "", limits, source, {}) from None
    except _NotJson as exc:
        raise _error(source, "number", str(exc), "Write a finite number, or quote it.") from None
    except json.JSONDecodeError as exc:
        return _json_fallback_to_yaml(text, source, limits, exc)
    scan = _JsonScan(text)
    if duplicates:
        raise LoadError(_duplicate_problems(scan.duplicates), source)
    _check_shape(data, text, limits, source, scan)
    return Document(data, _LazyPositions(scan), source, "json")


def _json_fallback_to_yaml(
    text: str, source: str, limits: LoadLimits, json_error: json.JSONDecodeError
) -> Document:
    """A `{`-led document that is not JSON may still be a YAML flow mapping (`{a: 1}`);
    if YAML cannot read it either, the JSON complaint is the one the author needs."""
    try:
        return _load_yaml(text, source, limits)
    except LoadError as yaml_error:
        if any(p.code != "syntax" for p in yaml_error.problems):
            raise
    raise _error(
        source,
        "syntax",
        f"invalid JSON: {json_error.msg}",
        "Fix the JSON syntax at this position (a missing comma, quote or bracket is usual).",
        json_error.lineno,
        json_error.colno,
    ) from None


def _refuse_constant(name: str) -> float:
    raise _NotJson(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(f"the number {text} is too large to represent")
    return value


def _check_shape(data: Any, text: str, limits: LoadLimits, source: str, scan: _JsonScan) -> None:
    """Depth and node limits for parsed JSON; cheap character counts skip the walk when the
    text is too small or too flat to break a limit (each node and each level costs a char)."""
    opens = text.count("{") + text.count("[")
    if opens <= limits.max_depth and len(text) <= limits.max_nodes:
        return
    nodes = 0
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, pointer, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise _limit_error("too-many-nodes", pointer, limits, source, scan.positions)
        if depth > limits.max_depth:
            raise _limit_error("too-deep", pointer, limits, source, scan.positions)
        if isinstance(value, dict):
            stack.extend((v, pointer_join(pointer, k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, pointer_join(pointer, i), depth + 1) for i, v in enumerate(value))


class _JsonScan:
    """Positions of every value in valid JSON text, found by a token scan on first use.

    json.loads gives no positions, and most documents compile without anyone asking for one,
    so the scan waits until an error or a warning needs a line number.
    """

    _TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+', re.DOTALL)

    def __init__(self, text: str) -> None:
        self._text = text
        self._positions: dict[str, tuple[int, int]] | None = None
        self._duplicates: list[tuple[str, tuple[int, int], tuple[int, int]]] = []

    @property
    def positions(self) -> dict[str, tuple[int, int]]:
        if self._positions is None:
            self._positions = self._scan()
        return self._positions

    @property
    def duplicates(self) -> list[tuple[str, tuple[int, int], tuple[int, int]]]:
        """(pointer, first line:col, second line:col) for each repeated key."""
        _ = self.positions
        return self._duplicates

    def _scan(self) -> dict[str, tuple[int, int]]:
        with _collector_paused(self._text):
            return self._scan_tokens()

    def _scan_tokens(self) -> dict[str, tuple[int, int]]:
        lines = _LineIndex(self._text)
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


class _LazyPositions(Mapping[str, tuple[int, int]]):
    """A read-only view of a `_JsonScan`'s positions that scans only when first read."""

    def __init__(self, scan: _JsonScan) -> None:
        self._scan = scan

    def __getitem__(self, pointer: str) -> tuple[int, int]:
        return self._scan.positions[pointer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._scan.positions)

    def __len__(self) -> int:
        return len(self._scan.positions)


# -- YAML ----------------------------------------------------------------------------------


def _load_yaml(text: str, source: str, limits: LoadLimits) -> Document:
    loader = _Loader(text)
    try:
        if _nesting_bound(text) > _C_NESTING_GUARD:
            _check_depth_by_events(text, source, limits)
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise LoadError([_yaml_problem(exc, text)], source) from None
    except RecursionError:  # only the pure-Python composer (no libyaml) recurses in Python
        raise _limit_error("too-deep", "", limits, source, {}) from None
    finally:
        loader.dispose()
    if node is None:
        raise _error(
            source,
            "empty",
            "the document is empty (only comments or blank lines)",
            "Write a job spec into it.",
        )
    aliases_possible = "*" in text
    if aliases_possible:
        _check_expansion(node, source, limits)
    walker = _YamlWalker(loader, limits, source, aliases_possible=aliases_possible)
    data = walker.walk(node, "", 0, node.start_mark)
    return Document(data, walker.positions, source, "yaml")


def _nesting_bound(text: str) -> int:
    """An upper bound on nesting depth: each flow level needs a bracket, and each block level
    a deeper indentation, where `- `, `? ` and `: ` indicators count as indentation (a block
    sequence may share its parent key's column, hence twice)."""
    widest = max((len(m.group()) for m in _BLOCK_PREFIX.finditer(text)), default=0)
    return text.count("[") + text.count("{") + 2 * (widest + 1) + 2


def _check_depth_by_events(text: str, source: str, limits: LoadLimits) -> None:
    """The depth limit, enforced without composing nodes (so without deep C recursion)."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.max_depth + 1:  # the walker's depth counts from 0 at the root
                raise _limit_error("too-deep", "", limits, source, {}, event.start_mark)
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
                raise _limit_error("too-many-nodes", "", limits, source, {}, node.start_mark)
        elif key in open_nodes:
            raise _error(
                source,
                "alias-loop",
                "an alias refers to the node that contains it",
                "Remove the self-referencing alias.",
                node.start_mark.line + 1,
                node.start_mark.column + 1,
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


class _YamlWalker:
    """Turns composed nodes into plain data, recording positions and enforcing limits.

    An alias is the same node object met again; `_check_expansion` has already bounded what
    aliases expand to, so here they are only counted (each use written in the text, not the
    ones nested inside an expansion).
    """

    def __init__(
        self, constructor: Any, limits: LoadLimits, source: str, *, aliases_possible: bool
    ) -> None:
        self.positions: dict[str, tuple[int, int]] = {}
        self._constructor = constructor
        self._limits = limits
        self._source = source
        self._nodes = 0
        self._alias_uses = 0
        self._seen: set[int] | None = set() if aliases_possible else None
        self._replaying = 0

    def walk(self, node: Node, pointer: str, depth: int, mark: Any) -> Any:
        """The value of `node`, whose pointer is `pointer` and whose position is `mark`."""
        if self._seen is None:
            return self._build(node, pointer, depth, mark)
        key = id(node)
        if key not in self._seen:
            self._seen.add(key)
            return self._build(node, pointer, depth, mark)
        if not self._replaying:
            self._alias_uses += 1
            if self._alias_uses > self._limits.max_aliases:
                raise _limit_error(
                    "too-many-aliases", pointer, self._limits, self._source, self.positions, mark
                )
        self._replaying += 1
        try:
            return self._build(node, pointer, depth, mark)
        finally:
            self._replaying -= 1

    def _build(self, node: Node, pointer: str, depth: int, mark: Any) -> Any:
        self._nodes += 1
        if self._nodes > self._limits.max_nodes:
            raise _limit_error(
                "too-many-nodes", pointer, self._limits, self._source, self.positions, mark
            )
        if depth > self._limits.max_depth:
            raise _limit_error(
                "too-deep", pointer, self._limits, self._source, self.positions, mark
            )
        self.positions[pointer] = (mark.line + 1, mark.column + 1)
        if isinstance(node, ScalarNode):
            return self._scalar(node, pointer)
        if isinstance(node, SequenceNode):
            self._require_tag(node, _TAG + "seq", pointer)
            return [
                self.walk(item, pointer_join(pointer, i), depth + 1, item.start_mark)
                for i, item in enumerate(node.value)
            ]
        self._require_tag(node, _TAG + "map", pointer)
        return self._mapping(node, pointer, depth, mark)

    def _mapping(self, node: MappingNode, pointer: str, depth: int, mark: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[Node] = []
        explicit: list[tuple[str, Node, Node]] = []
        key_marks: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merges.append(value_node)
                continue
            key = self._key(key_node, pointer)
            if key in key_marks:
                first = key_marks[key]
                raise self._fail(
                    "duplicate-key",
                    pointer_join(pointer, key),
                    f"the key {key!r} appears twice, on line {first.line + 1} and on line "
                    f"{key_node.start_mark.line + 1}",
                    "Keep one of them; YAML would silently drop the first.",
                    key_node.start_mark,
                )
            key_marks[key] = key_node.start_mark
            explicit.append((key, key_node, value_node))
        for source in reversed(merges):
            result.update(self._merged(source, pointer, depth))
        self.positions[pointer] = (mark.line + 1, mark.column + 1)
        for key, key_node, value_node in explicit:
            result[key] = self.walk(
                value_node, pointer_join(pointer, key), depth + 1, key_node.start_mark
            )
        return result

    def _merged(self, source: Node, pointer: str, depth: int) -> dict[str, Any]:
        """YAML 1.1 merge (`<<: *base` or `<<: [*a, *b]`): earlier maps win, own keys win."""
        if isinstance(source, SequenceNode):
            merged: dict[str, Any] = {}
            for item in reversed(source.value):
                merged.update(self._merged(item, pointer, depth))
            return merged
        if not isinstance(source, MappingNode):
            raise self._fail(
                "merge",
                pointer,
                "a merge key (<<) must name a mapping",
                "Point `<<` at a mapping, e.g. `<<: *defaults`.",
                source.start_mark,
            )
        return self.walk(source, pointer, depth, source.start_mark)

    def _key(self, node: Node, pointer: str) -> str:
        if not isinstance(node, ScalarNode):
            raise self._fail(
                "key",
                pointer,
                "a key is a list or mapping, not text",
                "Use plain text keys.",
                node.start_mark,
            )
        return node.value  # the key as written: `yes:` stays "yes", `1:` stays "1"

    def _scalar(self, node: ScalarNode, pointer: str) -> Any:
        tag = node.tag
        if tag == _TAG + "str":
            return node.value
        if tag == _TAG + "timestamp":
            return node.value  # JSON has no dates; keep the text as written
        kind = tag.removeprefix(_TAG)
        if kind not in ("int", "float", "bool", "null"):
            raise self._unsupported(node, pointer)
        try:
            value = getattr(self._constructor, f"construct_yaml_{kind}")(node)
        except (ValueError, yaml.YAMLError):
            raise self._fail(
                "scalar",
                pointer,
                f"{node.value!r} is not a valid {kind}",
                "Correct the value or drop the explicit tag.",
                node.start_mark,
            ) from None
        if kind == "float" and not math.isfinite(value):
            raise self._fail(
                "number",
                pointer,
                f"{node.value!r} is not a finite number",
                "Write a finite number, or quote it to mean text.",
                node.start_mark,
            )
        return value

    def _require_tag(self, node: Node, tag: str, pointer: str) -> None:
        if node.tag != tag:
            raise self._unsupported(node, pointer)

    def _unsupported(self, node: Node, pointer: str) -> LoadError:
        return self._fail(
            "tag",
            pointer,
            f"the YAML tag {node.tag} is not supported",
            "Remove the tag; job specs hold only text, numbers, true/false, null, "
            "lists and mappings.",
            node.start_mark,
        )

    def _fail(
        self, code: str, pointer: str, message: str, hint: str, mark: Any = None
    ) -> LoadError:
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        return LoadError([Problem(pointer, message, hint, line, col, code)], self._source)


# -- shared helpers ------------------------------------------------------------------------

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


def _limit_error(
    code: str,
    pointer: str,
    limits: LoadLimits,
    source: str,
    positions: Mapping[str, tuple[int, int]],
    mark: Any = None,
) -> LoadError:
    if mark is not None:
        line, col = mark.line + 1, mark.column + 1
    else:
        line, col = positions.get(pointer, (None, None))
    problem = Problem(pointer, _LIMIT_TEXT[code](limits), _LIMIT_HINT[code], line, col, code)
    return LoadError([problem], source)


def _duplicate_problems(
    duplicates: list[tuple[str, tuple[int, int], tuple[int, int]]],
) -> list[Problem]:
    problems = []
    for pointer, first, second in duplicates:
        key = pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
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
        line, col = _line_col(text, min(exc.position, len(text)))
        return Problem(
            "",
            f"the character #x{exc.character:04x} is not allowed in YAML",
            "Remove it, or write it as an escape inside a double-quoted string.",
            line,
            col,
            "syntax",
        )
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None) or ""
    for wording, message, hint in _YAML_FAULTS:
        if wording in problem or wording in context:
            return Problem("", message, hint, line, col, "syntax")
    if line is not None and "\t" in _line_text(text, line)[: col or 1]:
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


def _line_text(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


@contextmanager
def _collector_paused(text: str) -> Iterator[None]:
    """Loading a big document allocates millions of small objects in one go, and CPython's
    cyclic collector re-scans the growing heap again and again meanwhile (measured: 3.3 MB of
    YAML took 14.5 s of CPU with it, 6 s without). Nothing built here holds cycles, so for big
    inputs the collector waits until the end. Only ever re-enabled if it was on."""
    if len(text) < _PAUSE_COLLECTOR_FROM or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _LineIndex:
    """Offset -> (line, col), 1-based, by binary search over line starts."""

    def __init__(self, text: str) -> None:
        self._starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def at(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1


def _line_col(text: str | bytes, offset: int) -> tuple[int, int]:
    newline = "\n" if isinstance(text, str) else b"\n"
    line_start = text.rfind(newline, 0, offset) + 1  # type: ignore[arg-type]
    return text.count(newline, 0, offset) + 1, offset - line_start + 1  # type: ignore[arg-type]


def _error(
    source: str,
    code: str,
    message: str,
    hint: str,
    line: int | None = None,
    column: int | None = None,
) -> LoadError:
    return LoadError([Problem("", message, hint, line, column, code)], source)

"""Bytes to a `Document`: plain JSON-shaped data plus a line:col for every JSON pointer.

This is the one door every document comes in by: it decodes the bytes (the only UTF-8
decoding in the compiler, `decode_text`), refuses what is too big, binary or not UTF-8, and
hands the text to the right reader. A document whose first character is `{` or `[` is JSON,
parsed by the C `json` module for speed and exact JSON number semantics, its positions
found by `json_positions` when first asked for; anything else is YAML, read by
`yaml_nodes`. Limits live in `limits`, the Document in `document` (all in `klippfisk.spec`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from klippfisk.spec.collector import collector_paused
from klippfisk.spec.document import Document
from klippfisk.spec.errors import LoadError, Problem, load_error
from klippfisk.spec.json_positions import JsonScan, duplicate_problems
from klippfisk.spec.limits import (
    DEFAULT_LIMITS,
    LoadLimits,
    check_shape,
    limit_error,
    size_limit_error,
)
from klippfisk.spec.lines import line_col
from klippfisk.spec.pointer import pointer_join
from klippfisk.spec.yaml_nodes import load_yaml

__all__ = [
    "DEFAULT_LIMITS",
    "Document",
    "LoadLimits",
    "decode_text",
    "load_document",
    "pointer_join",
]


def load_document(
    data: bytes | str, *, source: str = "<input>", limits: LoadLimits | None = None
) -> Document:
    """Read one YAML (1.1, safe) or JSON document; raises LoadError with every fault located."""
    limits = limits or DEFAULT_LIMITS
    text = decode_text(data, source=source, limits=limits)
    first = _FIRST_CHARACTER.search(text)  # where lstrip() would copy a 100 kB text
    if first is None:
        raise load_error(source, "empty", "the document is empty", "Write a job spec into it.")
    with collector_paused(text):
        if first.group() in "{[":
            return _load_json(text, source, limits)
        return load_yaml(text, source, limits)


def decode_text(
    data: bytes | str, *, source: str = "<input>", limits: LoadLimits | None = None
) -> str:
    """Text from bytes, refusing (before any parsing) what is too big, binary or not UTF-8.

    Templating needs the text before the loader parses it; both get it from here, so a file
    is judged by one set of rules whichever way it is compiled.
    """
    limits = limits or DEFAULT_LIMITS
    if isinstance(data, str):
        if len(data) > limits.max_bytes:  # every character is at least one byte
            raise size_limit_error(source, limits)
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise load_error(
                source,
                "encoding",
                "the text holds an unpaired surrogate, which is not Unicode",
                "Save the document as UTF-8 text.",
                *line_col(data, exc.start),
            ) from None
    else:
        raw = bytes(data)
    if len(raw) > limits.max_bytes:
        raise size_limit_error(source, limits)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise load_error(
            source, "encoding", "the document is UTF-16 or UTF-32 encoded", "Save it as UTF-8 text."
        )
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise load_error(
            source,
            "binary",
            "the document holds NUL bytes, so it is binary, not text",
            "Give a YAML or JSON text file saved as UTF-8.",
            *line_col(raw, nul),
        )
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        # not the utf-8-sig codec: it is a Python function, and it counts a fault's offset
        # from after the BOM, which named the wrong byte
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise load_error(
            source,
            "encoding",
            f"byte 0x{raw[exc.start]:02x} is not valid UTF-8",
            "Save the document as UTF-8 text.",
            *line_col(raw, exc.start),
        ) from None


_FIRST_CHARACTER = re.compile(r"\S")  # \s is str.isspace(), what lstrip() strips


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
        raise limit_error("too-deep", "", limits, source) from None
    except _NotJson as exc:
        raise load_error(
            source, "number", str(exc), "Write a finite number, or quote it."
        ) from None
    except json.JSONDecodeError as exc:
        return _json_fallback_to_yaml(text, source, limits, exc)
    except ValueError:  # int() refuses more than 4300 digits (sys.int_info.default_max_str_digits)
        raise _long_integer_error(text, source, limits) from None
    scan = JsonScan(text)
    if duplicates:
        raise LoadError(duplicate_problems(scan.duplicates), source)
    # Each node and each level costs at least a character, and each level a bracket: a text
    # too small or too flat to break a limit needs no walk.
    opens = text.count("{") + text.count("[")
    if opens > limits.max_depth or len(text) > limits.max_nodes:
        check_shape(data, limits, source, scan)
    return Document(data, scan, source, "json")


class _LongInteger(str):
    """An integer too long for int(), kept as its text so that it can be located."""


def _long_integer_error(text: str, source: str, limits: LoadLimits) -> LoadError:
    """Every integer too long to read, each located. Only a document that has one pays for
    the second parse; the usual path keeps the C parser's own int()."""
    try:
        data = json.loads(text, parse_int=_long_or_int)
    except RecursionError:
        raise limit_error("too-deep", "", limits, source) from None
    document = Document(data, JsonScan(text), source, "json")
    problems = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        pointer, value = stack.pop()
        if isinstance(value, _LongInteger):
            problems.append(
                Problem(
                    pointer,
                    f"the number has {len(value.lstrip('-'))} digits, too many to read",
                    "Write a smaller number, or quote it to keep it as text.",
                    *(document.position(pointer) or (None, None)),
                    "number",
                )
            )
        elif isinstance(value, dict):
            stack += [(pointer_join(pointer, key), child) for key, child in value.items()]
        elif isinstance(value, list):
            stack += [(pointer_join(pointer, str(i)), child) for i, child in enumerate(value)]
    return LoadError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)), source)


def _long_or_int(text: str) -> int | _LongInteger:
    try:
        return int(text)
    except ValueError:
        return _LongInteger(text)


def _json_fallback_to_yaml(
    text: str, source: str, limits: LoadLimits, json_error: json.JSONDecodeError
) -> Document:
    """A `{`-led document that is not JSON may still be a YAML flow mapping (`{a: 1}`);
    if YAML cannot read it either, the JSON complaint is the one the author needs."""
    try:
        return load_yaml(text, source, limits)
    except LoadError as yaml_error:
        if any(p.code != "syntax" for p in yaml_error.problems):
            raise
    raise load_error(
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

"""Content addresses: RFC 8785 canonical JSON bytes, hashed into a CIDv1.

The same meaning must give the same address whatever key order or Unicode spelling a
document used, so the bytes are RFC 8785 (JCS) and the address is a CIDv1 with the
multicodec `json` (0x0200) and a sha2-256 multihash, written in lower-case base32 (`b...`).
The CID is a handful of fixed bytes in front of a digest, so it is built here by hand: the
`multiformats` package agrees (the tests check it) but costs ten times the hashing itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import rfc8785

__all__ = [
    "canonical_bytes",
    "cid_of",
    "cid_of_bytes",
    "encoder_agrees",
    "exact_text_writer",
    "sorted_json_text",
]

# CIDv1 = <version 0x01><codec json 0x0200 as varint: 0x80 0x04><multihash sha2-256 0x12, 32>
# then the digest. Those five header bytes are exactly 40 bits, eight base32 characters, so
# the text is "b" (multibase base32 lower) + their fixed encoding + the digest's encoding;
# the stdlib's b32encode is pure Python and cost more than the hashing.
_CID_TEXT_PREFIX = "b" + base64.b32encode(bytes([0x01, 0x80, 0x04, 0x12, 0x20])).decode().lower()
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = [a + b for a in _B32 for b in _B32]
_SHIFTS = tuple(range(270, -1, -10))
_MAX_SAFE_INTEGER = 2**53 - 1
# built once: json.dumps with non-default options builds a new encoder on every call
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# ... and JSONEncoder.encode builds a new C encoder on every call, which costs more than
# encoding a small object; the CIDs encode a job in a handful of pieces, so the C encoder
# (the same function JSONEncoder uses, when CPython has it) is made once here. It is given
# no circular-reference memo: what is hashed comes from a loader, which makes no cycles.
_C_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE = (
    _C_MAKE_ENCODER(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )
    if _C_MAKE_ENCODER is not None
    else None
)
# The C string escaper reads every character twice (2-3 ns each): 250 us for the 110 kB
# inline wasm module a job may carry, more than the rest of its compile. Long ASCII text
# whose only escapes are the short ones (newline, tab, quote ...) is checked and escaped
# instead with `in` and str.replace, which run at memchr speed: a fifth of that. Only jobs
# holding a long string use this encoder: calling back into Python for every string costs
# more than it saves on short ones.
_LONG_TEXT = 4096  # characters
_ESCAPE = json.encoder.encode_basestring
_SHORT_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))
_OTHER_CONTROLS = tuple(chr(code) for code in range(0x20) if chr(code) not in "\n\r\t")


def _encode_text(text: str) -> str:
    """`json.encoder.encode_basestring(text)`, the same characters, faster for long text."""
    if (
        len(text) < _LONG_TEXT
        or not text.isascii()
        or any(control in text for control in _OTHER_CONTROLS)
    ):
        return _ESCAPE(text)
    for char, escape in _SHORT_ESCAPES:
        if char in text:
            text = text.replace(char, escape)  # the backslash first: escapes add more
    return f'"{text}"'


_C_ENCODE_LONG_TEXT = (
    _C_MAKE_ENCODER(None, _ENCODER.default, _encode_text, None, ":", ",", True, False, True)
    if _C_MAKE_ENCODER is not None
    else None
)


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 bytes of `obj`; raises ValueError for what JSON cannot say exactly.

    Data the C `json` encoder writes exactly as RFC 8785 does (see `encoder_agrees`) goes
    through it, which is several times faster than the pure-Python JCS writer; everything
    else goes to `rfc8785`.
    """
    if encoder_agrees(obj):
        try:
            return sorted_json_text(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let rfc8785 name the fault
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValueError(
            f"The value cannot be written as canonical JSON ({exc}); use only text, whole "
            "numbers within +/-2^53, finite decimals, true/false/null, lists and maps "
            "with text keys."
        ) from exc


def sorted_json_text(obj: Any) -> str:
    """`obj` as compact, key-sorted JSON text: RFC 8785 exactly when `encoder_agrees(obj)`
    (and its UTF-8 encoding succeeds: a lone surrogate has no canonical form)."""
    if _C_ENCODE is None:
        return _ENCODER.encode(obj)
    return "".join(_C_ENCODE(obj, 0))


def _sorted_json_text_long(obj: Any) -> str:
    """`sorted_json_text`, copying long strings that need no escapes instead of scanning."""
    return "".join(_C_ENCODE_LONG_TEXT(obj, 0))


def exact_text_writer(free_parts: Any) -> Callable[[Any], str] | None:
    """The fastest `sorted_json_text` for data whose only surprises can be in `free_parts`,
    or None when the stdlib encoder would not write those exactly (see `encoder_agrees`)."""
    long_text = _agreement(free_parts)
    if long_text is None:
        return None
    if long_text and _C_ENCODE_LONG_TEXT is not None:
        return _sorted_json_text_long
    return sorted_json_text


def cid_of(obj: Any) -> str:
    """The CIDv1 (json codec, sha2-256, base32 lower) of `obj`'s canonical bytes."""
    return cid_of_bytes(canonical_bytes(obj))


def cid_of_bytes(data: bytes) -> str:
    """The CIDv1 of bytes that are already canonical JSON."""
    digest = hashlib.sha256(data).digest()
    bits = int.from_bytes(digest, "big") << 24  # 256 bits padded to 280: 28 ten-bit pairs
    return _CID_TEXT_PREFIX + "".join([_B32_PAIRS[(bits >> s) & 1023] for s in _SHIFTS])[:52]


def encoder_agrees(obj: Any) -> bool:
    """True when the stdlib encoder's output is exactly RFC 8785 for `obj`.

    That holds for float-free data whose integers are within +/-2^53 and whose keys sort
    the same by code point as by UTF-16 unit (every key below U+D800 does).
    """
    return _agreement(obj) is not None


def _agreement(obj: Any) -> bool | None:
    """None if the encoder would not write `obj` exactly, else whether it holds a string
    long enough for `_encode_text` to pay off (the walk meets every string anyway).

    Text and lists are told apart by their exact type first (an isinstance chain per value
    cost more than the rest of the walk); subclasses take the general checks."""
    long_text = False
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str:
            long_text = long_text or len(value) >= _LONG_TEXT
        elif kind is list:
            stack.extend(value)
        elif isinstance(value, dict):
            if not _keys_agree(value):
                return None
            stack.extend(value.values())
        elif isinstance(value, str):
            long_text = long_text or len(value) >= _LONG_TEXT
        elif value is None or isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if not -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
                return None
        elif isinstance(value, list | tuple):
            stack.extend(value)
        else:
            return None  # floats and anything else: the JCS writer decides
    return long_text


def _keys_agree(mapping: dict[Any, Any]) -> bool:
    """Text keys that sort the same by code point as by UTF-16 unit (all below U+D800)."""
    for key in mapping:
        if type(key) is str and key.isascii():
            continue  # nearly every key: settled without the general checks
        if not isinstance(key, str) or not (key.isascii() or max(key) < "\ud800"):
            return False
    return True

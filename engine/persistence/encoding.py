"""A stored event's bytes: the domain event's fields as one JSON object, and back.

The form is the one eventsourcing's transcoder wrote (the timestamp as its tagged
`datetime_iso` value), so stores written before and after read the same; the body is the
very text the event's hash was made from (`klippfisk.engine.job.encode_body`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from klippfisk.engine.job import ENVELOPE, encode_body

__all__ = ["decode_event_state", "encode_event_state"]

_TIMESTAMP_TYPE = "datetime_iso"  # the library's name for an encoded datetime, kept on disk


def encode_event_state(state: dict[str, Any], body_json: str | None = None) -> bytes:
    """A stored event's bytes: its fields (less id and version) as JSON, the timestamp in
    the library's tagged form, so stores written before and after read the same.

    Events hold plain JSON besides the timestamp, so the C encoder does it without the
    library transcoder's per-object hook; `body_json`, when the hash was just made from it,
    is reused rather than encoded again, leaving only the small envelope to encode.
    """
    when = state["timestamp"]
    envelope = {k: v for k, v in state.items() if k in ENVELOPE}
    envelope["timestamp"] = {"_type_": _TIMESTAMP_TYPE, "_data_": when.isoformat()}
    if body_json is None:
        body_json = encode_body({k: v for k, v in state.items() if k not in ENVELOPE})
    tail = encode_body(envelope)
    return f"{body_json[:-1]},{tail[1:]}".encode() if body_json != "{}" else tail.encode()


def decode_event_state(data: bytes) -> dict[str, Any]:
    """The fields `encode_event_state` (or the library's transcoder) stored.

    Plain JSON parsing: a user's dict that happens to look like a tagged value stays the
    dict it was (the library's decoder would turn it into that type and break the hash)."""
    state = json.loads(data)
    if not isinstance(state, dict):
        raise ValueError(f"a stored event is a JSON object, not {type(state).__name__}")
    when = state.get("timestamp")
    if isinstance(when, dict) and when.get("_type_") == _TIMESTAMP_TYPE:
        state["timestamp"] = datetime.fromisoformat(when["_data_"])
    return state

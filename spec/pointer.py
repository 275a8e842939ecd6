"""RFC 6901 JSON pointers, the one way every part of the compiler names a place in a document.

A key may hold `/` or `~`, so each is escaped (`~1`, `~0`) when it becomes a pointer token
and unescaped when it is read back; keeping both directions here keeps them in step.
"""

from __future__ import annotations

__all__ = ["last_key", "pointer_join", "pointer_token"]


def pointer_token(key: str) -> str:
    """A key as one RFC 6901 pointer token (`~` and `/` escaped)."""
    if "~" in key or "/" in key:
        return key.replace("~", "~0").replace("/", "~1")
    return key


def pointer_join(parent: str, key: str | int) -> str:
    """The pointer of `key` (a map key or a list index) inside the value at `parent`."""
    return f"{parent}/{pointer_token(key) if isinstance(key, str) else key}"


def last_key(pointer: str) -> str:
    """The unescaped key or index a pointer's last token names ("" for the root). Lookups
    take pointers apart one step at a time, so this reads the last token only."""
    token = pointer[pointer.rfind("/") + 1 :]
    if "~" not in token:
        return token
    return token.replace("~1", "/").replace("~0", "~")

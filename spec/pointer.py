"""RFC 6901 JSON pointers, the one way every part of the compiler names a place in a document.

A key may hold `/` or `~`, so each is escaped (`~1`, `~0`) when it becomes a pointer token
and unescaped when it is read back; keeping both directions here keeps them in step.
"""

from __future__ import annotations

__all__ = ["pointer_join", "pointer_token", "pointer_tokens"]


def pointer_token(key: str) -> str:
    """A key as one RFC 6901 pointer token (`~` and `/` escaped)."""
    if "~" in key or "/" in key:
        return key.replace("~", "~0").replace("/", "~1")
    return key


def pointer_join(parent: str, key: str | int) -> str:
    """The pointer of `key` (a map key or a list index) inside the value at `parent`."""
    return f"{parent}/{pointer_token(key) if isinstance(key, str) else key}"


def pointer_tokens(pointer: str) -> list[str]:
    """The unescaped keys and indexes a pointer names, outermost first ("" names the root)."""
    parts = pointer.split("/")[1:]
    if "~" not in pointer:
        return parts
    return [part.replace("~1", "/").replace("~0", "~") for part in parts]

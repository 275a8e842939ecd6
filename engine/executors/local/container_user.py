"""Result paths a container's non-root user can write.

A result path is a bind mount of a directory klippfisk made (root's, 0755), so an image
whose USER is not root could not write its results there. Before the container starts, its
user is resolved as Docker resolves it (a number is a uid; a name is looked up in the
image's /etc/passwd; the group likewise in /etc/group, else the user's primary group) and
the result directories are handed to that uid:gid. A name the image does not know is left
alone: Docker refuses to start the container then, with its own message. Where klippfisk
may not chown (it runs unprivileged), the directories are made writable by all instead,
which is what the user needs and no wider than the results folder they sit in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["give_to_user", "resolve_user"]

ROOT = (0, 0)

ReadFile = Callable[[str], bytes | None]


def resolve_user(user: str, read_file: ReadFile) -> tuple[int, int] | None:
    """The uid and gid Docker will run `user` ("name|uid[:group|gid]") as; None when the
    image does not know a name in it (Docker will refuse to start the container)."""
    name, _, group = user.partition(":")
    if not name:
        return ROOT
    passwd = {} if name.isdigit() and group.isdigit() else _entries(read_file, "/etc/passwd")
    entry = _find(passwd, name)
    if name.isdigit():
        uid = int(name)
    elif entry is None:
        return None
    else:
        uid = int(entry[2])
    if not group:
        primary = entry[3] if entry is not None and len(entry) > 3 else ""
        return uid, int(primary) if primary.isdigit() else 0
    if group.isdigit():
        return uid, int(group)
    found = _find(_entries(read_file, "/etc/group"), group)
    return (uid, int(found[2])) if found is not None else None


def give_to_user(directories: list[Path], owner: tuple[int, int]) -> None:
    """Let `owner` (uid, gid) write the result directories: chown them, or where klippfisk
    may not, open them to everyone. Root needs nothing."""
    if owner == ROOT:
        return
    for directory in directories:
        try:
            os.chown(directory, *owner)
        except PermissionError:
            directory.chmod(0o777)


def _entries(read_file: ReadFile, path: str) -> dict[str, list[str]]:
    """A passwd or group file's lines by their first field (name:x:id:...)."""
    text = (read_file(path) or b"").decode("utf-8", "replace")
    fields = (line.split(":") for line in text.splitlines())
    return {f[0]: f for f in fields if len(f) >= 3 and f[2].isdigit()}


def _find(entries: dict[str, list[str]], key: str) -> list[str] | None:
    """The entry named `key`, or for a number the entry with that id."""
    if key in entries:
        return entries[key]
    return next((f for f in entries.values() if key.isdigit() and f[2] == key), None)

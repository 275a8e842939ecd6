"""Which namespace a request reads or writes, given the key's scope and what it asked for.

One place for the rule, because the fast submit path and the routes must agree on it: a key
acts in its own namespace unless it names another it may use; only a "*" key may read all.
"""

from __future__ import annotations

from typing import Any

from klippfisk.adapters.http.guard import ALL_NAMESPACES, Principal
from klippfisk.adapters.http.problems import ApiProblem

__all__ = ["NAMESPACE_MAX_LENGTH", "read_namespace", "write_namespace"]

NAMESPACE_MAX_LENGTH = 128  # the longest `namespace` query parameter accepted


def read_namespace(principal: Principal, asked: str) -> str | None:
    """The namespace a read is limited to; None means every namespace ("*", if allowed)."""
    if not asked:
        return None if principal.namespace == ALL_NAMESPACES else principal.namespace
    if asked == ALL_NAMESPACES and principal.namespace == ALL_NAMESPACES:
        return None
    if not principal.may_use(asked):
        raise ApiProblem(
            403,
            f"This API key may not use namespace {asked!r}.",
            f"Use namespace {principal.namespace!r}, or a key for {asked!r}.",
        )
    return asked


def write_namespace(principal: Principal, body: dict[str, Any], query: str) -> str:
    """Where a job body goes: the body's or the query's namespace, else the key's own."""
    asked = str(body.get("namespace") or query or "")
    if asked:
        read_namespace(principal, asked)
        return asked
    return "default" if principal.namespace == ALL_NAMESPACES else principal.namespace

"""Kubernetes-style label selectors, as Bacalhau's `labels` query parameter takes them.

Supported: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k`.
Several selectors (repeated parameters or comma-separated) must all match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from klippfisk.adapters.http.problems import ApiProblem

__all__ = ["LabelSelector"]

_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")
MAX_SELECTOR_CHARS = 1024  # real selectors are a few terms; this bounds the work per request

Test = Callable[[Mapping[str, str]], bool]


def _term(text: str) -> Test:
    if match := _SET.match(text):
        key, op, values = match.group(1), match.group(2), match.group(3)
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    if match := _EQ.match(text):
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS.match(text):
        negate, key = match.groups()
        return lambda labels: (key in labels) != bool(negate)
    raise ApiProblem(
        400,
        f"The label selector {text.strip()!r} is not valid.",
        "Use forms like env=prod, env!=dev, env in (a,b), env or !env.",
    )


def _terms(selector: str) -> Iterator[str]:
    """The comma-separated terms of one selector, commas inside `in (a,b)` kept: one pass
    over the text, so a long selector costs time in proportion to its length."""
    if len(selector) > MAX_SELECTOR_CHARS:
        raise ApiProblem(
            400,
            f"A label selector is {len(selector)} characters long; the limit is "
            f"{MAX_SELECTOR_CHARS}.",
            "Use fewer terms, or split them over several labels parameters.",
        )
    depth, start = 0, 0
    for index, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            yield selector[start:index]
            start = index + 1
    yield selector[start:]


@dataclass(frozen=True)
class LabelSelector:
    tests: tuple[Test, ...] = ()

    @classmethod
    def parse(cls, selectors: Iterable[str]) -> LabelSelector:
        terms = [t for s in selectors for t in _terms(s) if t.strip()]
        return cls(tuple(_term(t) for t in terms))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(test(labels) for test in self.tests)

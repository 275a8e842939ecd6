"""Kubernetes-style label selectors, as Bacalhau's `labels` query parameter takes them.

Supported: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k`.
Several selectors (repeated parameters or comma-separated) must all match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from adapters.http.problems import ApiProblem

__all__ = ["LabelSelector"]

_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")
_TERMS = re.compile(r",(?![^()]*\))")

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


@dataclass(frozen=True)
class LabelSelector:
    tests: tuple[Test, ...] = ()

    @classmethod
    def parse(cls, selectors: Iterable[str]) -> LabelSelector:
        terms = [t for s in selectors for t in _TERMS.split(s) if t.strip()]
        return cls(tuple(_term(t) for t in terms))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(test(labels) for test in self.tests)

"""The compiler's error types.

Every failure the compiler can meet on user input is a `SpecError` (or a subclass), carrying
one `Problem` per fault so that a caller sees every fault at once, each located by JSON
pointer and line:col, with a hint that says how to fix it. Anything else escaping the
compiler is a bug, and the property tests hunt for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_SHOWN = 60  # characters of a bad value quoted back in a message
_SHOWN_INT = 10**_SHOWN

__all__ = ["LoadError", "Problem", "SpecError", "TemplateError", "load_error", "shown"]


@dataclass(frozen=True)
class Problem:
    """One fault in a document: where it is, what is wrong, and how to fix it."""

    pointer: str
    message: str
    hint: str = ""
    line: int | None = None
    column: int | None = None
    code: str = "invalid"

    @property
    def location(self) -> str:
        """`line:col` when known, else the empty string."""
        if self.line is None:
            return ""
        return f"{self.line}:{self.column or 1}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pointer": self.pointer,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        where = f"{self.location} " if self.location else ""
        path = self.pointer or "/"
        text = f"{where}{path}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


@dataclass
class SpecError(Exception):
    """A document could not be compiled; `problems` lists every fault found."""

    problems: list[Problem] = field(default_factory=list)
    source: str = "<input>"

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    def summary(self) -> str:
        if not self.problems:
            return f"{self.source}: invalid job spec"
        lines = [f"{self.source}: {len(self.problems)} problem(s)"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "problems": [p.to_dict() for p in self.problems]}


class LoadError(SpecError):
    """The bytes could not be read as a document (size, depth, encoding, syntax, aliases)."""


class TemplateError(SpecError):
    """Templating failed, e.g. a `{{.key}}` with no value given."""


def load_error(
    source: str,
    code: str,
    message: str,
    hint: str,
    line: int | None = None,
    column: int | None = None,
) -> LoadError:
    """A LoadError with one problem about the document as a whole (pointer ""), the usual
    shape of a fault found before there is any data to point into."""
    return LoadError([Problem("", message, hint, line, column, code)], source)


def shown(value: object) -> str:
    """A bad value quoted back to its author, cut short: a 5000-character value is not
    repeated in full, and an int of more than 4300 digits cannot even be turned into text."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _SHOWN_INT:
        return f"(a number of more than {_SHOWN} digits)"
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."

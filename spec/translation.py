"""What a translator (legacy, IPVM, minimal) hands the pipeline, and helpers they share.

A translator turns one input form into a current-model job (a plain dict with Bacalhau's
key names) and accounts for every field it read: translated, rewritten or dropped. `origins`
maps pointers in the translated job back to where the value was written, so a rule broken
by a translated field is still reported at the right line of the user's file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from klippfisk.spec.compiled import Migration, Warning_
from klippfisk.spec.errors import Problem, shown
from klippfisk.spec.models import Folded, fold_keys
from klippfisk.spec.pointer import pointer_token

__all__ = ["Translation", "parse_model", "pydantic_problems"]

M = TypeVar("M", bound=BaseModel)


@dataclass
class Translation:
    """A current-model job dict plus the account of how it was made."""

    form: str
    job: dict[str, Any] = field(default_factory=dict)
    migrations: list[Migration] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # job pointer prefix -> source pointer

    def translated(self, source: str, target: str, note: str = "") -> None:
        self.migrations.append(
            Migration(source=source, action="translated", target=target, note=note)
        )
        self.origins.setdefault(target, source)

    def rewritten(self, source: str, target: str, note: str) -> None:
        self.migrations.append(
            Migration(source=source, action="rewritten", target=target, note=note)
        )
        self.origins.setdefault(target, source)

    def dropped(self, source: str, note: str) -> None:
        self.migrations.append(Migration(source=source, action="dropped", note=note))

    def error(self, pointer: str, message: str, hint: str, code: str = "invalid") -> None:
        self.problems.append(Problem(pointer=pointer, message=message, hint=hint, code=code))

    def origin_of(self, pointer: str) -> str | None:
        """Where `pointer` came from: the source of its longest translated prefix, plus the
        rest of the path (which the loader resolves to the nearest node that exists)."""
        probe = pointer
        while True:
            found = self.origins.get(probe)
            if found is not None:
                return found + pointer[len(probe) :]
            if not probe:
                return None
            probe = probe[: probe.rfind("/")]


def parse_model(
    data: Any, model: type[M], pointer: str, out: Translation, *, typos: bool = False
) -> tuple[M | None, Folded]:
    """Fold keys, validate against `model`, and account for the keys that fit nowhere.

    In a translated form an unknown key is a field the translation drops, so it goes in the
    report as dropped; with `typos` (the current model, where every known field is kept) it
    is most likely a misspelling, so it becomes an `unknown-field` warning instead.
    """
    folded = fold_keys(data, model)
    for where, suggestion in folded.unknown:
        if typos:
            name = where.rsplit("/", 1)[-1]
            out.warnings.append(
                Warning_(
                    code="unknown-field",
                    pointer=pointer + where,
                    message=f"Unknown field {name!r} was ignored.",
                    hint=f"Did you mean {suggestion}?" if suggestion else "Remove it.",
                )
            )
        else:
            note = f"; did you mean {suggestion}?" if suggestion else ""
            out.dropped(pointer + where, "not a field of this form" + note)
    for where in folded.clashes:
        out.error(pointer + where, "This key is given twice (keys ignore case).", "Keep one.")
    try:
        return model.model_validate(folded.data), folded
    except ValidationError as exc:
        out.problems.extend(pydantic_problems(exc, pointer))
        return None, folded


def pydantic_problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """One Problem per pydantic error, located by JSON pointer, with a hint about the type."""
    problems = []
    seen: set[str] = set()
    for error in exc.errors(include_url=False):
        loc = [part for part in error["loc"] if not _is_union_branch(part)]
        pointer = prefix + "".join(f"/{pointer_token(str(part))}" for part in loc)
        if pointer in seen:
            continue  # a union reports once per branch; one message is enough
        seen.add(pointer)
        problems.append(
            Problem(
                pointer=pointer,
                message=f"{_describe(error)} (got {shown(error.get('input'))}).",
                hint=_type_hint(error["type"]),
                code="type",
            )
        )
    return problems


def _is_union_branch(part: Any) -> bool:
    return isinstance(part, str) and (
        part in ("str", "int", "float", "bool", "list[str]", "function-after")
        or part.startswith(("list[", "dict[", "function-", "tagged-union["))
    )


def _describe(error: dict[str, Any]) -> str:
    message = str(error["msg"])
    return message[:1].upper() + message[1:]


_TYPE_HINTS = {
    "string_type": "Write text here; quote values that YAML would read as numbers or booleans.",
    "int_type": "Write a whole number here.",
    "int_parsing": "Write a whole number here.",
    "int_from_float": "Write a whole number here.",
    "list_type": "Write a list here (YAML `- item` lines or JSON [...]).",
    "dict_type": "Write a mapping of keys to values here.",
    "model_type": "Write a mapping of keys to values here.",
    "missing": "Add this field.",
    "bool_type": "Write true or false here.",
    "bool_parsing": "Write true or false here.",
    "float_type": "Write a number here.",
    "float_parsing": "Write a number here.",
}


def _type_hint(kind: str) -> str:
    return _TYPE_HINTS.get(kind, "Check the value's type against `klippfisk spec explain`.")

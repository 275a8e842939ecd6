"""`spec explain`: what a field of the job is, like `kubectl explain` for Bacalhau jobs.

Everything shown comes from the models (type, description, rule) and the default profiles
(what each would fill in), so the explanation cannot disagree with the compiler.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from klippfisk.spec.defaults import PROFILES
from klippfisk.spec.errors import Problem, SpecError
from klippfisk.spec.models import Job

__all__ = ["Explanation", "explain"]

_SPLIT = re.compile(r"[./]")
_INDEX = re.compile(r"\[\d*\]$|^\d+$|^\*$")


@dataclass(frozen=True)
class Explanation:
    """One field: its dotted path, type, rule, per-profile default and sub-fields."""

    path: str
    type: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    fields: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "description": self.description,
            "defaults": self.defaults,
            "fields": [{"name": n, "type": t, "description": d} for n, t, d in self.fields],
        }


def explain(path: str) -> Explanation:
    """Explain a field path such as `Tasks.Resources.CPU` (any case; `[]` and indexes ignored)."""
    parts = [_INDEX.sub("", p) for p in _SPLIT.split(path.strip(". /")) if p]
    parts = [p for p in parts if p]
    if parts and parts[0].lower() == "job":
        parts = parts[1:]  # `Job.Tasks` and `Tasks` name the same field
    model: type[BaseModel] | None = Job
    annotation: Any = Job
    description = Job.__doc__ or ""
    names: list[str] = []
    for part in parts:
        if model is None:
            raise _unknown(path, names, [])
        table = {name.lower(): name for name in model.model_fields}
        name = table.get(part.lower())
        if name is None:
            raise _unknown(path, names, list(model.model_fields))
        info = model.model_fields[name]
        names.append(name)
        annotation, description = info.annotation, info.description or ""
        model = _model_of(annotation)
    dotted = ".".join(names) or "Job"
    children = ()
    if model is not None:
        children = tuple(
            (n, _type_name(i.annotation), i.description or "")
            for n, i in model.model_fields.items()
        )
    return Explanation(
        path=dotted,
        type=_type_name(annotation),
        description=description.strip(),
        defaults=_defaults(names),
        fields=children,
    )


def _unknown(path: str, names: list[str], choices: list[str]) -> SpecError:
    where = ".".join(names) or "Job"
    hint = f"Fields of {where}: {', '.join(choices)}." if choices else f"{where} has no fields."
    return SpecError([Problem(pointer="", message=f"No field {path!r}.", hint=hint)], "explain")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation).replace("typing.", "")
    return re.sub(r"spec\.models\.", "", text)


def _defaults(names: list[str]) -> dict[str, Any]:
    """What each profile fills in at this path (for every job type where it differs)."""
    pattern = "/".join("Tasks/*" if n == "Tasks" else n for n in names)
    found: dict[str, Any] = {}
    for profile in PROFILES.values():
        per_type = {}
        for job_type in ("batch", "ops", "service", "daemon"):
            values = profile.defaults_for(job_type)
            match = next((v for k, v in values.items() if k.split(" ")[0] == pattern), None)
            if match is not None:
                per_type[job_type] = match
        if per_type:
            same = len(set(map(str, per_type.values()))) == 1 and len(per_type) == 4
            found[profile.name] = next(iter(per_type.values())) if same else per_type
    return found

"""Pydantic models of every job form the compiler reads, and of the canonical job it writes.

The same classes serve input and output: in *validation* mode they are the lenient input
shape (fields may be absent, quantities may be numbers or any unit Bacalhau accepts); in
*serialization* mode they describe the canonical job, where every field is present and every
quantity has one spelling. Keeping one set of classes means the schemas in `schemas/` can
never drift apart from each other.

Canonical quantity forms (chosen so that equal meaning gives equal bytes, hence equal CIDs):

- CPU: millicores as a string with an `m` suffix, `"500m"` (1 core = `"1000m"`).
- Memory and Disk: decimal integer strings of bytes, `"1073741824"`; `2GB` is `"2000000000"`,
  `2Gi` is `"2147483648"` and `512Mb` is `"512000000"` (Bacalhau's humanize rules).
- GPU: a decimal integer string, `"0"` when none is asked for.
- Timeouts: integer seconds; 0 means "no limit", as in Bacalhau.

Upper limits (a clear error above each; see `klippfisk.spec.quantities`): CPU and GPU 2^53 - 1 (the
largest integer canonical JSON keeps exact; Go reads them as int64/uint64), Count and Priority
the same, sizes below 2^64 bytes (go-humanize's bound), timeouts 9223372036 s (Go's
time.Duration, int64 nanoseconds, is about 292 years).
- Network type: Bacalhau's spelling (`None`, `Host`, `Full`, `HTTP`, `Bridge`, `Default`).

Keys are matched case-insensitively on input (`fold_keys`), as Bacalhau's Go decoder does;
output uses Bacalhau's PascalCase names.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, WithJsonSchema

from klippfisk.spec.pointer import last_key, pointer_token

__all__ = [
    "SERVER_OWNED",
    "CodeRun",
    "Constraint",
    "DockerRun",
    "Folded",
    "InputSource",
    "IpvmConfig",
    "IpvmInputs",
    "IpvmTask",
    "Job",
    "LegacyDeal",
    "LegacyJob",
    "LegacySpec",
    "NetworkConfig",
    "Port",
    "ResourcesConfig",
    "ResultPath",
    "SpecConfig",
    "StorageSpec",
    "Task",
    "TimeoutConfig",
    "WasmRun",
    "fold_keys",
    "SourceSpelling",
    "source_pointer",
]

# Fields the server owns: accepted on input (Bacalhau does), never part of the canonical job.
SERVER_OWNED = ("ID", "State", "Version", "Revision", "CreateTime", "ModifyTime")

_CPU = WithJsonSchema({"type": "string", "pattern": "^[0-9]+m$"}, mode="serialization")
_BYTES = WithJsonSchema({"type": "string", "pattern": "^[0-9]+$"}, mode="serialization")
Quantity = Annotated[str | int | float | None, _BYTES]
CpuQuantity = Annotated[str | int | float | None, _CPU]
Seconds = Annotated[
    int | str | None, WithJsonSchema({"type": "integer", "minimum": 0}, "serialization")
]
NETWORK_TYPES = ("Default", "None", "Host", "Full", "HTTP", "Bridge")
NetworkType = Annotated[
    str | None, WithJsonSchema({"type": "string", "enum": list(NETWORK_TYPES)}, "serialization")
]


class _Model(BaseModel):
    """Shared config: unknown keys are dealt with by `fold_keys` before pydantic sees them."""

    model_config = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)


class SpecConfig(_Model):
    """A typed plug-in configuration: engine, publisher or storage source."""

    Type: str = Field("", description="plug-in type, e.g. docker, wasm, noop; must not be blank")
    Params: dict[str, Any] = Field(
        default_factory=dict, description="plug-in parameters, passed through as given"
    )


class InputSource(_Model):
    """Data mounted into the task before it runs."""

    Source: SpecConfig | None = Field(None, description="where the data comes from")
    Alias: str = Field("", description="optional name; unique within the task")
    Target: str = Field("", description="mount path inside the task; required and unique")


class ResultPath(_Model):
    """A path whose contents are published after the task ends."""

    Name: str = Field("", description="result name; required and unique")
    Path: str = Field("", description="absolute path inside the task; required and unique")


class ResourcesConfig(_Model):
    """What the task asks for; strings as Bacalhau writes them, normalised on output."""

    CPU: CpuQuantity = Field(None, description="cores (`1`, `0.5`) or millicores (`500m`)")
    Memory: Quantity = Field(None, description="bytes: `512Mb` = 512e6, `1Gi` = 2^30, `2GB` = 2e9")
    Disk: Quantity = Field(None, description="bytes, same units as Memory")
    GPU: Quantity = Field(None, description="a whole number of GPUs")


class Port(_Model):
    """A port mapping (Host, Full or Bridge networks only)."""

    Name: str = Field("", description="required; a valid environment variable name")
    Static: int = Field(0, description="host port, 1024-65535; 0 = allocate one")
    Target: int = Field(0, description="container port (Bridge only), 0-65535")
    HostNetwork: str = Field("", description="host IP address to bind; empty = all")


class NetworkConfig(_Model):
    """Network access of the task."""

    Type: NetworkType = Field(None, description="one of " + ", ".join(NETWORK_TYPES))
    Domains: list[str] = Field(
        default_factory=list, description="allowed domains; only with Type HTTP"
    )
    Ports: list[Port] = Field(default_factory=list, description="port mappings")


class TimeoutConfig(_Model):
    """Time limits in seconds; 0 means none. Execution + Queue must not exceed Total."""

    ExecutionTimeout: Seconds = Field(None, description="limit on one execution's run time")
    QueueTimeout: Seconds = Field(None, description="limit on time spent waiting for a node")
    TotalTimeout: Seconds = Field(None, description="limit on the job's whole life")


class Constraint(_Model):
    """A node label selector requirement (Kubernetes operators)."""

    Key: str = Field("", description="label key; must not be blank")
    Operator: str = Field(
        "", description="one of =, ==, !=, in, notin, exists, !, gt, lt (lower case)"
    )
    Values: list[str] = Field(
        default_factory=list,
        description="in/notin: one or more; exists/!: none; other operators: exactly one",
    )


class Task(_Model):
    """One unit of work; Bacalhau runs exactly one task per job."""

    Name: str = Field("", description="task name; required")
    Engine: SpecConfig | None = Field(None, description="what runs the task; Type required")
    Publisher: SpecConfig | None = Field(
        None, description="where results go; required when ResultPaths are set"
    )
    Env: dict[str, str] = Field(
        default_factory=dict,
        description="environment; names upper case, start with a letter, not BACALHAU_",
    )
    Meta: dict[str, str] = Field(default_factory=dict, description="free-form task metadata")
    InputSources: list[InputSource] = Field(default_factory=list, description="data to mount")
    ResultPaths: list[ResultPath] = Field(default_factory=list, description="paths to publish")
    Resources: ResourcesConfig | None = Field(None, description="CPU, Memory, Disk, GPU")
    Network: NetworkConfig | None = Field(None, description="network access")
    Timeouts: TimeoutConfig | None = Field(None, description="time limits in seconds")


class Job(_Model):
    """A Bacalhau job in the current (v1) model, without the server-owned fields."""

    Name: str = Field("", description="job name; Bacalhau names a nameless job by its ID")
    Namespace: str | None = Field(None, description="namespace; must not be blank")
    Type: str = Field("", description="batch, ops, daemon or service")
    Priority: int | None = Field(None, description="scheduling priority")
    Count: int | None = Field(
        None, description=">= 0; batch/service default 1; daemon and ops jobs always 0"
    )
    Constraints: list[Constraint] = Field(default_factory=list, description="node selectors")
    Meta: dict[str, str] = Field(
        default_factory=dict, description="metadata; keys under bacalhau.org/ are reserved"
    )
    Labels: dict[str, str] = Field(default_factory=dict, description="labels for filtering")
    Tasks: list[Task] = Field(default_factory=list, description="exactly one task")


# ---- legacy forms (V1beta1 / V1beta2) ----------------------------------------------------


class StorageSpec(_Model):
    """A legacy input or output (`StorageSource` plus the fields of that source)."""

    StorageSource: str = ""
    Name: str = ""
    CID: str = ""
    URL: str = ""
    S3: dict[str, Any] | None = None
    Repo: str = ""
    SourcePath: str = ""
    ReadWrite: bool = False
    Path: str = ""
    Metadata: dict[str, str] = Field(default_factory=dict)


class LegacyDeal(_Model):
    """How many nodes run a legacy job; `TargetingMode: all` makes it an ops job."""

    TargetingMode: bool | str = False
    Concurrency: int = 0
    Confidence: int = 0
    MinBids: int = 0


class LegacyPublisherSpec(_Model):
    Type: str = ""
    Params: dict[str, Any] = Field(default_factory=dict)


class LegacyDocker(_Model):
    Image: str = ""
    Entrypoint: list[str] = Field(default_factory=list)
    Parameters: list[str] = Field(default_factory=list)
    EnvironmentVariables: list[str] = Field(default_factory=list)
    WorkingDirectory: str = ""


class LegacyWasm(_Model):
    EntryModule: StorageSpec | None = None
    EntryPoint: str = ""
    Parameters: list[str] = Field(default_factory=list)
    EnvironmentVariables: dict[str, str] = Field(default_factory=dict)
    ImportModules: list[StorageSpec] = Field(default_factory=list)


class LegacyNetwork(_Model):
    Type: str | int = "None"
    Domains: list[str] = Field(default_factory=list)


class LegacyResources(_Model):
    CPU: str | int | float = ""
    Memory: str | int | float = ""
    Disk: str | int | float = ""
    GPU: str | int | float = ""


class LegacySpec(_Model):
    """The legacy job Spec (union of the V1beta1 and V1beta2 fields)."""

    Engine: str = ""
    EngineSpec: SpecConfig | None = None
    Verifier: str = ""
    Publisher: str = ""
    PublisherSpec: LegacyPublisherSpec | None = None
    Docker: LegacyDocker | None = None
    Wasm: LegacyWasm | None = None
    Language: dict[str, Any] | None = None
    Resources: LegacyResources | None = None
    Network: LegacyNetwork | None = None
    Timeout: FiniteFloat = 0
    Inputs: list[StorageSpec] = Field(default_factory=list)
    Outputs: list[StorageSpec] = Field(default_factory=list)
    Annotations: list[str] = Field(default_factory=list)
    NodeSelectors: list[Constraint] = Field(default_factory=list)
    DoNotTrack: bool = False
    Deal: LegacyDeal | None = None
    Sharding: dict[str, Any] | None = None
    Contexts: list[Any] = Field(default_factory=list)


class LegacyMetadata(_Model):
    ID: str = ""
    CreatedAt: str | None = None
    ClientID: str = ""
    Requester: dict[str, Any] | None = None


class LegacyJob(_Model):
    """The legacy envelope: `APIVersion` (V1beta1 or V1beta2), `Metadata`, `Spec`."""

    APIVersion: str = ""
    Metadata: LegacyMetadata | None = None
    Spec: LegacySpec | None = None


class IpvmTask(_Model):
    """The IPVM task form: `with` (image or module), `do` (task type), inputs, meta."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    with_: str = Field("", alias="with")
    do: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)


class IpvmInputs(_Model):
    """The `inputs` of an IPVM task (docker/run and wasm32-wasi/run share the names)."""

    entrypoint: list[str] | str = Field(default_factory=list)
    workdir: str = ""
    parameters: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)
    mounts: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)


class IpvmResources(_Model):
    cpu: int = Field(0, description="millicores")
    memory: int = Field(0, description="bytes")
    disk: int = Field(0, description="bytes")
    gpu: int = 0


class IpvmConfig(_Model):
    """`meta: {bacalhau/config: ...}` of an IPVM task."""

    publisher: int | str | None = None
    timeout: int | FiniteFloat = Field(0, description="nanoseconds")
    resources: IpvmResources | None = None
    annotations: list[str] = Field(default_factory=list)
    dnt: bool = False


# ---- minimal forms -----------------------------------------------------------------------


class _MinimalResources(_Model):
    cpu: str | int | float | None = Field(None, description="cores or millicores")
    memory: str | int | None = Field(None, description="bytes or a unit, e.g. 1Gi")
    disk: str | int | None = None
    gpu: int | str | bool | None = None
    timeout: int | str | None = Field(None, description="seconds or a duration like 10m")


class DockerRun(_MinimalResources):
    """`{image, command, args}`: what `bacalhau docker run IMAGE -- CMD ARGS` says."""

    image: str
    command: str | list[str] | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str = ""
    name: str = ""
    outputs: list[str] = Field(default_factory=list)


class WasmRun(_MinimalResources):
    """`{wasm: module reference, entrypoint, args}`: what `bacalhau wasm run` says."""

    wasm: str
    entrypoint: str = "_start"
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    name: str = ""


class CodeRun(_MinimalResources):
    """The code-runner request: a language, a program text and limits."""

    language: str
    code: str
    gpuCount: int = 0


# ---- case-insensitive key folding --------------------------------------------------------


@dataclass
class Folded:
    """The result of `fold_keys`: data with canonical key names, plus what did not fit."""

    data: Any
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (pointer, suggestion)
    clashes: list[str] = field(default_factory=list)  # pointers of keys given twice


_Shape = Union[type[BaseModel], tuple[str, Any], None]  # noqa: UP007 - recursive alias


def _child_shape(annotation: Any) -> _Shape:
    """What a field holds: a model, a list of models, or free-form data (None)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _child_shape(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            shape = _child_shape(arg)
            if shape is not None:
                return shape
        return None
    if origin is list:
        inner = _child_shape(typing.get_args(annotation)[0])
        return ("list", inner) if inner is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


@functools.cache
def _fields(model: type[BaseModel]) -> dict[str, tuple[str, _Shape, bool]]:
    """Lower-cased key -> (canonical key, shape of its value, whether it takes null),
    computed once per class."""
    table: dict[str, tuple[str, _Shape, bool]] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        table[key.lower()] = (key, _child_shape(info.annotation), _takes_null(info.annotation))
    return table


def _takes_null(annotation: Any) -> bool:
    if annotation is Any or annotation is type(None):
        return True
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _takes_null(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_takes_null(arg) for arg in typing.get_args(annotation))
    return False


def fold_keys(data: Any, model: type[BaseModel], *, ignore: tuple[str, ...] = ()) -> Folded:
    """Rename keys to the model's spelling, matching case-insensitively like Go's decoder.

    Unknown keys are left out and listed (with a did-you-mean suggestion) so the caller can
    warn or report them; keys that collide after folding are listed as clashes. `ignore`
    names top-level keys to drop without listing (the server-owned fields). A null given
    for a field that cannot be null (`Meta: null`, `Tasks: null`) is left out too, so the
    field gets its empty default, as Bacalhau's Go decoder gives it its zero value.
    """
    folded = Folded(data=None)
    folded.data = _fold(data, model, "", folded, {k.lower() for k in ignore})
    return folded


def _fold(data: Any, shape: _Shape, pointer: str, out: Folded, ignore: AbstractSet[str]) -> Any:
    if isinstance(shape, tuple):
        if not isinstance(data, list):
            return data
        inner = shape[1]
        return [_fold(item, inner, f"{pointer}/{i}", out, _NOTHING) for i, item in enumerate(data)]
    if type(data) is not dict and not isinstance(data, Mapping):  # the ABC check is slow
        return data
    table = _fields(shape)
    result: dict[str, Any] = {}
    for key, value in data.items():
        lowered = key.lower() if isinstance(key, str) else None
        if ignore and lowered in ignore:
            continue
        entry = table.get(lowered)  # no field is named None
        if entry is None:
            out.unknown.append(_unknown(pointer, key, shape))
            continue
        name, sub, takes_null = entry
        if name in result:
            out.clashes.append(f"{pointer}/{pointer_token(key)}")
            continue
        if value is None and not takes_null:
            continue  # Go decodes null into a list, map or string as its empty value
        # Leaves (free-form values) are taken as they are; only models are walked.
        result[name] = (
            value if sub is None else _fold(value, sub, f"{pointer}/{key}", out, _NOTHING)
        )
    return result


_NOTHING: frozenset[str] = frozenset()


def _closest_field(lowered: str, model: type[BaseModel]) -> str:
    """The model's field most like `lowered`, or ""."""
    table = _fields(model)
    close = difflib.get_close_matches(lowered, list(table), n=1)
    return table[close[0]][0] if close else ""


# difflib costs tens of microseconds a key, and legacy files repeat the same retired field
# names, so answers for short keys are remembered (long ones would pin their length)
_MEMORABLE_KEY = 64  # characters
_remembered_closest_field = functools.lru_cache(maxsize=1024)(_closest_field)


def _unknown(pointer: str, key: Any, model: type[BaseModel]) -> tuple[str, str]:
    """(pointer, closest known key) for a key the model does not have."""
    if not isinstance(key, str):
        return f"{pointer}/{key}", ""
    lowered = key.lower()
    closest = _remembered_closest_field if len(lowered) <= _MEMORABLE_KEY else _closest_field
    return f"{pointer}/{pointer_token(key)}", closest(lowered, model)


def source_pointer(original: Any, canonical: str) -> str:
    """Map a pointer in folded data back to the key spelling the document used."""
    return SourceSpelling(original).pointer(canonical)


class SourceSpelling:
    """Maps pointers in folded data back to the key spelling the document used.

    A report maps many pointers that share their first steps (`/Spec/Inputs/0/...`), so
    each step down is resolved once and remembered.
    """

    def __init__(self, original: Any) -> None:
        self._found: dict[str, tuple[str, Any]] = {"": ("", original)}  # -> (spelled, value)

    def pointer(self, canonical: str) -> str:
        if not canonical.startswith("/"):
            return canonical
        missing = []
        probe = canonical
        while probe not in self._found:  # ends at "", the root, at the latest
            missing.append(probe)
            probe = probe.rpartition("/")[0]
        spelled, node = self._found[probe]
        for step in reversed(missing):
            token = step[step.rfind("/") :]
            part = last_key(token)
            match, node = _step(node, part)
            spelled += token if match == part else "/" + pointer_token(match)
            self._found[step] = (spelled, node)
        return spelled


def _step(node: Any, part: str) -> tuple[str, Any]:
    """(the key as the document spells it, the value under it); None once off the data."""
    if type(node) is dict or isinstance(node, Mapping):
        if part in node:  # the common case: already canonical
            return part, node[part]
        lowered = part.lower()
        match = next((k for k in node if isinstance(k, str) and k.lower() == lowered), None)
        return (part, None) if match is None else (match, node[match])
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return part, node[int(part)]
    return part, None

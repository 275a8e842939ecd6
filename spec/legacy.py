"""Legacy jobs (V1beta1 / V1beta2 envelopes, bare Specs, IPVM tasks) -> the current model.

The mapping is Bacalhau's own (pkg/models/migration/legacy, FromLegacyJob): one task named
`main`; an `ops` job when `Deal.TargetingMode` is `all`, else `batch`; Count = Concurrency;
Annotations become Labels; NodeSelectors become Constraints; Inputs become InputSources
(ipfs, urlDownload, inline, localDirectory, s3); Outputs become ResultPaths; Timeout becomes
TotalTimeout; a network left out is `None` (the legacy zero value). Wasm modules become
input sources mounted where Bacalhau's legacy-wasm transformer mounts them.

Bacalhau drops what the current model cannot say (Verifier, Deal.Confidence/MinBids, S3
VersionID, Estuary/Filecoin sources and publishers ...) without a word; here every such
field is listed in the report as dropped, with its path, so nothing is lost silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from klippfisk.spec.models import (
    InputSource,
    IpvmConfig,
    IpvmInputs,
    IpvmTask,
    LegacyJob,
    LegacySpec,
    LegacyWasm,
    StorageSpec,
)
from klippfisk.spec.translation import Translation, parse_model

__all__ = ["API_VERSIONS", "rewrite_legacy_wasm", "translate_ipvm", "translate_legacy"]

API_VERSIONS = {"v1beta1": "V1beta1", "v1beta2": "V1beta2"}
TASK = "/Tasks/0"
ENTRY_MODULE_TARGET = "/wasm/entry.wasm"
IMPORT_MODULE_TARGET = "/wasm/imports/module_{}.wasm"
_PUBLISHERS = ("noop", "ipfs", "s3", "local")
_STORAGE = {
    "ipfs": "ipfs",
    "urldownload": "urlDownload",
    "inline": "inline",
    "localdirectory": "localDirectory",
    "s3": "s3",
}
_NETWORKS = {"none": "None", "full": "Full", "http": "HTTP", "0": "None", "1": "Full", "2": "HTTP"}
_IPVM_PUBLISHERS = {1: "noop", 2: "ipfs", "noop": "noop", "ipfs": "ipfs"}


def translate_legacy(data: Mapping[str, Any], *, envelope: bool) -> Translation:
    """Translate a legacy envelope (`envelope=True`) or a bare legacy Spec."""
    if not envelope:
        out = Translation(form="legacy-spec")
        spec, _ = parse_model(data, LegacySpec, "", out)
        if spec is not None:
            _translate_spec(spec, "", out)
        return out
    out = Translation(form="legacy")
    legacy, folded = parse_model(data, LegacyJob, "", out)
    if legacy is None:
        return out
    version = API_VERSIONS.get(legacy.APIVersion.strip().lower())
    if not legacy.APIVersion:
        out.error(
            "/APIVersion",
            "The legacy job has no APIVersion.",
            "Add `APIVersion: V1beta2` (or V1beta1) at the top, or rewrite it as a current job.",
        )
    elif version is None:
        out.error(
            "/APIVersion",
            f"Unknown APIVersion {legacy.APIVersion!r}.",
            "Use V1beta1 or V1beta2.",
        )
    else:
        out.form = f"legacy-{version.lower()}"
        out.dropped("/APIVersion", f"{version}: the current model has no API version field")
    if legacy.Metadata is not None:
        _translate_metadata(folded.data.get("Metadata") or {}, out)
    if legacy.Spec is None:
        out.error(
            "/Spec",
            "The legacy job has no Spec.",
            "Put Engine, Docker/Wasm, Inputs, Outputs ... under a `Spec:` key.",
        )
        return out
    _translate_spec(legacy.Spec, "/Spec", out)
    return out


def _translate_metadata(metadata: Mapping[str, Any], out: Translation) -> None:
    for key, value in metadata.items():
        if key == "ClientID" and value:
            out.job["Namespace"] = value
            out.translated(
                "/Metadata/ClientID", "/Namespace", "Bacalhau's namespace is the client ID"
            )
        else:
            out.dropped(f"/Metadata/{key}", "set by the server, not by the job")


def _translate_spec(spec: LegacySpec, at: str, out: Translation) -> None:
    given = spec.model_fields_set
    job = out.job
    job.update({"Name": "", "Type": "batch", "Labels": {}, "Constraints": []})
    task: dict[str, Any] = {"Name": "main", "InputSources": [], "ResultPaths": [], "Env": {}}
    job["Tasks"] = [task]
    out.origins.setdefault("", at)
    _translate_deal(spec, at, out)
    _translate_engine(spec, at, task, out)
    _translate_publisher(spec, at, task, out)
    for index, item in enumerate(spec.Inputs):
        _translate_input(item, f"{at}/Inputs/{index}", task, out)
    for index, item in enumerate(spec.Outputs):
        _translate_output(item, f"{at}/Outputs/{index}", task, out)
    if spec.Resources is not None:
        task["Resources"] = spec.Resources.model_dump()
        _each_field(spec.Resources, f"{at}/Resources", f"{TASK}/Resources", out)
    network = spec.Network
    kind = _NETWORKS.get(str(network.Type).strip().lower()) if network else "None"
    if kind is None:
        out.error(
            f"{at}/Network/Type",
            f"Unknown legacy network type {network.Type!r}.",
            "Use None, Full or HTTP.",
        )
    task["Network"] = {"Type": kind or "None", "Domains": network.Domains if network else []}
    if network is not None:
        _each_field(network, f"{at}/Network", f"{TASK}/Network", out)
    if spec.Timeout:
        seconds = int(spec.Timeout)
        task["Timeouts"] = {"TotalTimeout": seconds}
        note = "" if seconds == spec.Timeout else "rounded down to whole seconds"
        out.translated(f"{at}/Timeout", f"{TASK}/Timeouts/TotalTimeout", note)
    if spec.Annotations:
        job["Labels"] = {label: "" for label in spec.Annotations}
        out.translated(
            f"{at}/Annotations", "/Labels", "each annotation becomes a label with an empty value"
        )
    if spec.NodeSelectors:
        job["Constraints"] = [c.model_dump() for c in spec.NodeSelectors]
        out.translated(f"{at}/NodeSelectors", "/Constraints")
    for name, note in (
        ("Verifier", "the current model has no verifiers"),
        ("DoNotTrack", "the current model has no do-not-track flag"),
        ("Sharding", "the current model has no sharding"),
        ("Contexts", "the current model has no contexts"),
    ):
        if name in given:
            out.dropped(f"{at}/{name}", note)


def _each_field(section: BaseModel, at: str, target: str, out: Translation) -> None:
    """Record each field a legacy section gave as translated to the same name under `target`."""
    out.origins.setdefault(target, at)
    given = section.model_fields_set
    for name in type(section).model_fields:  # declaration order: a stable report
        if name in given and getattr(section, name) not in ("", None, [], {}):
            out.translated(f"{at}/{name}", f"{target}/{name}")


def _translate_deal(spec: LegacySpec, at: str, out: Translation) -> None:
    deal = spec.Deal
    if deal is None:
        return
    targets_all = deal.TargetingMode is True or str(deal.TargetingMode).lower() in ("all", "true")
    if "TargetingMode" in deal.model_fields_set:
        out.translated(f"{at}/Deal/TargetingMode", "/Type", "all -> ops, any -> batch")
    if targets_all:
        out.job["Type"] = "ops"
    if "Concurrency" in deal.model_fields_set and deal.Concurrency:
        out.job["Count"] = deal.Concurrency
        out.translated(f"{at}/Deal/Concurrency", "/Count")
    for name in ("Confidence", "MinBids"):
        if name in deal.model_fields_set:
            out.dropped(f"{at}/Deal/{name}", "the current model has no verification quorum")


def _translate_engine(spec: LegacySpec, at: str, task: dict[str, Any], out: Translation) -> None:
    if spec.EngineSpec is not None and spec.EngineSpec.Type:
        engine_type = spec.EngineSpec.Type.strip().lower()
        params = dict(spec.EngineSpec.Params)
        out.translated(f"{at}/EngineSpec", f"{TASK}/Engine")
        if engine_type == "wasm":
            where = f"{at}/EngineSpec/Params"
            wasm, _ = parse_model(_legacy_wasm_params(params), LegacyWasm, where, out)
            params = _translate_wasm(wasm, where, task, out) if wasm else {}
        task["Engine"] = {"Type": engine_type, "Params": params}
        if spec.Engine:
            out.dropped(f"{at}/Engine", "EngineSpec takes precedence")
        return
    engine_type = spec.Engine.strip().lower()
    if engine_type == "docker":
        docker = spec.Docker.model_dump(exclude_defaults=True) if spec.Docker else {}
        task["Engine"] = {"Type": "docker", "Params": docker}
        if spec.Docker is not None:
            _each_field(spec.Docker, f"{at}/Docker", f"{TASK}/Engine/Params", out)
    elif engine_type == "wasm":
        params = _translate_wasm(spec.Wasm or LegacyWasm(), f"{at}/Wasm", task, out)
        task["Engine"] = {"Type": "wasm", "Params": params}
    elif engine_type == "noop":
        task["Engine"] = {"Type": "noop", "Params": {}}
    elif not engine_type:
        out.error(
            f"{at}/Engine", "The legacy spec names no engine.", "Set Engine: docker, wasm or noop."
        )
        return
    else:
        out.error(
            f"{at}/Engine",
            f"The legacy engine {spec.Engine!r} has no equivalent in the current model.",
            "Rewrite the job with the docker or wasm engine.",
            code="unrepresentable",
        )
        return
    out.translated(f"{at}/Engine", f"{TASK}/Engine/Type")
    for name in ("Docker", "Wasm", "Language"):
        if name in spec.model_fields_set and name.lower() != engine_type:
            out.dropped(f"{at}/{name}", f"the engine is {engine_type}, so this section is unused")


def _legacy_wasm_params(params: dict[str, Any]) -> dict[str, Any]:
    table = {name.lower(): name for name in LegacyWasm.model_fields}
    table["entrypoint"] = "EntryPoint"
    return {table.get(k.lower(), k): v for k, v in params.items()}


def _translate_wasm(
    wasm: LegacyWasm, at: str, task: dict[str, Any], out: Translation
) -> dict[str, Any]:
    """Mount legacy wasm modules as inputs and point the engine at them, as Bacalhau does."""
    params: dict[str, Any] = {"EntryModule": ""}
    if wasm.EntryModule is not None and wasm.EntryModule.StorageSource:
        source = _input_source(wasm.EntryModule, f"{at}/EntryModule", out)
        if source is not None:
            source["Target"] = wasm.EntryModule.Path or ENTRY_MODULE_TARGET
            params["EntryModule"] = source["Target"]
            task["InputSources"].append(source)
            out.rewritten(
                f"{at}/EntryModule",
                f"{TASK}/InputSources/{len(task['InputSources']) - 1}",
                f"the module is mounted at {source['Target']} and named by EntryModule",
            )
    if wasm.EntryPoint:
        params["Entrypoint"] = wasm.EntryPoint
        out.translated(f"{at}/EntryPoint", f"{TASK}/Engine/Params/Entrypoint")
    if wasm.Parameters:
        params["Parameters"] = list(wasm.Parameters)
        out.translated(f"{at}/Parameters", f"{TASK}/Engine/Params/Parameters")
    if wasm.EnvironmentVariables:
        task["Env"].update(wasm.EnvironmentVariables)
        out.rewritten(f"{at}/EnvironmentVariables", f"{TASK}/Env", "wasm variables are task Env")
    imports = []
    for index, module in enumerate(wasm.ImportModules):
        source = _input_source(module, f"{at}/ImportModules/{index}", out)
        if source is None:
            continue
        source["Target"] = module.Path or IMPORT_MODULE_TARGET.format(index)
        task["InputSources"].append(source)
        imports.append(source["Target"])
        out.rewritten(
            f"{at}/ImportModules/{index}",
            f"{TASK}/InputSources/{len(task['InputSources']) - 1}",
            f"mounted at {source['Target']}",
        )
    if imports:
        params["ImportModules"] = imports
    return params


def _translate_publisher(spec: LegacySpec, at: str, task: dict[str, Any], out: Translation) -> None:
    chosen = spec.PublisherSpec if spec.PublisherSpec and spec.PublisherSpec.Type else None
    name = (chosen.Type if chosen else spec.Publisher).strip()
    where = f"{at}/PublisherSpec" if chosen else f"{at}/Publisher"
    if not name:
        return
    if name.lower() in _PUBLISHERS:
        task["Publisher"] = {"Type": name.lower(), "Params": dict(chosen.Params) if chosen else {}}
        out.translated(where, f"{TASK}/Publisher")
    else:
        out.dropped(where, f"the {name} publisher no longer exists; results need another publisher")
    if chosen and spec.Publisher:
        out.dropped(f"{at}/Publisher", "PublisherSpec takes precedence")


def _input_source(item: StorageSpec, at: str, out: Translation) -> dict[str, Any] | None:
    """A legacy StorageSpec as a current InputSource, or None (with a report entry)."""
    kind = _STORAGE.get(item.StorageSource.strip().lower())
    if kind is None:
        out.dropped(at, f"the {item.StorageSource or 'unnamed'} storage source has no equivalent")
        return None
    params: dict[str, Any]
    if kind == "ipfs":
        params = {"CID": item.CID}
    elif kind in ("urlDownload", "inline"):
        params = {"URL": item.URL}
    elif kind == "localDirectory":
        params = {"SourcePath": item.SourcePath, "ReadWrite": item.ReadWrite}
    else:
        s3 = {k.lower(): v for k, v in (item.S3 or {}).items()}
        fields = {
            "Bucket": s3.get("bucket"),
            "Key": s3.get("key"),
            "Region": s3.get("region"),
            "Endpoint": s3.get("endpoint"),
            "ChecksumSHA256": s3.get("checksum") or s3.get("checksumsha256"),
        }
        params = {name: value for name, value in fields.items() if value}
        if s3.get("versionid"):
            out.dropped(
                f"{at}/S3/VersionID", "the current s3 source always reads the latest version"
            )
    missing = next((k for k in ("CID", "URL", "SourcePath") if k in params and not params[k]), None)
    if missing:
        out.error(f"{at}/{missing}", f"The {kind} source has no {missing}.", f"Set {missing}.")
        return None
    if item.Metadata:
        out.dropped(f"{at}/Metadata", "input metadata has no equivalent")
    if item.Repo:
        out.dropped(f"{at}/Repo", "repository sources have no equivalent")
    return {"Source": {"Type": kind, "Params": params}, "Alias": item.Name, "Target": item.Path}


def _translate_input(item: StorageSpec, at: str, task: dict[str, Any], out: Translation) -> None:
    source = _input_source(item, at, out)
    if source is not None:
        task["InputSources"].append(source)
        out.translated(at, f"{TASK}/InputSources/{len(task['InputSources']) - 1}")


def _translate_output(item: StorageSpec, at: str, task: dict[str, Any], out: Translation) -> None:
    task["ResultPaths"].append({"Name": item.Name, "Path": item.Path})
    out.translated(at, f"{TASK}/ResultPaths/{len(task['ResultPaths']) - 1}")
    if item.StorageSource:
        out.dropped(f"{at}/StorageSource", "outputs go wherever the task's publisher sends them")
    for name in ("CID", "URL"):
        if getattr(item, name):
            out.dropped(f"{at}/{name}", "a result's address is known only after it is published")


def rewrite_legacy_wasm(task: dict[str, Any], at: str, out: Translation) -> None:
    """Current-model wasm params that still carry module objects -> mounted inputs.

    Bacalhau's orchestrator does this on submission (LegacyWasmModuleTransformer): an
    `EntryModule` (or `ImportModules` entry) given as an InputSource object is appended to
    the task's inputs, mounted at /wasm/entry.wasm (/wasm/imports/module_N.wasm) unless it
    names a Target, and the params keep only the mount paths.
    """
    engine = task.get("Engine") or {}
    if str(engine.get("Type") or "").strip().lower() != "wasm":
        return
    params = {str(k).lower(): (k, v) for k, v in (engine.get("Params") or {}).items()}
    entry = params.get("entrymodule", (None, None))[1]
    imports = params.get("importmodules", (None, []))[1] or []
    if not isinstance(entry, Mapping) and not any(isinstance(m, Mapping) for m in imports):
        return
    where = f"{at}/Engine/Params"
    new: dict[str, Any] = {}
    if isinstance(entry, Mapping):
        new["EntryModule"] = _mount_module(
            entry, ENTRY_MODULE_TARGET, f"{where}/EntryModule", task, out
        )
    for name in ("Entrypoint", "Parameters"):
        if params.get(name.lower(), (None, None))[1] is not None:
            new[name] = params[name.lower()][1]
    paths: list[Any] = []
    for index, module in enumerate(imports if isinstance(imports, list) else []):
        if isinstance(module, Mapping):
            target = IMPORT_MODULE_TARGET.format(index)
            paths.append(_mount_module(module, target, f"{where}/ImportModules/{index}", task, out))
        else:
            paths.append(module)  # already a mount path (or junk the engine check refuses)
    if paths or not isinstance(imports, list):
        new["ImportModules"] = paths or imports
    for lowered, (key, value) in params.items():
        if lowered not in ("entrymodule", "importmodules", "entrypoint", "parameters") and value:
            out.dropped(f"{where}/{key}", "the current wasm engine has no such parameter")
    engine["Params"] = new


def _mount_module(
    module: Mapping[str, Any], default: str, at: str, task: dict[str, Any], out: Translation
) -> str:
    source, _ = parse_model(module, InputSource, at, out)
    if source is None:
        return ""
    mounted = source.model_dump()
    mounted["Target"] = mounted["Target"] or default
    if source.Source is None or not source.Source.Type.strip():
        out.error(
            f"{at}/Source/Type",
            "The wasm module's input source has no type.",
            "Set Source.Type, e.g. inline, ipfs or urlDownload.",
        )
    task["InputSources"].append(mounted)
    out.rewritten(
        at,
        f"{at.split('/Engine')[0]}/InputSources/{len(task['InputSources']) - 1}",
        f"the module is mounted at {mounted['Target']}, as Bacalhau's orchestrator does",
    )
    return mounted["Target"]


# ---- IPVM tasks (`with` / `do`) ------------------------------------------------------------


def translate_ipvm(data: Mapping[str, Any]) -> Translation:
    """Translate an IPVM task (`docker/run`, `wasm32-wasi/run`, `noop`) as Bacalhau did."""
    out = Translation(form="ipvm")
    task_form, _ = parse_model(data, IpvmTask, "", out)
    inputs, _ = parse_model(task_form.inputs if task_form else {}, IpvmInputs, "/inputs", out)
    if task_form is None or inputs is None:
        return out
    spec: dict[str, Any] = {}
    do = task_form.do.strip()
    if do == "docker/run":
        entrypoint = inputs.entrypoint
        spec["Engine"] = "docker"
        spec["Docker"] = {
            "Image": task_form.with_,
            "Entrypoint": [entrypoint] if isinstance(entrypoint, str) else entrypoint,
            "WorkingDirectory": inputs.workdir,
            "EnvironmentVariables": [f"{k}={v}" for k, v in inputs.env.items()],
        }
    elif do == "wasm32-wasi/run":
        spec["Engine"] = "wasm"
        spec["Wasm"] = {
            "EntryModule": dict(_resource(task_form.with_), Path="/job"),
            "EntryPoint": inputs.entrypoint if isinstance(inputs.entrypoint, str) else "",
            "Parameters": inputs.parameters,
            "EnvironmentVariables": inputs.env,
            "ImportModules": [_resource(ref) for ref in inputs.modules],
        }
    elif do == "noop":
        spec["Engine"] = "noop"
    else:
        out.error(
            "/do", f"Unknown IPVM task type {do!r}.", "Use docker/run, wasm32-wasi/run or noop."
        )
        return out
    spec["Inputs"] = [dict(_resource(ref), Path=path) for path, ref in inputs.mounts.items()]
    spec["Outputs"] = [{"Name": path.strip("/"), "Path": path} for path in inputs.outputs]
    for key, value in task_form.meta.items():
        if key != "bacalhau/config":
            out.error(
                f"/meta/{key}",
                f"Unknown IPVM config {key!r}.",
                "Only bacalhau/config is understood.",
            )
            continue
        config, _ = parse_model(value, IpvmConfig, "/meta/bacalhau~1config", out)
        if config is not None:
            _ipvm_config(config, spec, out)
    legacy_spec, _ = parse_model(spec, LegacySpec, "", out)
    if legacy_spec is not None and not out.problems:
        _translate_spec(legacy_spec, "", out)
        out.migrations = [m for m in out.migrations if m.action == "dropped"]
        out.translated("/with", f"{TASK}/Engine", f"the {do} task becomes the job's one task")
        out.translated("/inputs", TASK, "entrypoint, mounts, outputs and env become the task's")
        out.origins = {"": ""}
    return out


def _resource(ref: str) -> dict[str, Any]:
    """An IPVM resource string (`ipfs://CID` or an http(s) URL) as a legacy StorageSpec."""
    if ref.startswith("ipfs://"):
        return {"StorageSource": "ipfs", "CID": ref.removeprefix("ipfs://").strip("/")}
    if ref.startswith("data:"):
        return {"StorageSource": "inline", "URL": ref}
    return {"StorageSource": "urlDownload", "URL": ref}


def _ipvm_config(config: IpvmConfig, spec: dict[str, Any], out: Translation) -> None:
    at = "/meta/bacalhau~1config"
    if config.publisher is not None:
        name = _IPVM_PUBLISHERS.get(config.publisher)
        if name is None:
            out.error(
                f"{at}/publisher",
                f"Unknown IPVM publisher {config.publisher!r}.",
                "Use 1 (noop) or 2 (ipfs).",
            )
        else:
            spec["Publisher"] = name
    spec["Annotations"] = config.annotations
    spec["Timeout"] = int(config.timeout // 1_000_000_000)  # nanoseconds
    if config.timeout < 0:
        out.error(f"{at}/timeout", "The timeout is negative.", "Use 0 for no limit.")
    resources = config.resources
    if resources is not None:
        spec["Resources"] = {
            "CPU": f"{resources.cpu}m" if resources.cpu else "",
            "Memory": str(resources.memory) if resources.memory else "",
            "Disk": str(resources.disk) if resources.disk else "",
            "GPU": str(resources.gpu) if resources.gpu else "",
        }
    if config.dnt:
        out.dropped(f"{at}/dnt", "the current model has no do-not-track flag")

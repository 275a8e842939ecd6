"""Bacalhau's job rules, checked all at once, and the normalisation that goes with them.

The rules are the ones a Bacalhau orchestrator applies at submission (`Job.ValidateSubmission`)
and after defaults (`Job.Validate`, `Task.Validate`), plus the engine checks its executors make
when decoding params (docker: Image, absolute WorkingDirectory; wasm: EntryModule). Each fault
becomes a `Problem` with the JSON pointer of the offending field; the caller adds line:col.

Parsing a quantity and checking it are the same step, so normalisation lives here too: a
valid job leaves `check` with every quantity in its canonical spelling (see spec.models).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from klippfisk.spec.compiled import Warning_
from klippfisk.spec.errors import Problem, shown
from klippfisk.spec.models import NETWORK_TYPES
from klippfisk.spec.pointer import pointer_token
from klippfisk.spec.quantities import (
    format_cpu,
    parse_bytes,
    parse_cpu,
    parse_duration_seconds,
    parse_gpu,
)

__all__ = ["JOB_TYPES", "KNOWN_ENGINES", "Findings", "check"]

JOB_TYPES = ("batch", "ops", "daemon", "service")
KNOWN_ENGINES = ("docker", "wasm", "noop")
ENV_PREFIX = "BACALHAU_"
MAX_INTEGER = 2**53 - 1  # canonical JSON keeps integers exact only up to here
META_RESERVED = "bacalhau.org/"
SET_OPERATORS = ("in", "notin")
EXISTS_OPERATORS = ("exists", "!")
VALUE_OPERATORS = ("=", "==", "!=", "gt", "lt")
_DOMAIN = re.compile(r"\b([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,}\b")
_PORT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_PORT_NAME = 256 - len("BACALHAU_HOST_PORT_")
_NETWORKS = {name.lower(): name for name in NETWORK_TYPES}


@dataclass
class Findings:
    """Problems (the job is invalid) and warnings (it is valid but suspicious)."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)

    def error(self, pointer: str, message: str, hint: str = "", code: str = "invalid") -> None:
        self.problems.append(Problem(pointer=pointer, message=message, hint=hint, code=code))

    def warn(self, code: str, pointer: str, message: str, hint: str = "") -> None:
        self.warnings.append(Warning_(code=code, pointer=pointer, message=message, hint=hint))


def check(job: dict[str, Any], findings: Findings) -> None:
    """Check and normalise a defaulted job (a dumped `models.Job`) in place."""
    job_type = job.get("Type") or ""
    if not job_type:
        findings.error(
            "/Type", "The job has no Type.", "Set Type to batch, ops, daemon or service."
        )
    elif job_type not in JOB_TYPES:
        findings.error(
            "/Type", f"The job type {job_type!r} is not one Bacalhau knows.", _one_of(JOB_TYPES)
        )
    count = job.get("Count") or 0
    for name in ("Count", "Priority"):
        if abs(job.get(name) or 0) > MAX_INTEGER:
            findings.error(f"/{name}", f"{name} is too large.", "Use a number below 2^53.")
            job[name] = 0
    if count < 0:
        findings.error("/Count", "Count must be 0 or more.", "Set Count to a whole number >= 0.")
    elif count > 1 and job_type in ("daemon", "ops"):
        findings.error(
            "/Count",
            f"{job_type} jobs cannot set Count above 1: they run on every matching node.",
            "Remove Count, or use a batch or service job to run a fixed number of copies.",
        )
    _check_text(job.get("Name") or "", "/Name", "job name", findings)
    if not (job.get("Namespace") or "").strip():
        findings.error("/Namespace", "The job must be in a namespace.", "Set Namespace.")
    _drop_reserved_meta(job.get("Meta") or {}, "/Meta", findings)
    for index, constraint in enumerate(job.get("Constraints") or []):
        _check_constraint(constraint, f"/Constraints/{index}", findings)
    tasks = job.get("Tasks") or []
    if not tasks:
        findings.error("/Tasks", "The job has no tasks.", "Add one task under Tasks.")
    elif len(tasks) > 1:
        findings.warn(
            "extra-tasks-dropped",
            "/Tasks",
            f"Bacalhau runs only one task per job; tasks after the first ({len(tasks) - 1}) "
            "were dropped.",
            "Split the extra tasks into jobs of their own.",
        )
        del tasks[1:]
    for index, task in enumerate(tasks):
        _check_task(task, f"/Tasks/{index}", findings)


def _one_of(choices: tuple[str, ...]) -> str:
    return "Use one of: " + ", ".join(choices) + "."


def _check_text(value: str, pointer: str, what: str, findings: Findings) -> None:
    if "\x00" in value:
        findings.error(pointer, f"The {what} contains a null character.", "Remove it.")


def _drop_reserved_meta(meta: dict[str, str], pointer: str, findings: Findings) -> None:
    for key in [k for k in meta if k.startswith(META_RESERVED)]:
        del meta[key]
        findings.warn(
            "reserved-meta-key",
            f"{pointer}/{pointer_token(key)}",
            f"The meta key {key!r} is reserved for Bacalhau and was ignored.",
            f"Use a key that does not start with {META_RESERVED}.",
        )


def _check_constraint(constraint: dict[str, Any], pointer: str, findings: Findings) -> None:
    if not (constraint.get("Key") or "").strip():
        findings.error(f"{pointer}/Key", "The constraint key is blank.", "Name a node label.")
    operator = constraint.get("Operator") or ""
    values = constraint.get("Values") or []
    if operator in SET_OPERATORS:
        if not values:
            findings.error(
                f"{pointer}/Values",
                f"The {operator} operator needs at least one value.",
                "List the accepted label values under Values.",
            )
    elif operator in EXISTS_OPERATORS:
        if values:
            findings.error(
                f"{pointer}/Values",
                f"The {operator} operator takes no values.",
                "Remove Values from this constraint.",
            )
    elif operator in VALUE_OPERATORS:
        if len(values) != 1:
            findings.error(
                f"{pointer}/Values",
                f"The {operator} operator needs exactly one value.",
                "Give a single value under Values.",
            )
    else:
        lowered = operator.lower().replace(" ", "")
        known = SET_OPERATORS + EXISTS_OPERATORS + VALUE_OPERATORS
        hint = f"Did you mean {lowered!r}?" if lowered in known else _one_of(known)
        findings.error(f"{pointer}/Operator", f"Unknown constraint operator {operator!r}.", hint)


def _check_task(task: dict[str, Any], pointer: str, findings: Findings) -> None:
    if not (task.get("Name") or "").strip():
        findings.error(f"{pointer}/Name", "The task has no name.", "Set Name, e.g. main.")
    _check_text(task.get("Name") or "", f"{pointer}/Name", "task name", findings)
    _check_env(task.get("Env") or {}, f"{pointer}/Env", findings)
    _check_engine(task, pointer, findings)
    task["Publisher"] = _spec_config(task.get("Publisher"))
    _normalise_resources(task, f"{pointer}/Resources", findings)
    _check_timeouts(task, f"{pointer}/Timeouts", findings)
    _check_inputs(task.get("InputSources") or [], f"{pointer}/InputSources", findings)
    _check_results(task, pointer, findings)
    _check_network(task, f"{pointer}/Network", findings)


def _spec_config(value: dict[str, Any] | None) -> dict[str, Any]:
    value = value or {}
    return {"Type": (value.get("Type") or "").strip(), "Params": value.get("Params") or {}}


def _check_env(env: dict[str, str], pointer: str, findings: Findings) -> None:
    for name, value in env.items():
        where = f"{pointer}/{pointer_token(name)}"
        if not name:
            findings.error(where, "An environment variable has an empty name.", "Name it.")
            continue
        fix = f"Rename it, e.g. {_env_name(name)!r}."
        if name != name.upper():
            findings.error(where, f"The environment variable {name!r} must be upper case.", fix)
        elif not name[0].isalpha():
            findings.error(
                where, f"The environment variable {name!r} must start with a letter.", fix
            )
        elif not all(c.isalnum() or c == "_" for c in name):
            findings.error(
                where,
                f"The environment variable {name!r} may hold only letters, digits and underscores.",
                fix,
            )
        elif name.upper().startswith(ENV_PREFIX):
            findings.error(
                where,
                f"The environment variable {name!r} must not start with {ENV_PREFIX}.",
                "That prefix is reserved for Bacalhau; choose another name.",
            )
        if value == "":
            findings.error(
                where, f"The environment variable {name!r} has an empty value.", "Give it a value."
            )


def _env_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name).upper()
    return cleaned if cleaned[:1].isalpha() else f"V_{cleaned}"


def _check_engine(task: dict[str, Any], pointer: str, findings: Findings) -> None:
    engine = task.get("Engine")
    if engine is None:
        findings.error(f"{pointer}/Engine", "The task has no engine.", "Add Engine with a Type.")
        task["Engine"] = _spec_config(None)
        return
    engine = task["Engine"] = _spec_config(engine)
    engine_type = engine["Type"]
    where = f"{pointer}/Engine"
    if not engine_type:
        findings.error(f"{where}/Type", "The engine has no type.", _one_of(KNOWN_ENGINES))
        return
    lowered = engine_type.lower()
    if lowered in KNOWN_ENGINES:
        engine["Type"] = lowered
    else:
        findings.warn(
            "unknown-engine",
            f"{where}/Type",
            f"The engine type {engine_type!r} is not built in; the job compiles but only a "
            "node with that engine can run it.",
            _one_of(KNOWN_ENGINES),
        )
        return
    checker = _ENGINE_CHECKS.get(lowered)
    if checker:
        engine["Params"] = checker(engine["Params"], f"{where}/Params", findings)


def _canonical_params(params: dict[str, Any], spelling: dict[str, str]) -> dict[str, Any]:
    """Rename known engine params to their canonical spelling (Go decodes them case-blind);
    `spelling` maps each lower-cased name to it."""
    return {spelling.get(key.lower(), key): value for key, value in params.items()}


DOCKER_PARAMS = ("Image", "Entrypoint", "Parameters", "EnvironmentVariables", "WorkingDirectory")
WASM_PARAMS = ("EntryModule", "Entrypoint", "Parameters", "ImportModules", "EnvironmentVariables")
_DOCKER_SPELLING = {name.lower(): name for name in DOCKER_PARAMS}
_WASM_SPELLING = {name.lower(): name for name in WASM_PARAMS}


def _check_docker(params: dict[str, Any], pointer: str, findings: Findings) -> dict[str, Any]:
    params = _canonical_params(params, _DOCKER_SPELLING)
    _require_text(
        params, "Image", pointer, "docker", "Set Params.Image, e.g. ubuntu:24.04.", findings
    )
    workdir = params.get("WorkingDirectory")
    if workdir and not (isinstance(workdir, str) and workdir.startswith("/")):
        findings.error(
            f"{pointer}/WorkingDirectory",
            f"The working directory {workdir!r} is not an absolute path.",
            "Start it with /.",
        )
    for index, entry in enumerate(params.get("EnvironmentVariables") or []):
        name = str(entry).split("=", 1)[0]
        if name.upper().startswith(ENV_PREFIX):
            findings.error(
                f"{pointer}/EnvironmentVariables/{index}",
                f"The environment variable {name!r} must not start with {ENV_PREFIX}.",
                "That prefix is reserved for Bacalhau; choose another name.",
            )
    _check_string_lists(
        params, ("Entrypoint", "Parameters", "EnvironmentVariables"), pointer, findings
    )
    return params


def _check_wasm(params: dict[str, Any], pointer: str, findings: Findings) -> dict[str, Any]:
    params = _canonical_params(params, _WASM_SPELLING)
    hint = "Set Params.EntryModule to the Target of the input source holding the module."
    _require_text(params, "EntryModule", pointer, "wasm", hint, findings)
    _check_string_lists(params, ("Parameters", "ImportModules"), pointer, findings)
    entry, imports = params.get("EntryModule"), params.get("ImportModules")
    modules = [("EntryModule", entry)] if isinstance(entry, str) else []
    if isinstance(imports, list):
        modules += [(f"ImportModules/{i}", m) for i, m in enumerate(imports) if isinstance(m, str)]
    for name, module in modules:
        if ".." in module.replace("\\", "/").split("/"):
            findings.error(
                f"{pointer}/{name}",
                f"The module path {module!r} climbs out of its input with '..'.",
                "Name the module by the Target it is mounted at, e.g. /job/main.wasm, "
                "without '..' segments.",
            )
    return params


def _require_text(
    params: dict[str, Any], name: str, pointer: str, engine: str, hint: str, findings: Findings
) -> None:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        findings.error(f"{pointer}/{name}", f"The {engine} engine needs Params.{name}.", hint)


def _check_string_lists(
    params: dict[str, Any], names: tuple[str, ...], pointer: str, findings: Findings
) -> None:
    for name in names:
        value = params.get(name)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            findings.error(
                f"{pointer}/{name}", f"{name} must be a list of strings.", "Quote each item."
            )


_ENGINE_CHECKS: dict[str, Callable[[dict[str, Any], str, Findings], dict[str, Any]]] = {
    "docker": _check_docker,
    "wasm": _check_wasm,
}


def _normalise_resources(task: dict[str, Any], pointer: str, findings: Findings) -> None:
    resources = task.get("Resources") or {}
    task["Resources"] = {
        "CPU": _quantity(resources.get("CPU"), f"{pointer}/CPU", _cpu, "CPU", findings, "0m"),
        "Memory": _quantity(
            resources.get("Memory"), f"{pointer}/Memory", _bytes, "memory", findings, "0"
        ),
        "Disk": _quantity(resources.get("Disk"), f"{pointer}/Disk", _bytes, "disk", findings, "0"),
        "GPU": _quantity(resources.get("GPU"), f"{pointer}/GPU", _gpu, "GPU", findings, "0"),
    }


def _cpu(value: str | int) -> str:
    return format_cpu(parse_cpu(value))


def _bytes(value: str | int) -> str:
    return str(parse_bytes(value))


def _gpu(value: str | int) -> str:
    return str(parse_gpu(value))


# Documents spell their quantities in a handful of ways ("500m", "1Gi", 2), so canonical
# forms are remembered. Only short spellings are (a stranger's megabyte of zeros would pin
# a megabyte per entry), and not refusals (ValueError), so each is reported afresh.
_MEMORABLE_QUANTITY = 32  # characters


@functools.lru_cache(maxsize=1024)
def _remembered(parse: Callable[[str | int], str], value: str | int) -> str:
    return parse(value)


_QUANTITY_HINTS = {
    "CPU": "Write cores (1, 0.5) or millicores (500m).",
    "memory": "Write bytes with a unit: 512Mb (= 512e6), 1Gi (= 2^30), 2GB (= 2e9).",
    "disk": "Write bytes with a unit: 10GB, 20Gi.",
    "GPU": "Write a whole number of GPUs, e.g. 1.",
}


def _quantity(
    value: Any,
    pointer: str,
    parse: Callable[[str | int], str],
    what: str,
    findings: Findings,
    zero: str,
) -> str:
    if value is None or isinstance(value, bool):
        return zero
    if not isinstance(value, int):  # an int goes as it is: str() refuses one of 4300+ digits
        value = str(value).lower().replace(" ", "").replace("\n", "")
    if value == "":
        return zero
    try:
        if isinstance(value, int) or len(value) <= _MEMORABLE_QUANTITY:
            return _remembered(parse, value)
        return parse(value)
    except ValueError as exc:
        findings.error(pointer, str(exc), _QUANTITY_HINTS[what])
        return zero


def _check_timeouts(task: dict[str, Any], pointer: str, findings: Findings) -> None:
    given = task.get("Timeouts") or {}
    seconds: dict[str, int] = {}
    for name in ("ExecutionTimeout", "QueueTimeout", "TotalTimeout"):
        seconds[name] = _seconds(given.get(name), f"{pointer}/{name}", findings)
    task["Timeouts"] = seconds
    total, execution, queue = (
        seconds["TotalTimeout"],
        seconds["ExecutionTimeout"],
        seconds["QueueTimeout"],
    )
    if total > 0 and execution >= 0 and queue >= 0 and execution + queue > total:
        findings.error(
            f"{pointer}/TotalTimeout",
            f"ExecutionTimeout ({execution}s) plus QueueTimeout ({queue}s) exceed "
            f"TotalTimeout ({total}s).",
            "Raise TotalTimeout or lower the other two.",
        )


def _seconds(value: Any, pointer: str, findings: Findings) -> int:
    if value is None or value == "":
        return 0
    try:
        return parse_duration_seconds(value)
    except ValueError as exc:
        findings.error(
            pointer, str(exc), "Write whole seconds or a duration (90s, 10m); 0 means no limit."
        )
        return 0


class _Seen:
    """Values earlier items of a list already used, per field: Bacalhau wants them unique."""

    def __init__(self, findings: Findings) -> None:
        self._findings = findings
        self._seen: dict[str, set[Any]] = {}

    def once(self, field: str, value: Any, pointer: str, what: str) -> None:
        seen = self._seen.setdefault(field, set())
        if value in seen:
            self._findings.error(
                pointer,
                f"The {what} {value!r} is used more than once.",
                f"Give each its own {field}.",
            )
        seen.add(value)


def _check_inputs(inputs: list[dict[str, Any]], pointer: str, findings: Findings) -> None:
    seen = _Seen(findings)
    for index, item in enumerate(inputs):
        where = f"{pointer}/{index}"
        item["Alias"] = (item.get("Alias") or "").strip()
        item["Target"] = (item.get("Target") or "").strip()
        if item.get("Source") is None:
            findings.error(f"{where}/Source", "The input source has no Source.", "Add Source.Type.")
        item["Source"] = source = _spec_config(item.get("Source"))
        if not source["Type"]:
            findings.error(
                f"{where}/Source/Type",
                "The input source has no type.",
                "Use one of: ipfs, urlDownload, s3, inline, localDirectory, local.",
            )
        if not item["Target"]:
            findings.error(
                f"{where}/Target", "The input source has no target.", "Set Target to a mount path."
            )
        else:
            seen.once("Target", item["Target"], f"{where}/Target", "input target")
        if item["Alias"]:
            seen.once("Alias", item["Alias"], f"{where}/Alias", "input alias")


def _check_results(task: dict[str, Any], pointer: str, findings: Findings) -> None:
    seen = _Seen(findings)
    results = task.get("ResultPaths") or []
    for index, item in enumerate(results):
        where = f"{pointer}/ResultPaths/{index}"
        item["Name"] = name = (item.get("Name") or "").strip()
        item["Path"] = path = (item.get("Path") or "").strip()
        if not name:
            findings.error(f"{where}/Name", "The result path has no name.", "Set Name.")
        else:
            seen.once("Name", name, f"{where}/Name", "result name")
        if not path:
            findings.error(f"{where}/Path", "The result path has no path.", "Set Path.")
        elif not path.startswith("/"):
            findings.error(
                f"{where}/Path", f"The result path {path!r} is not absolute.", "Start it with /."
            )
        else:
            seen.once("Path", path, f"{where}/Path", "result path")
    if results and not task["Publisher"]["Type"]:
        findings.error(
            f"{pointer}/Publisher",
            "The task keeps results but has no publisher to send them to.",
            "Set Publisher.Type (e.g. local, s3, ipfs) or remove ResultPaths.",
        )


def _check_network(task: dict[str, Any], pointer: str, findings: Findings) -> None:
    network = task.get("Network") or {}
    raw_type = network.get("Type")
    kind = _NETWORKS.get(str(raw_type or "default").strip().lower())
    if kind is None:
        findings.error(
            f"{pointer}/Type", f"Unknown network type {raw_type!r}.", _one_of(NETWORK_TYPES)
        )
        kind = "Default"
    domains = sorted({d.strip().lower() for d in network.get("Domains") or []})
    if domains and kind != "HTTP":
        findings.error(
            f"{pointer}/Domains",
            "Domains can only be set for the HTTP network type.",
            "Set Network.Type to HTTP or remove Domains.",
        )
    for domain in domains:
        if not (_DOMAIN.search(domain) or _is_ip(domain)):
            findings.error(
                f"{pointer}/Domains",
                f"Invalid domain {domain!r}.",
                "Write a domain like example.com or an IP address.",
            )
    ports = [_port(p) for p in network.get("Ports") or []]
    task["Network"] = {"Type": kind, "Domains": domains, "Ports": ports}
    if ports:
        _check_ports(ports, kind, f"{pointer}/Ports", findings)


def _port(port: dict[str, Any]) -> dict[str, Any]:
    return {
        "Name": port.get("Name") or "",
        "Static": port.get("Static") or 0,
        "Target": port.get("Target") or 0,
        "HostNetwork": port.get("HostNetwork") or "",
    }


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_ports(ports: list[dict[str, Any]], kind: str, pointer: str, findings: Findings) -> None:
    if kind not in ("Host", "Bridge", "Full"):
        findings.error(
            pointer,
            "Ports can only be set for the Host, Bridge or Full network types.",
            "Set Network.Type to Host or Bridge, or remove Ports.",
        )
        return
    seen = _Seen(findings)
    for index, port in enumerate(ports):
        where = f"{pointer}/{index}"
        if not _port_ok(port, where, findings):
            continue
        seen.once("Name", port["Name"], f"{where}/Name", "port name")
        if port["Static"]:
            seen.once("Static", port["Static"], f"{where}/Static", "static port")
        if port["Target"] and kind in ("Host", "Full"):
            findings.error(
                f"{where}/Target",
                "Target ports cannot be set for the Host network type.",
                "Remove Target or use the Bridge network type.",
            )
        elif port["Target"]:
            seen.once("Target", port["Target"], f"{where}/Target", "target port")


def _port_ok(port: dict[str, Any], where: str, findings: Findings) -> bool:
    name = port["Name"]
    if not name:
        findings.error(f"{where}/Name", "The port mapping has no name.", "Set Name, e.g. HTTP.")
        return False
    if not _PORT_NAME.match(name) or len(name) > _MAX_PORT_NAME:
        findings.error(
            f"{where}/Name",
            f"The port name {name!r} is not a valid environment variable name.",
            f"Use letters, digits and underscores, start with a letter, at most {_MAX_PORT_NAME}.",
        )
        return False
    static, target = port["Static"], port["Target"]
    if static and not 1024 <= static <= 65535:
        findings.error(
            f"{where}/Static",
            f"The static port {shown(static)} is outside 1024-65535.",
            "Pick another.",
        )
        return False
    if not 0 <= target <= 65535:
        findings.error(f"{where}/Target", f"Invalid target port {shown(target)}.", "Use 1-65535.")
        return False
    if port["HostNetwork"] and not _is_ip(port["HostNetwork"]):
        findings.error(
            f"{where}/HostNetwork",
            f"Invalid host network IP address {port['HostNetwork']!r}.",
            "Write an IP address like 127.0.0.1.",
        )
        return False
    return True

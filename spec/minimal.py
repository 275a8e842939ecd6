"""Minimal forms -> the current model: what people type when they do not write a whole job.

- `{image, command, args}`: `bacalhau docker run IMAGE -- CMD ARGS`. A list `command` is the
  entrypoint; a string `command` runs under `/bin/sh -c`; `args` are the parameters.
- `{wasm: module, entrypoint, args}`: `bacalhau wasm run MODULE`; the module (an ipfs:// CID,
  an http(s) URL or a data: URL) is mounted at /wasm/entry.wasm like Bacalhau mounts it.
- `{language, code, cpu, memory, gpu, gpuCount, timeout}`: the code-runner request. Python
  runs in python:3.11-slim, JavaScript in node:20-slim, TypeScript in node:22-slim (Node
  strips types only from 22.6 on), bash in ubuntu; no network; whatever the program writes
  to /outputs is kept (local publisher).

Each produces a one-task batch job and records, field by field, where the input went.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from klippfisk.spec.legacy import ENTRY_MODULE_TARGET
from klippfisk.spec.models import CodeRun, DockerRun, WasmRun
from klippfisk.spec.translation import Translation, parse_model

__all__ = ["LANGUAGES", "translate_code", "translate_docker", "translate_wasm"]

TASK = "/Tasks/0"
OUTPUTS = "/outputs"
# language -> (image, command prefix the program text is appended to)
LANGUAGES: dict[str, tuple[str, list[str]]] = {
    "python": ("python:3.11-slim", ["python3", "-c"]),
    "javascript": ("node:20-slim", ["node", "-e"]),
    # Node runs TypeScript only from 22.6 on (type stripping); node:20-slim cannot.
    "typescript": ("node:22-slim", ["node", "--experimental-strip-types", "-e"]),
    "bash": ("ubuntu", ["bash", "-c"]),
}
_ALIASES = {
    "py": "python",
    "js": "javascript",
    "node": "javascript",
    "ts": "typescript",
    "sh": "bash",
}


def _job(name: str, engine: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    task: dict[str, Any] = {"Name": "main", "Engine": engine, "Resources": {}, "Timeouts": {}}
    return {"Name": name, "Type": "batch", "Tasks": [task]}, task


def _limits(run: CodeRun | DockerRun | WasmRun, task: dict[str, Any], out: Translation) -> None:
    """cpu/memory/disk/gpu/timeout -> Resources and Timeouts (shared by every minimal form)."""
    for name, target in (("cpu", "CPU"), ("memory", "Memory"), ("disk", "Disk")):
        value = getattr(run, name)
        if value is not None:
            task["Resources"][target] = value
            out.translated(f"/{name}", f"{TASK}/Resources/{target}")
    if run.timeout is not None:
        task["Timeouts"]["ExecutionTimeout"] = run.timeout
        out.translated("/timeout", f"{TASK}/Timeouts/ExecutionTimeout")


def translate_docker(data: Mapping[str, Any]) -> Translation:
    out = Translation(form="minimal-docker")
    run, _ = parse_model(data, DockerRun, "", out)
    if run is None:
        return out
    params: dict[str, Any] = {"Image": run.image}
    out.translated("/image", f"{TASK}/Engine/Params/Image")
    if isinstance(run.command, str):
        params["Entrypoint"] = ["/bin/sh", "-c", run.command]
        out.rewritten(
            "/command", f"{TASK}/Engine/Params/Entrypoint", "a command line runs under /bin/sh -c"
        )
    elif run.command:
        params["Entrypoint"] = list(run.command)
        out.translated("/command", f"{TASK}/Engine/Params/Entrypoint")
    if run.args:
        params["Parameters"] = list(run.args)
        out.translated("/args", f"{TASK}/Engine/Params/Parameters")
    if run.workdir:
        params["WorkingDirectory"] = run.workdir
        out.translated("/workdir", f"{TASK}/Engine/Params/WorkingDirectory")
    job, task = _job(run.name, {"Type": "docker", "Params": params})
    _common(run, task, out)
    if run.outputs:
        task["ResultPaths"] = [{"Name": p.strip("/") or "root", "Path": p} for p in run.outputs]
        out.translated("/outputs", f"{TASK}/ResultPaths")
    out.job = job
    return out


def _common(run: DockerRun | WasmRun, task: dict[str, Any], out: Translation) -> None:
    if run.env:
        task["Env"] = dict(run.env)
        out.translated("/env", f"{TASK}/Env")
    if run.gpu is not None:
        task["Resources"]["GPU"] = run.gpu
        out.translated("/gpu", f"{TASK}/Resources/GPU")
    if run.name:
        out.translated("/name", "/Name")
    _limits(run, task, out)


def translate_wasm(data: Mapping[str, Any]) -> Translation:
    out = Translation(form="minimal-wasm")
    run, _ = parse_model(data, WasmRun, "", out)
    if run is None:
        return out
    params: dict[str, Any] = {"EntryModule": ENTRY_MODULE_TARGET, "Entrypoint": run.entrypoint}
    if run.args:
        params["Parameters"] = list(run.args)
        out.translated("/args", f"{TASK}/Engine/Params/Parameters")
    job, task = _job(run.name, {"Type": "wasm", "Params": params})
    task["InputSources"] = [{"Source": _module_source(run.wasm), "Target": ENTRY_MODULE_TARGET}]
    out.rewritten(
        "/wasm", f"{TASK}/InputSources/0", f"the module is mounted at {ENTRY_MODULE_TARGET}"
    )
    _common(run, task, out)
    out.job = job
    return out


def _module_source(ref: str) -> dict[str, Any]:
    if ref.startswith("ipfs://"):
        return {"Type": "ipfs", "Params": {"CID": ref.removeprefix("ipfs://").strip("/")}}
    if ref.startswith("data:"):
        return {"Type": "inline", "Params": {"URL": ref}}
    if ref.startswith(("http://", "https://")):
        return {"Type": "urlDownload", "Params": {"URL": ref}}
    return {"Type": "localDirectory", "Params": {"SourcePath": ref, "ReadWrite": False}}


def translate_code(data: Mapping[str, Any]) -> Translation:
    out = Translation(form="minimal-code")
    run, _ = parse_model(data, CodeRun, "", out)
    if run is None:
        return out
    language = _ALIASES.get(run.language.strip().lower(), run.language.strip().lower())
    if language not in LANGUAGES:
        out.error(
            "/language",
            f"The language {run.language!r} is not supported.",
            "Use one of: " + ", ".join(LANGUAGES) + ".",
        )
        return out
    image, command = LANGUAGES[language]
    engine = {"Type": "docker", "Params": {"Image": image, "Entrypoint": [*command, run.code]}}
    job, task = _job("", engine)
    out.rewritten("/language", f"{TASK}/Engine/Params/Image", f"{language} runs in {image}")
    out.rewritten("/code", f"{TASK}/Engine/Params/Entrypoint", " ".join(command) + " <code>")
    task["Network"] = {"Type": "None"}
    task["ResultPaths"] = [{"Name": "outputs", "Path": OUTPUTS}]
    task["Publisher"] = {"Type": "local"}
    gpus = _gpu_count(run.gpu, run.gpuCount)
    if gpus is not None:
        task["Resources"]["GPU"] = gpus
        out.translated("/gpu", f"{TASK}/Resources/GPU", "gpuCount GPUs when gpu is true")
    _limits(run, task, out)
    out.job = job
    return out


def _gpu_count(gpu: int | str | bool | None, count: int) -> int | str | None:
    """`gpu: true, gpuCount: N` asks for N GPUs (at least 1); a number in `gpu` is the count."""
    if isinstance(gpu, bool):
        return max(count, 1) if gpu else 0
    if gpu is not None:
        return gpu
    return count or None

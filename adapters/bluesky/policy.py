"""What a stranger may make the bot do: the bot's own policy for jobs asked for in posts.

Anyone on Bluesky can mention the bot, so a job from a post is held to stricter rules than
one from the CLI, before it is submitted: it always runs in the bot's namespace (a document
naming another is refused, so nobody can plant jobs among an operator's own), it gets no
network and no local directories (refused with the reason, since silently dropping either
would run a different job than the author wrote), and its timeouts and resources are capped
at the bot's settings (lowered, not refused: a long-running default should still run). The
capped job is compiled again, so the job CID recorded is the CID of what runs.

Reading jobs back follows the same line: only jobs the bot itself took in can be described,
and only their author sees their output.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from klippfisk.adapters.settings import BotSettings
from klippfisk.engine import JobView
from klippfisk.spec import (
    CompiledSpec,
    compile_job,
    format_bytes,
    format_cpu,
    parse_bytes,
    parse_cpu,
    parse_gpu,
)

__all__ = ["BotLimits", "PolicyRefused", "admit", "may_describe", "may_read_output"]

BOT_ADAPTER = "bluesky"
_LOCAL_INPUTS = frozenset({"localdirectory", "local"})
_TIMEOUTS = ("ExecutionTimeout", "QueueTimeout", "TotalTimeout")


class PolicyRefused(Exception):
    """The job breaks the bot's policy; the message says what to change."""


@dataclass(frozen=True)
class BotLimits:
    """The bot's caps, parsed once from its settings (canonical units: millicores, bytes)."""

    namespace: str
    max_timeout_seconds: int
    max_cpu: int
    max_memory: int
    max_disk: int
    max_gpu: int

    @classmethod
    def of(cls, settings: BotSettings) -> BotLimits:
        return cls(
            namespace=settings.namespace,
            max_timeout_seconds=settings.max_timeout_seconds,
            max_cpu=parse_cpu(settings.max_cpu),
            max_memory=parse_bytes(settings.max_memory),
            max_disk=parse_bytes(settings.max_disk),
            max_gpu=settings.max_gpu,
        )


def _check_namespace(compiled: CompiledSpec, namespace: str) -> None:
    defaulted = any(d.pointer == "/Namespace" for d in compiled.report.defaults)
    named = str(compiled.job.get("Namespace", ""))
    if not defaulted and named and named != namespace:
        raise PolicyRefused(
            f"I run jobs only in namespace {namespace!r}, and this job names {named!r}; "
            "remove Namespace from the job file (or set it to "
            f"{namespace}) and ask again."
        )


def _check_task(task: dict[str, Any]) -> None:
    name = task.get("Name", "")
    network = str((task.get("Network") or {}).get("Type") or "None")
    if network.lower() != "none":
        raise PolicyRefused(
            f"I run jobs without network access, and task {name!r} asks for Network "
            f"{network}; remove its Network section (or set Type: None) and ask again."
        )
    for entry in task.get("InputSources") or []:
        kind = str((entry.get("Source") or {}).get("Type", ""))
        if kind.lower() in _LOCAL_INPUTS:
            raise PolicyRefused(
                f"I cannot mount directories of my own machine, and task {name!r} asks for "
                f"a {kind} input at {entry.get('Target', '')!r}; publish the data and use a "
                "urlDownload or ipfs input instead."
            )


def _capped(
    values: dict[str, Any],
    key: str,
    cap: int,
    parse: Callable[[Any], int],
    fmt: Callable[[int], Any],
) -> None:
    """Lower values[key] to `cap` when it is above it."""
    if key in values and parse(values[key]) > cap:
        values[key] = fmt(cap)


def _cap_task(task: dict[str, Any], limits: BotLimits) -> None:
    timeouts = task.setdefault("Timeouts", {})
    for key in _TIMEOUTS:
        current = int(timeouts.get(key) or 0)
        unlimited = current == 0 and key == "ExecutionTimeout"  # not for strangers' jobs
        if unlimited or current > limits.max_timeout_seconds:
            timeouts[key] = limits.max_timeout_seconds
    resources = task.setdefault("Resources", {})
    _capped(resources, "CPU", limits.max_cpu, parse_cpu, format_cpu)
    _capped(resources, "Memory", limits.max_memory, parse_bytes, format_bytes)
    _capped(resources, "Disk", limits.max_disk, parse_bytes, format_bytes)
    _capped(resources, "GPU", limits.max_gpu, parse_gpu, str)


def admit(compiled: CompiledSpec, limits: BotLimits) -> CompiledSpec:
    """The job as the bot will run it (namespace set, caps applied, compiled again when that
    changed anything), or PolicyRefused saying why it will not."""
    _check_namespace(compiled, limits.namespace)
    job = copy.deepcopy(compiled.job)
    job["Namespace"] = limits.namespace
    for task in job.get("Tasks") or []:
        _check_task(task)
        _cap_task(task, limits)
    if job == compiled.job:
        return compiled
    return compile_job(job, source=compiled.source, profile=compiled.report.profile)


def may_describe(job: JobView, namespace: str) -> bool:
    """Only jobs the bot took in, in its namespace; any other job is "no such job"."""
    return job.source.adapter == BOT_ADAPTER and job.namespace == namespace


def may_read_output(job: JobView, author: str) -> bool:
    """A job's stdout is its author's: only the DID that asked for it sees it."""
    return job.source.actor == author

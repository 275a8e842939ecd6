"""Named, versioned default profiles: what the compiler fills in when a document is silent.

`bacalhau` reproduces a Bacalhau orchestrator's defaults exactly (pkg/config/defaults.go
JobDefaults and the submit path's Normalize): namespace `default`, Count 1 for batch and
service jobs and always 0 for daemon and ops jobs, CPU `500m`, Memory `512Mb`, and nothing
else: no publisher, no timeouts, network `Default`.

`klippfisk` (the default) starts from the same values and closes the gaps that surprise
people: the network is `None` unless the job asks for one, batch and ops jobs get a finite
execution timeout (an ExecutionTimeout of 0, Bacalhau's "no limit", counts as unset unless a
TotalTimeout bounds the job), and a task with result paths gets the `local` publisher so
its results are not silently thrown away.

Every value filled in is returned as an `AppliedDefault`, so the report shows it. The
profile name and version are part of the report; bump the version whenever a value changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from klippfisk.spec.compiled import AppliedDefault

__all__ = ["DEFAULT_PROFILE", "PROFILES", "Profile", "apply_profile"]

DEFAULT_PROFILE = "klippfisk"
BATCH_TYPES = ("batch", "ops")
COUNTED_TYPES = ("batch", "service")


@dataclass(frozen=True)
class Profile:
    """One set of defaults. `None` in a field means the profile leaves it unset."""

    name: str
    version: str
    description: str
    cpu: str = "500m"
    memory: str = "512Mb"
    network: str = "Default"
    execution_timeout: int | None = None
    result_publisher: str | None = None

    def defaults_for(self, job_type: str) -> dict[str, Any]:
        """The values this profile would fill into an empty task of a job of this type."""
        values: dict[str, Any] = {
            "Namespace": "default",
            "Priority": 0,
            "Tasks/*/Resources/CPU": self.cpu,
            "Tasks/*/Resources/Memory": self.memory,
            "Tasks/*/Network/Type": self.network,
        }
        if job_type in COUNTED_TYPES:
            values["Count"] = 1
        elif job_type in ("daemon", "ops"):
            values["Count"] = 0
        if self.execution_timeout is not None and job_type in BATCH_TYPES:
            values["Tasks/*/Timeouts/ExecutionTimeout"] = self.execution_timeout
        if self.result_publisher:
            values["Tasks/*/Publisher/Type (with ResultPaths)"] = self.result_publisher
        return values


PROFILES: dict[str, Profile] = {
    "bacalhau": Profile(
        name="bacalhau",
        version="1",
        description="exactly a Bacalhau orchestrator's server-side defaults",
    ),
    "klippfisk": Profile(
        name="klippfisk",
        version="1",
        description="Bacalhau's defaults plus no network unless asked, a 30-minute execution "
        "timeout for batch and ops jobs, and the local publisher when results are kept",
        network="None",
        execution_timeout=1800,
        result_publisher="local",
    ),
}


def apply_profile(job: dict[str, Any], profile: Profile) -> list[AppliedDefault]:
    """Fill what `job` (a dumped `models.Job`, None = absent) leaves out; say what was filled."""
    applied: list[AppliedDefault] = []

    def fill(target: dict[str, Any], key: str, value: Any, pointer: str) -> None:
        if target.get(key) in (None, ""):
            target[key] = value
            applied.append(AppliedDefault(pointer, value, profile.name))

    fill(job, "Namespace", "default", "/Namespace")
    fill(job, "Priority", 0, "/Priority")
    job_type = job.get("Type") or ""
    if job_type in COUNTED_TYPES:
        fill(job, "Count", 1, "/Count")
    elif job_type in ("daemon", "ops") and job.get("Count") in (None, 1):
        # Bacalhau's Normalize forces 0: these jobs run on every matching node (a Count
        # above 1 is left for validation to refuse, as Bacalhau refuses it on submission).
        job["Count"] = 0
        applied.append(AppliedDefault("/Count", 0, profile.name))
    for index, task in enumerate(job.get("Tasks") or []):
        _apply_task(task, f"/Tasks/{index}", job_type, profile, fill)
    return applied


def _apply_task(
    task: dict[str, Any],
    pointer: str,
    job_type: str,
    profile: Profile,
    fill: Callable[[dict[str, Any], str, Any, str], None],
) -> None:
    resources = task.get("Resources") or {}
    task["Resources"] = resources
    fill(resources, "CPU", profile.cpu, f"{pointer}/Resources/CPU")
    fill(resources, "Memory", profile.memory, f"{pointer}/Resources/Memory")
    network = task.get("Network") or {}
    task["Network"] = network
    fill(network, "Type", profile.network, f"{pointer}/Network/Type")
    timeouts = task.get("Timeouts") or {}
    task["Timeouts"] = timeouts
    limited = profile.execution_timeout is not None and job_type in BATCH_TYPES
    if limited and not timeouts.get("TotalTimeout") and not timeouts.get("ExecutionTimeout"):
        # 0 means "no limit" to Bacalhau, which is exactly what this profile replaces.
        timeouts["ExecutionTimeout"] = None
        where = f"{pointer}/Timeouts/ExecutionTimeout"
        fill(timeouts, "ExecutionTimeout", profile.execution_timeout, where)
    publisher = task.get("Publisher") or {}
    if profile.result_publisher and task.get("ResultPaths") and not publisher.get("Type"):
        task["Publisher"] = {"Type": "", "Params": publisher.get("Params") or {}}
        fill(task["Publisher"], "Type", profile.result_publisher, f"{pointer}/Publisher/Type")

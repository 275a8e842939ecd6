"""The canonical job: Bacalhau's shape with every field present, and its two kinds of address.

`job_cid` covers the whole canonical job; each `task_cid` covers what one task runs
(`TASK_CID_FIELDS`: no names, metadata or publisher), so it keys cached results.

Both are hashed from one pass over the job: each value is encoded once, and the task texts
are spliced from the same pieces as the job text (a 100 kB inline module is not encoded
twice). The RFC 8785 bytes come from the C `json` encoder whenever it writes them exactly
(see `klippfisk.spec.address.exact_text_writer`, which also escapes long text faster), and that is
checked only where the data can hold surprises: plug-in `Params` (free-form values) and the
keys of Env, Meta and Labels (free text). Every other field has been checked and normalised
by `klippfisk.spec.validate` into text or integers within +/-2^53, so walking it again would only
spend time. A job whose free parts do not pass goes through the reference JCS writer.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

from klippfisk.spec.address import cid_of, cid_of_bytes, exact_text_writer

__all__ = ["TASK_CID_FIELDS", "addresses", "canonical_job"]

TASK_CID_FIELDS = (
    "Engine",
    "InputSources",
    "Resources",
    "Env",
    "Network",
    "Timeouts",
    "ResultPaths",
)
Segment = tuple[tuple[str, ...], bool]  # keys in canonical order, and whether task_cid covers them
Writer = Callable[[Any], str]  # data -> RFC 8785 text (see spec.address.exact_text_writer)


def canonical_job(job: dict[str, Any]) -> dict[str, Any]:
    """The checked job in canonical shape: Bacalhau's field order, every field present."""
    return {
        "Name": job["Name"],
        "Namespace": job["Namespace"],
        "Type": job["Type"],
        "Priority": job["Priority"] or 0,
        "Count": job["Count"] or 0,
        "Constraints": [
            {"Key": c["Key"], "Operator": c["Operator"], "Values": list(c["Values"])}
            for c in job["Constraints"]
        ],
        "Meta": dict(sorted(job["Meta"].items())),
        "Labels": dict(sorted(job["Labels"].items())),
        "Tasks": [_canonical_task(task) for task in job["Tasks"]],
    }


def addresses(job: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(job_cid, {task name: task_cid}) of a canonical job; ValueError if it has no
    canonical bytes (e.g. an engine param holding 1e400 or 2**64)."""
    names = [task["Name"] for task in job["Tasks"]]
    write = exact_text_writer(_free_parts(job))
    if write is not None:
        job_text, run_texts = _one_pass(job, write)
        try:
            job_bytes, run_bytes = job_text.encode(), [text.encode() for text in run_texts]
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference writer below names the fault
        else:
            return cid_of_bytes(job_bytes), {
                name: cid_of_bytes(data) for name, data in zip(names, run_bytes, strict=True)
            }
    runs = [{field: task[field] for field in TASK_CID_FIELDS} for task in job["Tasks"]]
    return cid_of(job), {name: cid_of(run) for name, run in zip(names, runs, strict=True)}


def _one_pass(job: dict[str, Any], write: Writer) -> tuple[str, list[str]]:
    """The RFC 8785 text of the job and of each task's runnable fields, every value
    encoded once: a task's fields, in canonical (sorted) order, fall into runs that the
    task CID covers or not; each run is encoded once and spliced into both texts."""
    tasks, runs = [], []
    for task in job["Tasks"]:
        pieces = [(covered, _members(task, keys, write)) for keys, covered in _TASK_SEGMENTS]
        tasks.append("{" + ",".join(text for _, text in pieces) + "}")
        runs.append("{" + ",".join(text for covered, text in pieces if covered) + "}")
    members = [
        _members(job, _JOB_BEFORE_TASKS, write),
        f'"Tasks":[{",".join(tasks)}]',
        _members(job, _JOB_AFTER_TASKS, write),
    ]
    return "{" + ",".join(members) + "}", runs


def _members(obj: dict[str, Any], keys: tuple[str, ...], write: Writer) -> str:
    """`"key":value,...` of `keys` (already in canonical order) as RFC 8785 text."""
    return write({key: obj[key] for key in keys})[1:-1]


def _segments(keys: list[str], covered: AbstractSet[str]) -> tuple[Segment, ...]:
    """Sorted `keys` cut into the longest runs that are all covered or all not."""
    cut: list[tuple[list[str], bool]] = []
    for key in sorted(keys):
        if cut and cut[-1][1] == (key in covered):
            cut[-1][0].append(key)
        else:
            cut.append(([key], key in covered))
    return tuple((tuple(run), flag) for run, flag in cut)


def _free_parts(job: dict[str, Any]) -> list[Any]:
    """The parts of a canonical job that validation does not reduce to plain text and ints."""
    parts: list[Any] = [job["Meta"], job["Labels"]]
    for task in job["Tasks"]:
        parts += (task["Engine"], task["Publisher"], task["InputSources"], task["Env"])
        parts.append(task["Meta"])
    return parts


_TASK_KEYS = [
    "Name", "Engine", "Publisher", "Env", "Meta", "InputSources", "ResultPaths", "Resources",
    "Network", "Timeouts",
]  # fmt: skip
_JOB_KEYS = ["Name", "Namespace", "Type", "Priority", "Count", "Constraints", "Meta", "Labels"]
_TASK_SEGMENTS = _segments(_TASK_KEYS, set(TASK_CID_FIELDS))
_JOB_BEFORE_TASKS = tuple(key for key in sorted(_JOB_KEYS) if key < "Tasks")
_JOB_AFTER_TASKS = tuple(key for key in sorted(_JOB_KEYS) if key > "Tasks")


def _canonical_task(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "Name": task["Name"],
        "Engine": _spec_config(task["Engine"]),
        "Publisher": _spec_config(task["Publisher"]),
        "Env": dict(sorted(task["Env"].items())),
        "Meta": dict(sorted(task["Meta"].items())),
        "InputSources": [
            {"Source": _spec_config(s["Source"]), "Alias": s["Alias"], "Target": s["Target"]}
            for s in task["InputSources"]
        ],
        "ResultPaths": [{"Name": r["Name"], "Path": r["Path"]} for r in task["ResultPaths"]],
        "Resources": task["Resources"],
        "Network": task["Network"],
        "Timeouts": task["Timeouts"],
    }


def _spec_config(config: dict[str, Any]) -> dict[str, Any]:
    return {"Type": config["Type"], "Params": dict(sorted(config["Params"].items()))}

"""The words the bot posts. Each is a head (kept whole) and an optional body (cut to fit).

Kept apart from the loop so the wording can be read, and changed, in one place; every
message that reports a problem also says what to do about it.
"""

from __future__ import annotations

from klippfisk.engine import ExecutionView, JobState, JobView
from klippfisk.spec import SpecError

__all__ = [
    "HELP",
    "describe",
    "fallback",
    "fetch_refused",
    "follow_up",
    "invalid_spec",
    "outcome",
    "policy_refused",
    "rate_limited",
    "submit_refused",
    "unknown_job",
    "usage",
    "valid_spec",
]

HELP = (
    "I run Bacalhau-style jobs. Mention me with: job run <URL of a job file> | "
    "job validate <URL> | job describe <job id> | help"
)


def usage(problem: str) -> str:
    return f"{problem}. {HELP}"


def fetch_refused(reason: str) -> str:
    return f"I did not get the job file. {reason}"


def invalid_spec(error: SpecError) -> str:
    """The first problem, located by line and field path, with its hint."""
    if not error.problems:
        return "That job file is not a valid job. Check it with `klippfisk spec validate`."
    first = error.problems[0]
    where = f"line {first.line}, " if first.line is not None else ""
    more = f" (+{len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
    hint = f" {first.hint}" if first.hint else ""
    message = first.message.rstrip(".")
    return f"Invalid job spec at {where}{first.pointer or '/'}: {message}.{hint}{more}"


def valid_spec(job_cid: str, warnings: int) -> str:
    noted = f", {warnings} warning(s)" if warnings else ""
    return f"Valid job spec{noted}. Job CID {job_cid}"


def unknown_job(ref: str) -> str:
    return f"I know no job {ref}; use the job id from my reply to your job run."


def policy_refused(reason: str) -> str:
    return f"I will not run that job. {reason}"


def fallback(job_id: str | None) -> str:
    """The short last reply when the full answer kept failing, so no job run goes unanswered."""
    if job_id is None:
        return "Sorry, I could not answer this job run; please mention me again later."
    return (
        f"Sorry, I could not post the full answer about job {job_id}. Ask me: job describe {job_id}"
    )


def submit_refused(reason: str) -> str:
    return f"I could not submit the job: {reason}"


def rate_limited(seconds: float) -> str:
    return (
        f"You are sending me mentions faster than I take them; I will ignore more for "
        f"{max(int(seconds), 1)} s. Please wait, then mention me again."
    )


def follow_up(job: JobView, waited: float) -> str:
    return (
        f"Job {job.id} is still {str(job.state).lower()} after {waited:g} s. I will reply "
        f"here when it finishes, or ask me: job describe {job.short_id}"
    )


def _last_execution(job: JobView) -> ExecutionView | None:
    return max(job.executions, key=lambda e: e.created_at) if job.executions else None


def outcome(job: JobView) -> tuple[str, str]:
    """Head and body (stdout) of the final reply for a finished job."""
    execution = _last_execution(job)
    ran = f" (execution {execution.id}" if execution else " ("
    if job.state == JobState.COMPLETED and execution is not None:
        return f"Job {job.id} completed{ran}, exit {execution.exit_code}).\n", execution.stdout
    if job.state == JobState.STOPPED:
        return f"Job {job.id} was stopped: {job.message or 'no reason given'}.", ""
    reason = (execution.error if execution else "") or job.message or "no reason recorded"
    return f"Job {job.id} failed: {reason}. Ask me: job describe {job.short_id}", ""


def describe(job: JobView, show_output: bool) -> tuple[str, str]:
    """Head and body of the reply to `job describe`; the body (stdout) only when the asker
    may read it."""
    if job.terminal:
        head, body = outcome(job)
        return (head, body) if show_output else (head.rstrip("\n"), "")
    return (
        f"Job {job.id} ({job.name or 'unnamed'}) is {str(job.state).lower()}: "
        f"{job.message or 'waiting to run'}.",
        "",
    )

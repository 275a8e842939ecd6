"""The bot's own policy for strangers' jobs: its namespace, no network or local inputs, caps."""

from __future__ import annotations

import pytest

from klippfisk.adapters.bluesky import messages
from klippfisk.adapters.bluesky.policy import (
    BotLimits,
    PolicyRefused,
    admit,
    may_describe,
    may_read_output,
)
from klippfisk.adapters.settings import BotSettings
from klippfisk.engine import Ledger, Source
from klippfisk.spec import CompiledSpec, compile_document, compile_job

LIMITS = BotLimits.of(BotSettings(max_timeout_seconds=300, max_cpu="1", max_memory="512Mi"))

JOB = """
Name: hello
Type: batch
Tasks:
  - Name: main
    Engine: {Type: docker, Params: {Image: "ubuntu:24.04", Entrypoint: [echo, hi]}}
"""


def compiled(extra_job: str = "", extra_task: str = "") -> CompiledSpec:
    return compile_document(extra_job + JOB + extra_task)


def test_a_job_without_a_namespace_runs_in_the_bots_and_its_cid_is_what_runs() -> None:
    admitted = admit(compiled(), LIMITS)
    assert admitted.job["Namespace"] == "bluesky"
    assert admitted.job_cid == compile_job(admitted.job).job_cid  # the CID of the stored job


def test_a_job_naming_another_namespace_is_refused_with_the_fix() -> None:
    with pytest.raises(PolicyRefused, match="only in namespace 'bluesky'.*names 'ops'"):
        admit(compiled("Namespace: ops\n"), LIMITS)
    assert admit(compiled("Namespace: bluesky\n"), LIMITS).job["Namespace"] == "bluesky"


@pytest.mark.parametrize("network", ["Full", "Host", "HTTP"])
def test_a_job_asking_for_network_is_refused(network: str) -> None:
    with pytest.raises(PolicyRefused, match=f"without network access.*Network {network}"):
        admit(compiled(extra_task=f"    Network: {{Type: {network}}}\n"), LIMITS)


def test_a_job_mounting_a_local_directory_is_refused() -> None:
    inputs = (
        "    InputSources:\n"
        "      - Target: /etc-copy\n"
        "        Source: {Type: localDirectory, Params: {SourcePath: /etc}}\n"
    )
    with pytest.raises(PolicyRefused, match="cannot mount directories.*'/etc-copy'"):
        admit(compiled(extra_task=inputs), LIMITS)


def test_timeouts_and_resources_above_the_caps_are_lowered_to_them() -> None:
    task = (
        "    Resources: {CPU: '8', Memory: 64Gi, Disk: 100Gi, GPU: '2'}\n"
        "    Timeouts: {ExecutionTimeout: 86400, QueueTimeout: 9000, TotalTimeout: 0}\n"
    )
    admitted = admit(compiled(extra_task=task), LIMITS)
    (main,) = admitted.job["Tasks"]
    assert main["Timeouts"] == {"ExecutionTimeout": 300, "QueueTimeout": 300, "TotalTimeout": 0}
    assert main["Resources"] == {
        "CPU": "1000m",
        "Memory": str(512 * 1024**2),
        "Disk": str(1024**3),
        "GPU": "0",
    }


def test_no_execution_timeout_means_the_cap_and_smaller_values_stay() -> None:
    task = "    Resources: {CPU: 250m, Memory: 64Mi}\n    Timeouts: {ExecutionTimeout: 0}\n"
    (main,) = admit(compiled(extra_task=task), LIMITS).job["Tasks"]
    assert main["Timeouts"]["ExecutionTimeout"] == 300
    assert (main["Resources"]["CPU"], main["Resources"]["Memory"]) == ("250m", str(64 * 1024**2))


def test_only_the_bots_own_jobs_can_be_described_and_stdout_only_by_their_author(
    ledger: Ledger,
) -> None:
    alice, bob = "did:plc:alice", "did:plc:bob"
    mine = ledger.submit(
        admit(compiled(), LIMITS), source=Source(adapter="bluesky", actor=alice, ref="at://1")
    )
    cli = ledger.submit(compiled(), source=Source(adapter="cli", actor="ops", ref="job.yaml"))
    planted = ledger.submit(  # in the bot's namespace, but not taken in by the bot
        admit(compile_document(JOB.replace("hello", "planted")), LIMITS),
        source=Source(adapter="http", actor="x", ref="r"),
    )
    assert may_describe(ledger.get(mine.job_id), "bluesky")
    assert not may_describe(ledger.get(cli.job_id), "bluesky")
    assert not may_describe(ledger.get(planted.job_id), "bluesky")
    assert may_read_output(ledger.get(mine.job_id), alice)
    assert not may_read_output(ledger.get(mine.job_id), bob)


def test_a_described_job_shows_no_stdout_to_others(ledger: Ledger) -> None:
    source = Source(adapter="bluesky", actor="did:plc:alice", ref="at://1")
    job_id = ledger.submit(admit(compiled(), LIMITS), source=source).job_id
    ledger.queue(job_id, reason="test")
    exec_id = ledger.create_execution(job_id, executor="local", node="local")
    ledger.start_execution(job_id, exec_id)
    ledger.complete_execution(job_id, exec_id, exit_code=0, stdout="secret output\n")
    job = ledger.get(job_id)
    assert messages.describe(job, show_output=True)[1] == "secret output\n"
    head, body = messages.describe(job, show_output=False)
    assert body == "" and "secret" not in head and head.startswith(f"Job {job_id} completed")

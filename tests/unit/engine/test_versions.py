"""A job's earlier versions, and the ledger's position for "has anything changed" checks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from klippfisk.engine import JobNotFound, JobState, Ledger
from klippfisk.engine.settings import Settings
from klippfisk.spec.compiled import CompiledSpec

MakeSpec = Callable[..., CompiledSpec]


def test_each_version_is_kept_as_it_stood_when_replaced(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(make_spec("evolving", command="echo 1")).job_id
    execution_id = ledger.create_execution(job_id)
    ledger.start_execution(job_id, execution_id)
    ledger.submit(make_spec("evolving", command="echo 2"))
    ledger.submit(make_spec("evolving", command="echo 3"))
    first, second, third = ledger.versions("evolving")
    assert [v.version for v in (first, second, third)] == [1, 2, 3]
    assert {v.id for v in (first, second, third)} == {job_id}
    commands = [v.job["Tasks"][0]["Engine"]["Params"]["Parameters"] for v in (first, second)]
    assert commands == [["echo 1"], ["echo 2"]]
    assert first.state is JobState.RUNNING  # as it was, before version 2 cancelled its run
    assert third == ledger.get(job_id)


def test_a_job_never_resubmitted_has_one_version(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(make_spec("once")).job_id
    assert [v.version for v in ledger.versions(job_id)] == [1]
    with pytest.raises(JobNotFound):
        ledger.versions(job_id, namespace="elsewhere")


def test_position_moves_with_every_write_from_any_process(
    store_settings: Settings, make_spec: MakeSpec
):
    with Ledger.open(store_settings) as one, Ledger.open(store_settings) as two:
        assert one.position() == 0
        job_id = one.submit(make_spec("watched")).job_id
        seen = two.position()
        assert seen == one.position() > 0
        one.get(job_id)
        one.list_jobs()
        assert two.position() == seen  # reading changes nothing
        one.queue(job_id)
        assert two.position() > seen

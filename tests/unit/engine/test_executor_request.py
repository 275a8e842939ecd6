"""The executor a submitter asks for is recorded with the job, per version."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import StoredEvent

from klippfisk.engine import LedgerError
from klippfisk.engine.ids import new_job_id
from klippfisk.engine.job import event_hash
from klippfisk.spec.compiled import CompiledSpec


def test_the_requested_executor_is_recorded_with_the_submission(ledger, make_spec):
    job_id = ledger.submit(make_spec("remote"), executor="bacalhau").job_id

    assert ledger.get(job_id).executor == "bacalhau"
    [submitted] = ledger.history(job_id)
    assert submitted["Event"]["Details"]["Executor"] == "bacalhau"
    assert ledger.verify(job_id).ok


def test_a_new_version_carries_its_own_request(ledger, make_spec):
    job_id = ledger.submit(make_spec("remote"), executor="bacalhau").job_id

    ledger.submit(make_spec("remote", command="echo 2"))

    assert ledger.get(job_id).executor == ""
    assert [v.executor for v in ledger.versions(job_id)] == ["bacalhau", ""]


def test_an_unknown_executor_is_refused_before_anything_is_written(ledger, make_spec):
    with pytest.raises(LedgerError, match="Unknown executor 'cluster'. Use one of: local"):
        ledger.submit(make_spec("remote"), executor="cluster")

    assert ledger.list_jobs().items == []


def test_a_job_stored_before_requests_existed_reads_as_the_runners_choice(ledger, make_spec):
    """Ledgers written by earlier versions hold Submitted events without the field."""
    spec: CompiledSpec = make_spec("old")
    job_id = ledger.submit(spec).job_id
    [stored] = ledger.recorder.select_events(job_id)
    state = ledger.mapper.transcoder.decode(stored.state)
    del state["executor"]
    old_body = {
        k: v
        for k, v in state.items()
        if k not in ("originator_topic", "timestamp", "hash", "prev_hash")
    }
    old_id = new_job_id()
    state["hash"] = event_hash(old_id, 1, "Submitted", state["timestamp"], old_body, "")
    encoded = ledger.mapper.transcoder.encode(state)
    ledger.recorder.insert_events([StoredEvent(old_id, 1, stored.topic, encoded)])

    view = ledger.get(old_id)

    assert view.executor == ""
    assert view.name == "old"
    assert ledger.verify(old_id).ok

"""The Ledger as adapters use it, on a real store (SQLite, and PostgreSQL when reachable)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from klippfisk.engine import (
    BadQuery,
    ExecutionState,
    IdempotencyConflict,
    IllegalTransition,
    JobNotFound,
    JobState,
    Ledger,
    LedgerError,
    NoChanges,
    Source,
    StoreUnavailable,
)
from klippfisk.engine.settings import LedgerSettings, Settings
from klippfisk.spec.compiled import CompiledSpec

MakeSpec = Callable[..., CompiledSpec]


def _finish(ledger: Ledger, job_id: str, exit_code: int = 0) -> str:
    execution_id = ledger.create_execution(job_id)
    ledger.start_execution(job_id, execution_id, notes=["ran on host"])
    ledger.complete_execution(job_id, execution_id, exit_code=exit_code, stdout="hi\n")
    return execution_id


def test_a_job_goes_in_compiled_and_comes_out_described(ledger: Ledger, make_spec: MakeSpec):
    compiled = make_spec("hello")
    result = ledger.submit(compiled, source=Source("cli", "alice", "hello.yaml"))
    assert (result.created, result.version) == (True, 1)
    execution_id = _finish(ledger, result.job_id, exit_code=2)
    job = ledger.get(result.job_id)
    assert job.state is JobState.COMPLETED
    assert (job.job_cid, job.source) == (compiled.job_cid, Source("cli", "alice", "hello.yaml"))
    (execution,) = job.executions
    assert (execution.id, execution.state, execution.exit_code) == (
        execution_id,
        ExecutionState.COMPLETED,
        2,
    )
    assert execution.stdout == "hi\n" and execution.notes == ["ran on host"]


def test_refs_resolve_by_full_id_short_id_and_name(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(make_spec("by-name")).job_id
    assert ledger.get(job_id[:10]).id == job_id
    assert ledger.get("by-name").id == job_id
    with pytest.raises(JobNotFound, match="klippfisk job list"):
        ledger.get("nothing-called-this")


def test_an_ambiguous_prefix_is_refused_and_lists_the_candidates(
    ledger: Ledger, make_spec: MakeSpec
):
    ids = [ledger.submit(make_spec(f"job-{n}")).job_id for n in range(40)]
    first_chars = {}
    for job_id in ids:
        first_chars.setdefault(job_id[:3], []).append(job_id)
    prefix, shared = next((p, s) for p, s in first_chars.items() if len(s) > 1)
    with pytest.raises(JobNotFound, match="Type more of the id"):
        ledger.get(prefix)
    assert ledger.get(shared[0][:10]).id == shared[0]


def test_the_same_idempotency_key_returns_the_same_job(ledger: Ledger, make_spec: MakeSpec):
    first = ledger.submit(make_spec(None), idempotency_key="at://did:plc:x/post/1")
    again = ledger.submit(make_spec(None), idempotency_key="at://did:plc:x/post/1")
    assert (again.job_id, again.created) == (first.job_id, False)
    assert ledger.last_modified(first.job_id) == 1


def test_an_idempotency_key_is_scoped_to_its_namespace(ledger: Ledger, make_spec: MakeSpec):
    def in_namespace(namespace: str) -> CompiledSpec:
        spec = make_spec(None)
        return dataclasses.replace(spec, job={**spec.job, "Namespace": namespace})

    team_a = ledger.submit(in_namespace("team-a"), idempotency_key="nightly-1")
    team_b = ledger.submit(in_namespace("team-b"), idempotency_key="nightly-1")

    assert team_a.created and team_b.created
    assert team_a.job_id != team_b.job_id
    assert ledger.get(team_b.job_id).namespace == "team-b"


def test_the_same_key_with_another_spec_is_a_conflict(ledger: Ledger, make_spec: MakeSpec):
    ledger.submit(make_spec(None), idempotency_key="key-1")
    with pytest.raises(IdempotencyConflict, match="Use a new key"):
        ledger.submit(make_spec(None, command="echo other"), idempotency_key="key-1")


def test_resubmitting_a_name_makes_a_new_version_or_says_no_changes(
    ledger: Ledger, make_spec: MakeSpec
):
    first = ledger.submit(make_spec("nightly"))
    _finish(ledger, first.job_id)
    with pytest.raises(NoChanges, match="No changes detected"):
        ledger.submit(make_spec("nightly"))
    changed = ledger.submit(make_spec("nightly", command="echo v2"))
    assert (changed.job_id, changed.version, changed.created) == (first.job_id, 2, False)
    forced = ledger.submit(make_spec("nightly", command="echo v2"), force=True)
    assert forced.version == 3
    assert ledger.get("nightly").state is JobState.PENDING


def test_an_illegal_command_writes_nothing(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(make_spec("done")).job_id
    _finish(ledger, job_id)
    revision = ledger.last_modified(job_id)
    with pytest.raises(IllegalTransition, match="Cannot stop: job .* is Completed"):
        ledger.stop(job_id)
    assert ledger.last_modified(job_id) == revision


def test_a_stale_writer_is_retried_on_fresh_state_and_nothing_is_lost(
    store_settings: Settings, make_spec: MakeSpec
):
    with Ledger.open(store_settings) as one, Ledger.open(store_settings) as two:
        job_id = one.submit(make_spec("shared")).job_id
        execution_id = one.create_execution(job_id)
        two.start_execution(job_id, execution_id)  # `one` now holds a stale copy
        one.complete_execution(job_id, execution_id, exit_code=0)
        kinds = [type(event).__name__ for event in two.events.get(job_id)]
    assert kinds == ["Submitted", "ExecutionCreated", "ExecutionStarted", "ExecutionCompleted"]


def test_a_stale_copy_does_not_cause_a_wrong_refusal(store_settings: Settings, make_spec: MakeSpec):
    with Ledger.open(store_settings) as one, Ledger.open(store_settings) as two:
        job_id = one.submit(make_spec("moving")).job_id
        two.queue(job_id)
        execution_id = two.create_execution(job_id)
        two.start_execution(job_id, execution_id)
        one.complete_execution(job_id, execution_id, exit_code=0)  # `one` thinks it is Pending
        assert two.get(job_id).state is JobState.COMPLETED


def test_threads_recording_on_many_jobs_lose_nothing(ledger: Ledger, make_spec: MakeSpec):
    job_ids = [ledger.submit(make_spec(f"t-{n}", count=2)).job_id for n in range(8)]
    errors: list[BaseException] = []

    def work(job_id: str) -> None:
        try:
            _finish(ledger, job_id)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(j,)) for j in job_ids * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for job_id in job_ids:
        job = ledger.get(job_id)
        assert job.state is JobState.COMPLETED and len(job.executions) == 2
    assert ledger.verify().ok


def test_lists_are_newest_first_filtered_and_paginated(ledger: Ledger, make_spec: MakeSpec):
    ids = [ledger.submit(make_spec(f"p-{n}")).job_id for n in range(5)]
    _finish(ledger, ids[1])
    first = ledger.list_jobs(limit=2)
    assert [j.id for j in first.items] == [ids[4], ids[3]] and first.next_token
    second = ledger.list_jobs(limit=2, next_token=first.next_token)
    third = ledger.list_jobs(limit=2, next_token=second.next_token)
    assert [j.id for j in second.items + third.items] == [ids[2], ids[1], ids[0]]
    assert third.next_token is None
    assert [j.id for j in ledger.list_jobs(state="Completed").items] == [ids[1]]
    assert [j.id for j in ledger.list_jobs(name="p-3").items] == [ids[3]]
    cid = ledger.get(ids[0]).job_cid
    assert [j.id for j in ledger.list_jobs(job_cid=cid).items] == [ids[0]]


def test_list_filters_by_source_ref(ledger: Ledger, make_spec: MakeSpec):
    wanted = ledger.submit(make_spec("a"), source=Source("bluesky", "bob", "at://post/9")).job_id
    ledger.submit(make_spec("b"), source=Source("cli", "bob", "b.yaml"))
    assert [j.id for j in ledger.list_jobs(source_ref="at://post/9").items] == [wanted]


def test_bad_list_arguments_are_refused_with_the_choices(ledger: Ledger):
    with pytest.raises(LedgerError, match="Use one of: Pending"):
        ledger.list_jobs(state="Sleeping")
    with pytest.raises(LedgerError, match="next_token of a previous page"):
        ledger.list_jobs(next_token="garbage")


@pytest.mark.parametrize("token", ["9" * 26, "\u00b2", "-1", " 12"])
def test_a_forged_page_token_is_a_bad_query_not_a_crash(ledger: Ledger, token: str):
    with pytest.raises(BadQuery, match="next_token of a previous page"):
        ledger.list_jobs(next_token=token)


def test_the_runner_finds_waiting_and_orphaned_work(ledger: Ledger, make_spec: MakeSpec):
    waiting = ledger.submit(make_spec("w")).job_id
    queued = ledger.submit(make_spec("q")).job_id
    ledger.queue(queued)
    orphan = ledger.submit(make_spec("o")).job_id
    ledger.start_execution(orphan, ledger.create_execution(orphan))
    _finish(ledger, ledger.submit(make_spec("done")).job_id)
    assert [j.id for j in ledger.pending()] == [waiting, queued]
    (running,) = ledger.running()
    assert running.id == orphan and running.executions[0].state is ExecutionState.RUNNING


def test_wait_returns_when_another_thread_finishes_the_job(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(make_spec("slow")).job_id
    finisher = threading.Timer(0.2, _finish, args=(ledger, job_id))
    finisher.start()
    job = ledger.wait(job_id, timeout=20)
    finisher.join()
    assert job.state is JobState.COMPLETED


def test_wait_gives_up_after_the_timeout_with_the_job_as_it_is(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(make_spec("stuck")).job_id
    assert ledger.wait(job_id, ["Completed"], timeout=0.05).state is JobState.PENDING


def test_an_unknown_store_is_a_clear_error(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, ledger=LedgerSettings(store="mongo"))
    with pytest.raises(StoreUnavailable, match="KLIPPFISK_LEDGER__STORE to sqlite or postgres"):
        Ledger.open(settings)


def test_an_unwritable_sqlite_path_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    settings = Settings(data_dir=tmp_path, ledger=LedgerSettings(path=blocker / "l.db"))
    with pytest.raises(StoreUnavailable, match="KLIPPFISK_LEDGER__PATH"):
        Ledger.open(settings)


def test_a_batch_stores_its_commands_together_when_it_ends(ledger: Ledger, make_spec: MakeSpec):
    with ledger.batch():
        job_id = ledger.submit(make_spec("batched")).job_id
        ledger.queue(job_id)
        with pytest.raises(JobNotFound):  # nothing is written before the block ends
            ledger.get(job_id)
    assert ledger.last_modified(job_id) == 2
    assert ledger.get(job_id).state is JobState.QUEUED


def test_a_batch_that_raises_stores_nothing(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(make_spec("kept")).job_id
    with pytest.raises(RuntimeError), ledger.batch():
        ledger.queue(job_id)
        raise RuntimeError("changed my mind")
    assert ledger.last_modified(job_id) == 1
    assert ledger.get(job_id).state is JobState.PENDING


def test_a_batch_overtaken_by_another_writer_stores_nothing(
    store_settings: Settings, make_spec: MakeSpec
):
    with Ledger.open(store_settings) as one, Ledger.open(store_settings) as two:
        job_id = one.submit(make_spec("raced")).job_id
        with pytest.raises(LedgerError, match="none of it was stored"), one.batch():
            one.queue(job_id)
            other = one.submit(make_spec("bystander")).job_id
            two.stop(job_id)
        assert two.get(job_id).state is JobState.STOPPED
        with pytest.raises(JobNotFound):
            two.get(other)


def test_pollers_see_another_writers_changes_at_once(
    ledger: Ledger, store_settings: Settings, make_spec: MakeSpec
):
    """The head and a job's revision, which history polls compare to decide whether a
    cached page is stale, follow writes made through another connection to the store."""
    with Ledger.open(store_settings) as other:
        head = ledger.position()
        job_id = other.submit(make_spec("polled")).job_id
        assert ledger.position() > head
        assert ledger.last_modified(job_id) == 1 == ledger.get(job_id).revision
        other.queue(job_id)
        assert ledger.last_modified(job_id) == 2 == ledger.get(job_id).revision
        assert ledger.position() == other.position()
    unknown = job_id[:-1] + ("1" if job_id.endswith("0") else "0")
    with pytest.raises(JobNotFound, match="klippfisk job list"):
        ledger.last_modified(unknown)

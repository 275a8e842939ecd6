"""Opening and writing the stores: half-made ledgers close what they opened, and PostgreSQL
writes keep the library's guarantees (all or nothing, stale writes refused, ids in order)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest

from klippfisk.engine import JobState, Ledger, LedgerError, StoreUnavailable
from klippfisk.engine.settings import LedgerSettings, Settings
from tests.unit.engine.conftest import compiled_job, postgres_schema


class Recorded(Ledger):
    """A ledger that keeps every instance made, so a test can inspect a half-made one."""

    made: ClassVar[list[Ledger]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Recorded.made.append(self)
        super().__init__(*args, **kwargs)


@pytest.fixture
def recorded() -> Iterator[list[Ledger]]:
    Recorded.made.clear()
    yield Recorded.made
    Recorded.made.clear()


def test_a_ledger_that_fails_to_open_closes_what_it_opened(tmp_path: Path, recorded: list[Ledger]):
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as connection:  # a view where the read model's table goes
        connection.execute("CREATE VIEW klippfisk_jobs AS SELECT 1 AS job_id")
    settings = Settings(data_dir=tmp_path, ledger=LedgerSettings(path=path))
    with pytest.raises(StoreUnavailable, match="Cannot open the ledger"):
        Recorded.open(settings)
    (half_made,) = recorded
    assert half_made.factory.datastore.pool.closed
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        half_made._links.writer._connection.execute("SELECT 1")


def _pg_connect(settings: Settings) -> psycopg.Connection[Any]:
    pg = settings.ledger.postgres
    return psycopg.connect(
        host=pg.host,
        port=pg.port,
        user=pg.user,
        dbname=pg.dbname,
        password=pg.password.get_secret_value(),
        autocommit=True,
    )


@pytest.fixture
def pg_settings(tmp_path: Path) -> Iterator[Settings]:
    with postgres_schema() as pg:
        yield Settings(data_dir=tmp_path, ledger=LedgerSettings(store="postgres", postgres=pg))


def _wait_for_a_blocked_backend(
    monitor: psycopg.Connection[Any], holder: int, waiter: threading.Thread
) -> None:
    """Return once some backend waits for the transaction of `holder`; fail if `waiter`,
    the thread that should be waiting, finishes first."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and waiter.is_alive():
        blocked = monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
            (holder,),
        ).fetchone()
        if blocked and blocked[0]:
            return
        time.sleep(0.01)
    raise AssertionError("the ledger did not wait for the other transaction")


@pytest.mark.postgres
def test_opening_while_another_process_creates_the_tables_retries_and_leaks_nothing(
    pg_settings: Settings, recorded: list[Ledger]
):
    """The other process's CREATE TABLE commits while ours waits on it, so ours fails with a
    unique violation (PostgreSQL's answer to the race); open tries again on the tables the
    other made, and the first attempt's connections are closed."""
    schema = pg_settings.ledger.postgres.db_schema
    opened: list[Ledger] = []
    with _pg_connect(pg_settings) as other, _pg_connect(pg_settings) as monitor:
        other.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        other.autocommit = False
        other.execute(  # the read model's table as the previous version made it
            f'CREATE TABLE {schema}.klippfisk_jobs (job_id TEXT COLLATE "C" PRIMARY KEY,'
            " name TEXT NOT NULL, namespace TEXT NOT NULL, state TEXT NOT NULL,"
            " job_cid TEXT NOT NULL, source_ref TEXT NOT NULL, source_adapter TEXT NOT NULL,"
            " job_type TEXT NOT NULL, engine TEXT NOT NULL, job_version INTEGER NOT NULL,"
            " event_version INTEGER NOT NULL, created_seq BIGINT NOT NULL,"
            " created_at TEXT NOT NULL, modified_at TEXT NOT NULL)"
        )
        opening = threading.Thread(target=lambda: opened.append(Recorded.open(pg_settings)))
        opening.start()
        _wait_for_a_blocked_backend(monitor, other.info.backend_pid, opening)
        other.commit()
        opening.join()
    (ledger,) = opened
    with ledger:
        first, second = recorded
        assert second is ledger and first.factory.datastore.pool.closed
        job_id = ledger.submit(compiled_job("after-the-race")).job_id
        assert [j.id for j in ledger.list_jobs().items] == [job_id]


def test_a_batch_with_one_stale_write_stores_none_of_its_jobs(store_settings: Settings):
    with Ledger.open(store_settings) as one, Ledger.open(store_settings) as two:
        fresh = one.submit(compiled_job("fresh")).job_id
        contested = one.submit(compiled_job("contested")).job_id
        two.get(contested)  # two now holds a copy that is about to go stale
        one.queue(contested)
        with pytest.raises(LedgerError, match="none of it was stored"), two.batch():
            two.queue(fresh)
            two.create_execution(contested)
        assert one.get(fresh).state is JobState.PENDING
        assert one.get(contested).executions == []
        assert one.verify().ok


@pytest.mark.postgres
def test_a_write_waits_for_an_earlier_writer_so_ids_commit_in_order(pg_settings: Settings):
    """Another transaction has taken a notification id and not committed it: our write must
    wait for it (the table lock), or it could commit a later id first and a projector
    reading it would pass over the earlier one for good."""
    with Ledger.open(pg_settings) as ledger, _pg_connect(pg_settings) as other:
        job_id = ledger.submit(compiled_job("waits")).job_id
        schema = pg_settings.ledger.postgres.db_schema
        other.autocommit = False
        other.execute(
            f"INSERT INTO {schema}.klippfisk_events"
            " (originator_id, originator_version, topic, state) VALUES ('j-other', 1, 't', '')"
        )
        writing = threading.Thread(target=ledger.queue, args=(job_id,))
        writing.start()
        with _pg_connect(pg_settings) as monitor:
            _wait_for_a_blocked_backend(monitor, other.info.backend_pid, writing)
        other.rollback()
        writing.join()
        assert ledger.get(job_id).state is JobState.QUEUED


@pytest.mark.postgres
def test_concurrent_writers_in_two_ledgers_all_land_and_project(pg_settings: Settings):
    """Eight threads, two ledgers (as two processes): the log has no gaps and the read model,
    caught up meanwhile and after, holds every job in its final state."""
    with Ledger.open(pg_settings) as one, Ledger.open(pg_settings) as two:
        one.start_projecting(0.01)

        def work(ledger: Ledger, first: int) -> None:
            for n in range(first, first + 10):
                job_id = ledger.submit(compiled_job(f"job-{n}")).job_id
                ledger.queue(job_id)

        threads = [
            threading.Thread(target=work, args=((one, two)[t % 2], t * 10)) for t in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        one.stop_projecting()
        one.catch_up()
        ids = [n.id for n in one.recorder.select_notifications(1, 1000)]
        assert ids == list(range(ids[0], ids[0] + 160))
        listed = one.list_jobs(limit=100, state="Queued")
        assert len(listed.items) == 80 and listed.next_token is None


@pytest.mark.postgres
def test_a_write_whose_connection_the_server_dropped_is_made_once_on_a_new_one(
    pg_settings: Settings,
):
    with Ledger.open(pg_settings) as ledger, _pg_connect(pg_settings) as admin:
        job_id = ledger.submit(compiled_job("before")).job_id
        writer = ledger._links.pg_writer._connection
        admin.execute("SELECT pg_terminate_backend(%s)", (writer.info.backend_pid,))
        ledger.queue(job_id)
        assert ledger.get(job_id).state is JobState.QUEUED
        assert [e["Event"]["Topic"] for e in ledger.history(job_id)] == ["Submission", "Queueing"]
        assert ledger.verify().ok


@pytest.mark.postgres
def test_processes_opening_the_same_store_at_once_all_open_it(pg_settings: Settings):
    """Every open runs the store's creation statements again; none of them may trip over
    another's (PostgreSQL refuses two concurrent replacements of one function outright)."""
    Ledger.open(pg_settings).close()
    failures: list[BaseException] = []

    def open_once(start: threading.Barrier) -> None:
        start.wait()
        try:
            Ledger.open(pg_settings).close()
        except StoreUnavailable as exc:
            failures.append(exc)

    for _ in range(3):
        start = threading.Barrier(6)
        threads = [threading.Thread(target=open_once, args=(start,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []

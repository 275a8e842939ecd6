"""Ledger fixtures: a fresh ledger per test, on SQLite always and on PostgreSQL when reachable.

PostgreSQL is found through eventsourcing's POSTGRES_* settings (.ci/postgres.sh exports
them); without a reachable server those variants skip locally and fail on CI. Each test gets
a schema of its own, so every test starts from an empty store and none can clear another's.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

from klippfisk.engine import Ledger
from klippfisk.engine.settings import LedgerSettings, PostgresSettings, Settings
from klippfisk.spec.address import cid_of
from klippfisk.spec.compiled import CompiledSpec, Report


def compiled_job(
    name: str | None = "hello", command: str = "echo hi", count: int = 1
) -> CompiledSpec:
    """A compiled one-task batch job (the compiler's output shape)."""
    task = {"Name": "main", "Engine": {"Type": "docker", "Params": {"Parameters": [command]}}}
    job = {"Type": "batch", "Count": count, "Tasks": [task], **({"Name": name} if name else {})}
    report = Report(form="v1", profile="klippfisk", profile_version="1")
    return CompiledSpec(
        job=job, job_cid=cid_of(job), task_cids={"main": cid_of(task)}, report=report
    )


def postgres_unreachable(reason: str) -> NoReturn:
    """Skip here; on CI (CI=true, where .ci/run starts a server) fail, so a broken server
    cannot turn the PostgreSQL half of the suite silently green."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is unreachable on CI ({reason}); check .ci/postgres.sh output.")
    pytest.skip(f"no reachable PostgreSQL ({reason}); run `source .ci/postgres.sh` first")


@contextmanager
def postgres_schema() -> Iterator[PostgresSettings]:
    """Settings for a schema of its own in the test database, dropped afterwards, so tests
    (and test modules run side by side) never see or trample each other's tables."""
    pg = PostgresSettings()
    schema = f"klippfisk_t_{uuid.uuid4().hex[:12]}"
    connect = {
        "host": pg.host,
        "port": pg.port,
        "user": pg.user,
        "dbname": pg.dbname,
        "password": pg.password.get_secret_value(),
        "connect_timeout": 2,
        "autocommit": True,
    }
    try:
        with psycopg.connect(**connect) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        postgres_unreachable(exc.__class__.__name__)
    try:
        yield pg.model_copy(update={"db_schema": schema})
    finally:
        with psycopg.connect(**connect) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for an empty store of each kind."""
    if request.param == "postgres":
        with postgres_schema() as pg:
            yield Settings(data_dir=tmp_path, ledger=LedgerSettings(store="postgres", postgres=pg))
    else:
        ledger = LedgerSettings(path=tmp_path / "ledger.db")
        yield Settings(data_dir=tmp_path, ledger=ledger)


@pytest.fixture
def ledger(store_settings: Settings) -> Iterator[Ledger]:
    with Ledger.open(store_settings) as opened:
        yield opened


@pytest.fixture
def make_spec() -> Callable[..., CompiledSpec]:
    return compiled_job

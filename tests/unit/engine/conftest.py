"""Ledger fixtures: a fresh ledger per test, on SQLite always and on PostgreSQL when reachable.

PostgreSQL is found through eventsourcing's POSTGRES_* settings (.ci/postgres.sh exports
them); without a reachable server those variants skip. Tables are emptied before each test
so every test starts from an empty store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from engine import Ledger
from engine.settings import LedgerSettings, PostgresSettings, Settings
from spec.address import cid_of
from spec.compiled import CompiledSpec, Report

_TABLES = "klippfisk_events, klippfisk_jobs, klippfisk_positions"


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


def _postgres_or_skip() -> PostgresSettings:
    pg = PostgresSettings()
    try:
        with psycopg.connect(
            host=pg.host,
            port=pg.port,
            user=pg.user,
            dbname=pg.dbname,
            password=pg.password.get_secret_value(),
            connect_timeout=2,
            autocommit=True,
        ) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {_TABLES} CASCADE")
    except psycopg.Error as exc:
        pytest.skip(f"no reachable PostgreSQL ({exc.__class__.__name__}); run .ci/postgres.sh")
    return pg


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty store of each kind."""
    if request.param == "postgres":
        ledger = LedgerSettings(store="postgres", postgres=_postgres_or_skip())
    else:
        ledger = LedgerSettings(path=tmp_path / "ledger.db")
    return Settings(data_dir=tmp_path, ledger=ledger)


@pytest.fixture
def ledger(store_settings: Settings) -> Iterator[Ledger]:
    with Ledger.open(store_settings) as opened:
        yield opened


@pytest.fixture
def make_spec() -> Callable[..., CompiledSpec]:
    return compiled_job

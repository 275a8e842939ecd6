"""Two processes racing on the same idempotency keys make exactly one job per key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from klippfisk.engine import Ledger, StoreUnavailable
from klippfisk.engine.settings import LedgerSettings, PostgresSettings, Settings

CHILD = Path(__file__).with_name("ledger_child.py")
KEYS = 15


@pytest.fixture
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment a klippfisk process needs to use the store `request.param` names; on
    PostgreSQL a schema of the test's own (the ledger creates it), dropped afterwards."""
    store: str = request.param
    env = {**os.environ, "KLIPPFISK_DATA_DIR": str(tmp_path), "KLIPPFISK_LEDGER__STORE": store}
    pg = PostgresSettings().model_copy(update={"db_schema": f"klippfisk_t_{uuid.uuid4().hex[:12]}"})
    env["POSTGRES_SCHEMA"] = pg.db_schema
    settings = Settings(data_dir=tmp_path, ledger=LedgerSettings(store=store, postgres=pg))
    try:
        Ledger.open(settings).close()
    except StoreUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{store} is unreachable on CI: {exc}")
        pytest.skip(f"no reachable {store}; run `source .ci/postgres.sh` first")
    yield env
    if store == "postgres":
        password = pg.password.get_secret_value()
        with psycopg.connect(
            host=pg.host, port=pg.port, user=pg.user, dbname=pg.dbname, password=password
        ) as conn:
            conn.execute(f"DROP SCHEMA {pg.db_schema} CASCADE")


def _race(tmp_path: Path, env: dict[str, str], variants: tuple[str, str]) -> list[list[dict]]:
    go = tmp_path / f"go-{uuid.uuid4().hex[:8]}"
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), "submit", str(go), str(KEYS), variant],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for variant in variants
    ]
    go.touch()
    outputs = [child.communicate(timeout=120)[0] for child in children]
    assert all(child.returncode == 0 for child in children)
    return [[json.loads(line) for line in out.splitlines()] for out in outputs]


_STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.slow
@pytest.mark.parametrize("store_env", _STORES, indirect=True)
def test_the_same_key_and_spec_from_two_processes_is_one_job(
    store_env: dict[str, str], tmp_path: Path
) -> None:
    one, two = _race(tmp_path, store_env, ("same", "same"))
    for a, b in zip(one, two, strict=True):
        assert a["job_id"] == b["job_id"]
        assert [a["created"], b["created"]].count(True) == 1


@pytest.mark.slow
@pytest.mark.parametrize("store_env", _STORES, indirect=True)
def test_the_same_key_with_two_specs_is_one_job_and_one_conflict(
    store_env: dict[str, str], tmp_path: Path
) -> None:
    one, two = _race(tmp_path, store_env, ("first", "second"))
    for a, b in zip(one, two, strict=True):
        assert [a.get("created"), b.get("created")].count(True) == 1
        assert [a.get("conflict"), b.get("conflict")].count(True) == 1

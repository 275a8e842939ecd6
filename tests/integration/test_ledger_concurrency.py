"""Two processes racing on the same idempotency keys make exactly one job per key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from engine import Ledger, StoreUnavailable
from engine.settings import LedgerSettings, Settings

CHILD = Path(__file__).with_name("ledger_child.py")
KEYS = 15


def _store_env(store: str, tmp_path: Path) -> dict[str, str]:
    """The environment a klippfisk process needs to use this store (keys are unique per run,
    so a shared PostgreSQL database needs no cleaning)."""
    env = {**os.environ, "KLIPPFISK_DATA_DIR": str(tmp_path), "KLIPPFISK_LEDGER__STORE": store}
    try:
        Ledger.open(Settings(data_dir=tmp_path, ledger=LedgerSettings(store=store))).close()
    except StoreUnavailable:
        pytest.skip(f"no reachable {store}; run .ci/postgres.sh")
    return env


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


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_same_key_and_spec_from_two_processes_is_one_job(store: str, tmp_path: Path) -> None:
    one, two = _race(tmp_path, _store_env(store, tmp_path), ("same", "same"))
    for a, b in zip(one, two, strict=True):
        assert a["job_id"] == b["job_id"]
        assert [a["created"], b["created"]].count(True) == 1


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_same_key_with_two_specs_is_one_job_and_one_conflict(
    store: str, tmp_path: Path
) -> None:
    one, two = _race(tmp_path, _store_env(store, tmp_path), ("first", "second"))
    for a, b in zip(one, two, strict=True):
        assert [a.get("created"), b.get("created")].count(True) == 1
        assert [a.get("conflict"), b.get("conflict")].count(True) == 1

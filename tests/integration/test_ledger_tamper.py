"""Editing a stored event behind the ledger's back is caught by `klippfisk ledger verify`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from klippfisk.adapters.cli import main
from klippfisk.engine import Ledger, LedgerError
from klippfisk.engine.settings import LedgerSettings, Settings
from klippfisk.spec.address import cid_of
from klippfisk.spec.compiled import CompiledSpec, Report


def _seed(ledger: Ledger, name: str) -> str:
    job = {"Name": name, "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    compiled = CompiledSpec(job, cid_of(job), {}, Report("v1", "klippfisk", "1"))
    job_id = ledger.submit(compiled).job_id
    execution_id = ledger.create_execution(job_id)
    ledger.start_execution(job_id, execution_id)
    ledger.complete_execution(job_id, execution_id, exit_code=0, stdout="clean\n")
    return job_id


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    db = tmp_path / "ledger.db"
    monkeypatch.setenv("KLIPPFISK_LEDGER__PATH", str(db))
    with Ledger.open(Settings(ledger=LedgerSettings(path=db))) as ledger:
        ids = [_seed(ledger, f"job-{n}") for n in range(3)]
    return db, ids


def _edit(db: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute(sql, params).rowcount == 1


def test_an_untouched_ledger_verifies(store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify"]) == 0
    assert "3 jobs" in capsys.readouterr().out


def test_an_edited_event_fails_verify_naming_its_job(store, capsys) -> None:
    db, ids = store
    _edit(
        db,
        "UPDATE stored_events"
        " SET state = CAST(replace(CAST(state AS TEXT), 'clean', 'dirty') AS BLOB)"
        " WHERE originator_id = ? AND originator_version = 4",
        ids[1],
    )
    assert main(["ledger", "verify"]) == 1
    out = capsys.readouterr().out
    assert ids[1] in out and ids[0] not in out and ids[2] not in out
    assert "does not match its hash" in out


def test_a_removed_event_fails_verify(store, capsys) -> None:
    db, ids = store
    _edit(
        db, "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 2", ids[0]
    )
    assert main(["ledger", "verify", "--output", "json"]) == 1
    assert ids[0] in capsys.readouterr().out


def test_an_unreadable_event_sends_readers_to_verify(store, capsys) -> None:
    db, ids = store
    _edit(
        db,
        "UPDATE stored_events SET state = X'6e6f74206a736f6e' WHERE originator_id = ?"
        " AND originator_version = 1",
        ids[2],
    )
    assert main(["job", "list"]) == 1
    assert "klippfisk ledger verify" in capsys.readouterr().err
    assert main(["ledger", "verify"]) == 1
    assert "cannot be read" in capsys.readouterr().out


def test_an_event_replaced_by_json_that_is_no_object_is_a_finding_not_a_crash(store) -> None:
    db, ids = store
    _edit(
        db,
        "UPDATE stored_events SET state = CAST('[1]' AS BLOB) WHERE originator_id = ?"
        " AND originator_version = 3",
        ids[1],
    )
    with Ledger.open(Settings(ledger=LedgerSettings(path=db))) as ledger:
        assert ledger.verify().broken_jobs == [ids[1]]
        with pytest.raises(LedgerError, match="klippfisk ledger verify"):
            ledger.catch_up()

"""Listing jobs in every order the HTTP API offers, from the read model's indexes, with pages
that hold still while jobs come and change (SQLite, and PostgreSQL when reachable)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from klippfisk.engine import BadQuery, Ledger, Page
from klippfisk.engine.settings import LedgerSettings, Settings
from klippfisk.spec.address import cid_of
from klippfisk.spec.compiled import CompiledSpec, Report

DATA = Path(__file__).parents[2] / "data" / "ledger"


def spec(name: str, *, tier: str = "tin", namespace: str = "default") -> CompiledSpec:
    task = {"Name": "main", "Engine": {"Type": "docker", "Params": {"Parameters": ["echo"]}}}
    job = {
        "Type": "batch",
        "Count": 1,
        "Name": name,
        "Namespace": namespace,
        "Labels": {"tier": tier},
        "Tasks": [task],
    }
    report = Report(form="v1", profile="klippfisk", profile_version="1")
    return CompiledSpec(
        job=job, job_cid=cid_of(job), task_cids={"main": cid_of(task)}, report=report
    )


def names(page: Page) -> list[str]:
    return [job.name for job in page.items]


def walk(
    ledger: Ledger, limit: int = 2, next_token: str | None = None, **options: Any
) -> list[str]:
    """Every job name the ledger lists, page by page (from `next_token` on, if given)."""
    listed: list[str] = []
    token = next_token
    for _ in range(100):
        page = ledger.list_jobs(limit=limit, next_token=token, **options)
        listed += names(page)
        token = page.next_token
        if token is None:
            return listed
    raise AssertionError("the list never ended")


def gold(labels: Mapping[str, str]) -> bool:
    return labels.get("tier") == "gold"


def test_every_order_lists_every_job_once_across_pages(ledger: Ledger):
    ids = [ledger.submit(spec(f"job-{n}")).job_id for n in range(5)]
    ledger.queue(ids[3])
    ledger.queue(ids[0])
    created = ["job-0", "job-1", "job-2", "job-3", "job-4"]
    modified = ["job-1", "job-2", "job-4", "job-3", "job-0"]
    assert walk(ledger) == created[::-1], "newest first by default"
    assert walk(ledger, oldest_first=True) == created
    assert walk(ledger, order_by="modified_at") == modified[::-1]
    assert walk(ledger, order_by="modified_at", oldest_first=True, limit=3) == modified


def test_pages_hold_still_while_jobs_are_added_and_changed(ledger: Ledger):
    ids = {f"job-{n}": ledger.submit(spec(f"job-{n}")).job_id for n in range(6)}
    newest = ledger.list_jobs(limit=2)
    oldest = ledger.list_jobs(limit=2, oldest_first=True)
    by_change = ledger.list_jobs(limit=2, order_by="modified_at", oldest_first=True)
    for n in range(6, 9):
        ledger.submit(spec(f"job-{n}"))
    ledger.queue(ids["job-1"])  # already listed by change: it moves past the cursor
    ledger.queue(ids["job-4"])  # not listed yet anywhere
    rest = walk(ledger, next_token=newest.next_token)
    assert names(newest) + rest == [f"job-{n}" for n in (5, 4, 3, 2, 1, 0)]
    rest = walk(ledger, oldest_first=True, next_token=oldest.next_token)
    assert names(oldest) + rest == [f"job-{n}" for n in range(9)], "new jobs come last"
    rest = walk(ledger, order_by="modified_at", oldest_first=True, next_token=by_change.next_token)
    assert names(by_change) + rest == [
        *("job-0", "job-1", "job-2", "job-3", "job-5"),
        *("job-6", "job-7", "job-8", "job-1", "job-4"),
    ], "an unchanged job is listed once; a changed one again at its new place"


def test_a_namespace_lists_only_its_jobs_in_each_order(ledger: Ledger):
    for n in range(4):
        ledger.submit(spec(f"job-{n}", namespace="team" if n % 2 else "default"))
    assert walk(ledger, namespace="team") == ["job-3", "job-1"]
    assert walk(ledger, namespace="team", order_by="modified_at", oldest_first=True) == [
        "job-1",
        "job-3",
    ]


def test_a_label_test_fills_pages_from_the_index(ledger: Ledger):
    for n in range(6):
        ledger.submit(spec(f"job-{n}", tier="gold" if n % 2 else "tin"))
    page = ledger.list_jobs(limit=2, labels=gold)
    assert names(page) == ["job-5", "job-3"] and page.next_token
    assert walk(ledger, labels=gold, order_by="modified_at", oldest_first=True) == [
        "job-1",
        "job-3",
        "job-5",
    ]


def test_a_sparse_label_test_stops_at_the_scan_limit_and_reads_on_from_there(ledger: Ledger):
    for n in range(7):
        ledger.submit(spec(f"job-{n}", tier="gold" if n in (0, 6) else "tin"))
    first = ledger.list_jobs(limit=5, labels=gold, scan_limit=3)
    assert names(first) == ["job-6"] and first.next_token, "cut short after three jobs"
    second = ledger.list_jobs(limit=5, labels=gold, scan_limit=3, next_token=first.next_token)
    assert names(second) == [] and second.next_token
    third = ledger.list_jobs(limit=5, labels=gold, scan_limit=3, next_token=second.next_token)
    assert names(third) == ["job-0"] and third.next_token is None


def test_a_resubmission_changes_the_labels_a_list_tests(ledger: Ledger):
    ledger.submit(spec("job", tier="tin"))
    assert walk(ledger, labels=gold) == []
    ledger.submit(spec("job", tier="gold"))
    assert walk(ledger, labels=gold) == ["job"]


def test_unknown_orders_and_scan_limits_are_refused_with_the_choices(ledger: Ledger):
    with pytest.raises(BadQuery, match="created_at or modified_at"):
        ledger.list_jobs(order_by="name")
    with pytest.raises(BadQuery, match="at least 1"):
        ledger.list_jobs(labels=gold, scan_limit=0)


def _drop_new_columns(ledger: Ledger) -> None:
    """Turn the read model back into the shape it had before modified_seq and labels."""
    with ledger.projection._cursor(commit=True) as cursor:
        for index in ("klippfisk_jobs_ns_seq", "klippfisk_jobs_mod", "klippfisk_jobs_ns_mod"):
            schema = getattr(ledger.recorder.datastore, "schema", "")
            qualified = f'"{schema}".{index}' if ledger.projection._postgres else index
            cursor.execute(f"DROP INDEX {qualified}")
        for column in ("modified_seq", "labels"):
            cursor.execute(ledger.projection._sql(f"ALTER TABLE {{jobs}} DROP COLUMN {column}"))


def test_a_read_model_of_the_old_shape_migrates_on_open(store_settings: Settings):
    with Ledger.open(store_settings) as ledger:
        ids = [
            ledger.submit(spec(f"job-{n}", tier=["tin", "gold"][n % 2])).job_id for n in range(4)
        ]
        ledger.queue(ids[1])
        ledger.catch_up()
        _drop_new_columns(ledger)
    with Ledger.open(store_settings) as ledger:
        assert walk(ledger, order_by="modified_at") == ["job-1", "job-3", "job-2", "job-0"]
        assert walk(ledger, labels=gold) == ["job-3", "job-1"]
    with Ledger.open(store_settings) as ledger:  # a migrated model opens as it is
        assert ledger.catch_up() == 0
        assert walk(ledger) == ["job-3", "job-2", "job-1", "job-0"]


def test_a_ledger_file_written_before_the_change_opens_and_lists(tmp_path: Path):
    """read-model-v1.db was written by the code before modified_seq and labels: job-0 to
    job-4 (job-4 in namespace team, odd ones tier=tin), then job-0 queued and job-2 stopped."""
    path = tmp_path / "ledger.db"
    shutil.copy(DATA / "read-model-v1.db", path)
    settings = Settings(data_dir=tmp_path, ledger=LedgerSettings(path=path))
    with Ledger.open(settings) as ledger:
        assert walk(ledger, order_by="modified_at") == ["job-2", "job-0", "job-4", "job-3", "job-1"]
        assert walk(ledger, labels=gold, oldest_first=True) == ["job-0", "job-2", "job-4"]
        assert walk(ledger, namespace="team") == ["job-4"]
        assert ledger.get("job-2").state == "Stopped"
    with sqlite3.connect(path) as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(klippfisk_jobs)")}
    assert {"modified_seq", "labels"} <= columns

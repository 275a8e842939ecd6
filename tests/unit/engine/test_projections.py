"""The read models: fed from the notification log, exactly once, whatever goes wrong."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.postgres import PostgresDatastore

from klippfisk.engine import Ledger
from klippfisk.engine.persistence.projections import JobsProjection, PageQuery
from klippfisk.engine.settings import Settings
from klippfisk.spec.compiled import CompiledSpec

MakeSpec = Callable[..., CompiledSpec]


def _projection(ledger: Ledger, to_event: Callable[[Any], Any]) -> JobsProjection:
    """A second projector over the same tables, as another process would run it."""
    return JobsProjection(
        datastore=ledger.recorder.datastore,
        postgres=isinstance(ledger.recorder.datastore, PostgresDatastore),
        schema=getattr(ledger.recorder.datastore, "schema", ""),
        select_notifications=ledger.recorder.select_notifications,
        to_event=to_event,
        load_job=lambda job_id, version: ledger.repository.get(job_id, version=version),
        batch_size=3,
    )


def _rows(ledger: Ledger) -> dict[str, tuple[str, int]]:
    rows = ledger.projection.page(PageQuery(limit=1000))
    return {r.job_id: (r.state, r.event_version) for r in rows}


def test_catching_up_applies_each_event_once_and_stores_the_position(
    ledger: Ledger, make_spec: MakeSpec
):
    job_id = ledger.submit(make_spec("a")).job_id
    ledger.queue(job_id)
    assert ledger.catch_up() == 2
    assert ledger.projection.position() == ledger.recorder.max_notification_id()
    assert ledger.catch_up() == 0
    assert _rows(ledger) == {job_id: ("Queued", 2)}


def test_a_batch_that_dies_half_way_leaves_rows_and_position_as_they_were(
    ledger: Ledger, make_spec: MakeSpec
):
    ids = [ledger.submit(make_spec(f"j{n}")).job_id for n in range(2)]
    ledger.catch_up()
    for job_id in ids:
        ledger.queue(job_id)
        ledger.start_execution(job_id, ledger.create_execution(job_id))
    before = (_rows(ledger), ledger.projection.position())
    seen: list[int] = []

    def dies_on_the_third(notification: Any) -> Any:
        seen.append(notification.id)
        if len(seen) == 3:
            raise RuntimeError("killed mid-batch")
        return ledger.mapper.to_domain_event(notification)

    with pytest.raises(RuntimeError):
        _projection(ledger, dies_on_the_third).catch_up()
    assert (_rows(ledger), ledger.projection.position()) == before
    assert _projection(ledger, ledger.mapper.to_domain_event).catch_up() == 6
    assert _rows(ledger) == {job_id: ("Running", 4) for job_id in ids}


def test_two_projectors_taking_turns_never_double_apply(
    store_settings: Settings, make_spec: MakeSpec
):
    with Ledger.open(store_settings) as one, Ledger.open(store_settings) as two:
        ids = [one.submit(make_spec(f"n{n}")).job_id for n in range(4)]
        for step, job_id in enumerate(ids):
            (one if step % 2 else two).queue(job_id)
            (two if step % 2 else one).catch_up()
        one.catch_up()
        two.catch_up()
        assert _rows(one) == {job_id: ("Queued", 2) for job_id in ids}
        assert one.projection.position() == two.projection.position()


def test_the_background_projector_keeps_up_without_being_asked(ledger: Ledger, make_spec: MakeSpec):
    ledger.start_projecting(interval=0.01)
    job_id = ledger.submit(make_spec("bg")).job_id
    deadline = time.monotonic() + 30
    while ledger.projection.position() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    ledger.stop_projecting()
    assert _rows(ledger) == {job_id: ("Pending", 1)}


def test_rows_follow_resubmission_to_the_new_version(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(make_spec("v")).job_id
    ledger.submit(make_spec("v", command="echo 2"))
    (row,) = ledger.projection.page(PageQuery(name="v")) if ledger.catch_up() else []
    assert (row.job_id, row.job_version, row.state) == (job_id, 2, "Pending")

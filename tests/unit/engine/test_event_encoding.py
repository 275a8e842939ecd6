"""How events are encoded, hashed and stored: one encoding per event, and the same bytes and
hashes as stores written before it, so existing ledgers still read back and verify."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Mapper
from hypothesis import given, settings
from hypothesis import strategies as st

from klippfisk.engine import Ledger
from klippfisk.engine.job import event_hash
from klippfisk.engine.settings import LedgerSettings, Settings
from klippfisk.spec.compiled import CompiledSpec

MakeSpec = Callable[..., CompiledSpec]

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


def _hash_as_stored_ledgers_were(
    job_id: str, version: int, kind: str, when: datetime, body: dict[str, Any], prev: str
) -> str:
    """The chain's definition: the one every stored hash was made with."""
    payload = [job_id, version, kind, when.isoformat(), body, prev]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@settings(max_examples=60, deadline=None)
@given(
    job_id=st.text(),
    version=st.integers(min_value=1, max_value=10**6),
    kind=st.sampled_from(["Submitted", "Queued", "ExecutionCompleted"]),
    body=st.dictionaries(st.text(), _JSON, min_size=1, max_size=5),
    prev=st.text(alphabet="0123456789abcdef", max_size=64),
)
def test_the_chain_hash_is_the_one_every_stored_event_was_hashed_with(
    job_id: str, version: int, kind: str, body: dict[str, Any], prev: str
):
    when = datetime(2026, 11, 22, 23, 15, 1, 123456, tzinfo=UTC)
    expected = _hash_as_stored_ledgers_were(job_id, version, kind, when, body, prev)
    assert event_hash(job_id, version, kind, when, body, prev) == expected


def _sqlite(path: Path) -> Settings:
    return Settings(data_dir=path, ledger=LedgerSettings(path=path / "ledger.db"))


def _lifecycle(ledger: Ledger, spec: CompiledSpec) -> str:
    job_id = ledger.submit(spec).job_id
    ledger.queue(job_id)
    execution_id = ledger.create_execution(job_id)
    ledger.start_execution(job_id, execution_id, notes=["ünïcode note"])
    ledger.complete_execution(job_id, execution_id, exit_code=3, stdout="out\n")
    return job_id


def test_events_stored_the_libraries_way_read_back_and_verify(tmp_path: Path, make_spec: MakeSpec):
    """A ledger written before our encoder (the library's transcoder did it) stays whole."""
    with Ledger.open(_sqlite(tmp_path / "new")) as source:
        job_id = _lifecycle(source, make_spec("old-form"))
        events = list(source.events.get(job_id))
        expected = source.get(job_id)
    library = Mapper(transcoder=source.mapper.transcoder)
    with Ledger.open(_sqlite(tmp_path / "old")) as old:
        old.recorder.insert_events([library.to_stored_event(e) for e in events])
        assert old.get(job_id) == expected
        assert old.verify().ok
        assert [e["Event"]["Message"] for e in old.history(job_id)][-2:] == [
            "Execution completed with exit code 3",
            "Completed",
        ]


def test_events_we_store_read_back_with_the_libraries_own_mapper(
    ledger: Ledger, make_spec: MakeSpec
):
    job_id = _lifecycle(ledger, make_spec("new-form"))
    library = Mapper(transcoder=ledger.mapper.transcoder)
    stored = ledger.recorder.select_events(job_id)
    assert [vars(library.to_domain_event(s)) for s in stored] == [
        vars(ledger.mapper.to_domain_event(s)) for s in stored
    ]


def test_a_spec_holding_a_dict_shaped_like_a_tagged_value_comes_back_as_it_went_in(
    store_settings: Settings, make_spec: MakeSpec
):
    """A user's dict that looks like the library's tagged datetime stays a dict, so the job
    reads back unchanged and its hash still matches."""
    spec = make_spec("tagged")
    tagged = {"_type_": "datetime_iso", "_data_": "2024-01-01T00:00:00+00:00"}
    spec.job["Tasks"][0]["Engine"]["Params"]["Meta"] = tagged
    with Ledger.open(store_settings) as ledger:
        job_id = ledger.submit(spec).job_id
        ledger.queue(job_id)
    with Ledger.open(store_settings) as fresh:  # nothing cached: only what was stored
        assert fresh.get(job_id).job["Tasks"][0]["Engine"]["Params"]["Meta"] == tagged
        assert fresh.verify().ok

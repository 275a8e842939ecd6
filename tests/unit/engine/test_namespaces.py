"""Names are unique only within a namespace: two tenants can both have a job called "report"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from klippfisk.engine import JobNotFound, Ledger
from klippfisk.spec.compiled import CompiledSpec

MakeSpec = Callable[..., CompiledSpec]


def _in(namespace: str, spec: CompiledSpec) -> CompiledSpec:
    job: dict[str, Any] = {**spec.job, "Namespace": namespace}
    return CompiledSpec(job, spec.job_cid + namespace, spec.task_cids, spec.report)


@pytest.fixture
def tenants(ledger: Ledger, make_spec: MakeSpec) -> dict[str, str]:
    """A job called "report" in namespace a and one in namespace b."""
    return {ns: ledger.submit(_in(ns, make_spec("report"))).job_id for ns in ("a", "b")}


def test_the_same_name_in_two_namespaces_is_two_jobs(ledger: Ledger, tenants):
    assert tenants["a"] != tenants["b"]
    for ns, job_id in tenants.items():
        view = ledger.get("report", namespace=ns)
        assert (view.id, view.namespace) == (job_id, ns)
        assert ledger.resolve("report", namespace=ns) == job_id


def test_a_name_without_a_namespace_is_refused_when_it_is_ambiguous(ledger: Ledger, tenants):
    with pytest.raises(JobNotFound, match=r"several namespaces \(a, b\).*namespace"):
        ledger.get("report")


def test_a_name_used_in_one_namespace_needs_none(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(_in("solo", make_spec("only-here"))).job_id
    assert ledger.get("only-here").id == job_id
    with pytest.raises(JobNotFound):
        ledger.get("only-here", namespace="other")


def test_ids_and_short_ids_answer_only_in_their_own_namespace(ledger: Ledger, tenants):
    job_id = tenants["a"]
    assert ledger.get(job_id, namespace="a").id == job_id
    assert ledger.get(job_id[:10], namespace="a").id == job_id
    for ref in (job_id, job_id[:10]):
        with pytest.raises(JobNotFound):
            ledger.get(ref, namespace="b")
    with pytest.raises(JobNotFound, match="namespace 'b'"):
        ledger.history(job_id, namespace="b")


def test_resubmitting_in_one_namespace_leaves_the_other_alone(
    ledger: Ledger, tenants, make_spec: MakeSpec
):
    ledger.submit(_in("a", make_spec("report", command="echo v2")))
    assert ledger.get("report", namespace="a").version == 2
    assert ledger.get("report", namespace="b").version == 1


def test_listing_by_name_stays_within_the_namespace(ledger: Ledger, tenants):
    listed = ledger.list_jobs(name="report", namespace="b")
    assert [j.id for j in listed.items] == [tenants["b"]]
    assert {j.id for j in ledger.list_jobs(name="report").items} == set(tenants.values())


def test_a_full_id_is_found_without_touching_the_read_models(ledger: Ledger, make_spec: MakeSpec):
    job_id = ledger.submit(_in("a", make_spec("direct"))).job_id
    assert ledger.get(job_id).id == ledger.resolve(job_id) == job_id
    assert ledger.get(job_id, namespace="a").id == ledger.resolve(job_id, namespace="a")
    assert ledger.projection.position() == 0  # no catch-up ran: one read by primary key

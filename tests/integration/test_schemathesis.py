"""schemathesis against our own OpenAPI, over real HTTP: no 500s, every answer in schema.

Job ids are random text, so generated ones only ever reach 404s. The bench seeds jobs in
several states (one run to the end, so it has executions and results) and a hook swaps
their ids into most generated job paths, so the Job, History and Executions answers are
checked against their schemas too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from klippfisk.adapters.http import create_app
from klippfisk.adapters.http.server import running
from klippfisk.adapters.settings import AppSettings
from klippfisk.engine import Ledger, Source
from klippfisk.spec import compile_job

KEY = "fuzz-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("fuzz-data")
    settings = AppSettings(
        data_dir=data_dir,
        server={"api_keys": [{"key": KEY, "namespace": "*"}], "rate_burst": 100_000},
    )
    ledger = Ledger.open(settings)
    try:
        SEEDED[:] = seed(ledger)
        with running(create_app(settings, ledger)) as url:
            yield url
    finally:
        ledger.close()


SEEDED: list[str] = []  # filled by the bench before any case is generated
NAMES = ("fuzz-pending", "fuzz-done", "fuzz-stopped")


def seed(ledger: Ledger) -> list[str]:
    """Jobs for the cases to find: pending, completed (with an execution) and stopped, by
    id and by name."""
    source = Source(adapter="test", actor="fuzz", ref="seed")
    engine = {"Type": "docker", "Params": {"Image": "busybox"}}
    pending, done, stopped = (
        ledger.submit(
            compile_job(
                {"Type": "batch", "Name": name, "Tasks": [{"Name": "main", "Engine": engine}]}
            ),
            source=source,
        ).job_id
        for name in NAMES
    )
    ledger.queue(done)
    execution = ledger.create_execution(done, node="node-1")
    ledger.start_execution(done, execution)
    ledger.complete_execution(done, execution, exit_code=0, stdout="hello\n")
    ledger.stop(stopped, reason="seeded")
    return [pending, done, stopped, *NAMES]


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> Any:
    loaded = schemathesis.openapi.from_url(f"{base_url}/openapi.json")

    @loaded.hook
    def flatmap_path_parameters(_: Any, parameters: dict[str, Any] | None) -> Any:
        """Most job paths name a seeded job; the rest keep the generated (unknown) id."""
        if not parameters or "job_ref" not in parameters:
            return st.just(parameters)
        seeded = [{**parameters, "job_ref": ref} for ref in SEEDED]
        return st.sampled_from([parameters, *seeded])

    @loaded.hook
    def flatmap_query(_: Any, query: dict[str, Any] | None) -> Any:
        """A generated namespace hides every seeded job (a 404), so half the cases omit it."""
        if not query or "namespace" not in query:
            return st.just(query)
        return st.sampled_from([query, {k: v for k, v in query.items() if k != "namespace"}])

    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_own_openapi(case: Any, base_url: str) -> None:
    case.call_and_validate(
        base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS
    )


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("", {"include": "history,executions"}),
        ("/history", {"limit": 2}),
        ("/executions", {}),
        ("/versions", {}),
        ("/results", {}),
    ],
)
def test_every_seeded_job_answers_in_schema(
    api_schema: Any, base_url: str, path: str, query: dict[str, Any]
) -> None:
    """The generated cases reach seeded jobs only by chance; these always do."""
    operation = api_schema[f"/api/v1/orchestrator/jobs/{{job_ref}}{path}"]["GET"]
    for ref in SEEDED:
        case = operation.Case(path_parameters={"job_ref": ref}, query=query)
        response = case.call_and_validate(
            base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS
        )
        assert response.status_code == 200, response.text

"""schemathesis against our own OpenAPI, over real HTTP: no 500s, every answer in schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.http import create_app
from adapters.http.server import running
from adapters.settings import AppSettings
from engine import Ledger

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
        with running(create_app(settings, ledger)) as url:
            yield url
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


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

"""schemathesis against every service's OpenAPI document: no 5xx, no response that contradicts
the schema, whatever the input (run with an admin token, on a SQLite store of its own)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from shared.service import ServiceSpec, build_service
from shared.settings import ServiceSettings
from shared.web import create_app
from tests.support.specs import available_specs

EXAMPLES = 20  # per operation; CI runs every operation of every service
# A schema-valid request may still break a business rule (422 with the rule): that is an
# answer, not a contract failure, so positive-data acceptance is not one of the checks.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def app_for(spec: ServiceSpec[Any], data_dir: Path) -> FastAPI:
    """The service's app on a SQLite store of its own; its Kafka loops are not started."""
    settings_class: type[ServiceSettings] = spec.settings_class
    settings = settings_class(environment="test", data_dir=data_dir, clock="movable", topic_prefix="fuzz")
    return create_app(build_service(spec, settings))


@pytest.fixture(scope="module", params=sorted(available_specs()))
def service_app(request: pytest.FixtureRequest) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    with tempfile.TemporaryDirectory() as data_dir:
        app = app_for(available_specs()[request.param], Path(data_dir))
        token = app.state.context.tokens.issue("fuzz-admin", "admin")
        yield app, {"Authorization": f"Bearer {token}"}


def test_no_input_gets_a_server_error_or_an_answer_outside_the_schema(
    service_app: tuple[FastAPI, dict[str, str]],
) -> None:
    app, headers = service_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # /readyz answers a documented 503 while Kafka is not connected, as here: its purpose.
    operations = [
        op for op in (result.ok() for result in schema.get_all_operations()) if op.path != "/readyz"
    ]
    assert operations, "the service documents no operation"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        no_server_error()


OPEN = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}  # for probes and scrapers


def test_every_operation_but_the_platforms_open_ones_documents_the_bearer_token(
    service_app: tuple[FastAPI, dict[str, str]],
) -> None:
    app, _ = service_app
    operations = {
        (method, path): operation.get("security")
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
    }
    assert {op for op, security in operations.items() if not security} == OPEN
    assert all(security == [{"HTTPBearer": []}] for op, security in operations.items() if op not in OPEN)

"""One port for the apps: a prefix per service, request ids, body and rate limits, CORS, and
every service's OpenAPI document reachable through the gateway."""

from __future__ import annotations

import httpx

from shared.auth import TokenAuthority
from shared.cli.processes import System, available_services
from shared.settings import ServiceSettings


def gateway(system: System) -> str:
    return f"http://127.0.0.1:{system.gateway_port}"


def test_every_service_answers_through_its_prefix_with_its_openapi_document(system: System) -> None:
    for service in available_services():
        ready = httpx.get(f"{gateway(system)}/{service}/readyz", timeout=10)
        assert ready.status_code == 200, (service, ready.text)
        document = httpx.get(f"{gateway(system)}/{service}/openapi.json", timeout=10).json()
        assert document["info"]["title"].endswith(service)
        # Served under the prefix, the docs page points at the prefixed document.
        docs = httpx.get(f"{gateway(system)}/{service}/docs", timeout=10).text
        assert f"/{service}/openapi.json" in docs


def test_the_request_id_passes_through_and_is_made_when_missing(system: System) -> None:
    for service in available_services():
        given = httpx.get(
            f"{gateway(system)}/{service}/healthz", headers={"X-Request-ID": "req-42"}, timeout=10
        )
        assert given.headers["X-Request-ID"] == "req-42"
        made = httpx.get(f"{gateway(system)}/{service}/healthz", timeout=10)
        assert len(made.headers["X-Request-ID"]) >= 16


def test_an_oversized_body_is_refused_at_the_gateway_with_a_message(system: System) -> None:
    response = httpx.post(f"{gateway(system)}/leads/anything", content=b"x" * (2 * 1024 * 1024), timeout=10)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_cors_preflight_is_answered_for_the_apps(system: System) -> None:
    response = httpx.options(
        f"{gateway(system)}/visits/visits",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "Idempotency-Key" in response.headers["Access-Control-Allow-Headers"]


def test_an_unknown_path_gets_a_json_404_naming_the_prefixes(system: System) -> None:
    response = httpx.get(f"{gateway(system)}/nowhere", timeout=10)
    assert response.status_code == 404 and "/leads/" in response.json()["message"]


def test_a_token_issued_for_the_system_is_accepted_by_every_service(system: System) -> None:
    settings = ServiceSettings()
    token = TokenAuthority(settings.jwt_secret.get_secret_value(), settings.jwt_issuer).issue("ops-1", "ops")
    for service in available_services():
        clock = httpx.get(
            f"{gateway(system)}/{service}/_clock", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert clock.status_code == 200 and clock.json()["movable"] is True

"""Every operation of every service refuses a call without a valid token: none, forged, expired,
or of a role that does not exist. Only the probes (/healthz, /readyz, /metrics) are open."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI

from shared.auth import TokenAuthority
from tests.integration.test_api_contract import app_for
from tests.support.specs import available_specs

OPEN = {"/healthz", "/readyz", "/metrics"}
SOME_ID = "00000000-0000-4000-8000-000000000001"


@pytest.fixture(scope="module", params=sorted(available_specs()))
def service_app(request: pytest.FixtureRequest) -> Iterator[FastAPI]:
    with tempfile.TemporaryDirectory() as data_dir:
        yield app_for(available_specs()[request.param], Path(data_dir))


def operations(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for path, item in app.openapi()["paths"].items():
        for method in item:
            found.append((method.upper(), re.sub(r"\{[^}]+\}", SOME_ID, path)))
    return found


def bad_tokens(app: FastAPI) -> dict[str, str]:
    tokens: TokenAuthority = app.state.context.tokens
    settings = app.state.context.settings
    now = datetime.now(UTC)
    secret = settings.jwt_secret.get_secret_value()
    return {
        "forged": TokenAuthority("x" * 40, settings.jwt_issuer).issue("admin-1", "admin"),
        "expired": tokens.issue("admin-1", "admin", now=now - timedelta(days=2), ttl=timedelta(hours=1)),
        "unknown role": jwt.encode(
            {
                "sub": "x",
                "role": "ceo",
                "iss": settings.jwt_issuer,
                "exp": int((now + timedelta(hours=1)).timestamp()),
            },
            secret,
            algorithm="HS256",
        ),
        "another issuer": TokenAuthority(secret, "someone-else").issue("admin-1", "admin"),
        "not a jwt": "abc.def.ghi",
    }


async def test_every_operation_refuses_a_caller_without_a_valid_token(service_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=service_app)
    refused: dict[str, int] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        for method, path in operations(service_app):
            if path in OPEN:
                continue
            for name, token in {"none": None, **bad_tokens(service_app)}.items():
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                response = await client.request(method, path, headers=headers, json={})
                refused[f"{method} {path} [{name}]"] = response.status_code
    wrong = {call: status for call, status in refused.items() if status != 401}
    assert refused and not wrong, wrong

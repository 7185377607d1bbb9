"""PostgreSQL restarted under load: requests during the outage get 503 with a retry hint, none is
half-written, and the service recovers without a restart. Runs on a PostgreSQL cluster of its own
(port 5439), so that stopping it disturbs no other test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from shared.settings import ServiceSettings
from tests.support.probe import probe_spec
from tests.support.services import RunningService, running_service, service_settings

REPO = Path(__file__).resolve().parents[2]
PORT = "5439"
SCRIPT = str(REPO / "deploy/postgres/postgres.sh")
ENV = {**os.environ, "PG_PORT": PORT, "PG_DATA_DIR": f"/tmp/ironarmy-postgres-outage-{PORT}"}


def postgres(command: str) -> None:
    subprocess.run([SCRIPT, command], check=True, env=ENV, capture_output=True)


@pytest.fixture
def own_postgres() -> Iterator[str]:
    postgres("up")
    yield f"outage_{uuid.uuid4().hex[:8]}"
    postgres("stop")


@pytest.fixture
async def service(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, own_postgres: str
) -> AsyncIterator[RunningService]:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=PORT, user="ironarmy", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{own_postgres}"')
    settings = service_settings(
        ServiceSettings,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        data_dir=tmp_path,
        store="postgres",
        postgres_connect_timeout=1,
        postgres_port=int(PORT),
        postgres_dbname=own_postgres,
    )
    async with running_service(probe_spec(), settings) as svc:
        yield svc


@pytest.mark.slow
async def test_requests_during_a_store_outage_get_503_and_the_service_recovers(
    service: RunningService,
) -> None:
    headers = service.token("ops-1", "ops")

    async def create(n: int) -> httpx.Response:
        return await service.client.post("/probes", json={"name": f"p{n}"}, headers=headers)

    before = [await create(n) for n in range(5)]
    assert {r.status_code for r in before} == {201}

    await asyncio.to_thread(postgres, "stop")
    during = await asyncio.gather(*(create(100 + n) for n in range(6)))
    assert {r.status_code for r in during} == {503}, [r.text for r in during]
    assert all(r.headers["Retry-After"] == "2" and r.json()["error"] == "store_unavailable" for r in during)

    await asyncio.to_thread(postgres, "up")
    after = [await create(200 + n) for n in range(5)]
    assert {r.status_code for r in after} == {201}, [r.text for r in after]

    # Exactly the accepted requests are in the store: nothing half-written from the outage.
    created = {r.json()["id"] for r in before + after}
    stored = {
        str(n.originator_id)
        for n in service.application.recorder.select_notifications(None, 1000)
        if n.topic.endswith("Probe.Created")
    }
    assert stored == created

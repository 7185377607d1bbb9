"""The app every service runs: health, readiness, metrics, authentication, errors, the clock."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from shared.auth import TokenAuthority
from shared.clock import MovableClock
from shared.domain import Meta
from shared.events.catalog import decode
from shared.relay import HANDOVER_EVENTS
from shared.service import ServiceContext
from shared.settings import ServiceSettings
from tests.support.kafka_helpers import eventually_async, read_topic
from tests.support.probe import ProbeApplication, probe_spec
from tests.support.services import running_service, service_settings

Service = tuple[httpx.AsyncClient, ServiceContext[ProbeApplication]]


@pytest.fixture
async def service(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> AsyncIterator[Service]:
    settings = service_settings(
        ServiceSettings, kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path
    )
    async with running_service(
        probe_spec(), settings, MovableClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    ) as svc:
        yield svc.client, svc.context


def bearer(context: ServiceContext[ProbeApplication], role: str, actor: str = "u-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {context.tokens.issue(actor, role)}"}


async def test_a_running_service_is_healthy_and_ready_once_store_and_kafka_answer(service: Service) -> None:
    client, _ = service
    assert (await client.get("/healthz")).json() == {"status": "ok", "service": "leads"}

    async def ready() -> bool:
        return (await client.get("/readyz")).status_code == 200

    await eventually_async(ready, what="ready")
    assert (await client.get("/readyz")).json()["checks"] == {"store": "ok", "kafka": "ok"}


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_service_relays_through_its_reader_process_on_either_store(
    store: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """As a service runs by default: a backlog read by a process of its own, made from the
    service's spec and settings (on PostgreSQL with a connection of its own). Requests' saves
    are handed over to the relay as they commit; a save too big to hand over is read back, in
    batches of one event: every batch is full, so all but the first are read there."""
    extra = {"postgres_dbname": request.getfixturevalue("postgres_dbname")} if store == "postgres" else {}
    settings = service_settings(
        ServiceSettings,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        data_dir=tmp_path,
        store=store,
        relay_reader="process",
        relay_batch_size=1,
        **extra,
    )
    async with running_service(probe_spec(), settings) as svc:
        reader = svc.context.relay.reader
        assert reader is not None
        asked: list[int] = []
        read = reader.read

        async def counted(after: int) -> Any:
            asked.append(after)
            return await read(after)

        reader.read = counted  # type: ignore[method-assign]
        headers = svc.token("ops-1", "ops")
        created = await svc.client.post("/probes", json={"name": "x"}, headers=headers)
        probe_id = created.json()["id"]
        for rep in ("rep-1", "rep-2"):
            assigned = await svc.client.post(
                f"/probes/{probe_id}/assignments", json={"rep_id": rep}, headers=headers
            )
            assert assigned.status_code == 201
        records = await read_topic(kafka_bootstrap, settings.topic("leads"), until=lambda r: len(r) >= 2)
        assert [decode(r.value)[1].rep_id for r in records] == ["rep-1", "rep-2"]  # type: ignore[attr-defined]
        assert not asked  # handed over by the requests' saves

        bulk = [f"bulk-{n}" for n in range(HANDOVER_EVENTS + 1)]
        meta = Meta("ops-1", "ops", datetime.now(UTC))
        await asyncio.to_thread(svc.context.application.assign_many, UUID(probe_id), bulk, meta)
        records = await read_topic(
            kafka_bootstrap, settings.topic("leads"), until=lambda r: len(r) >= 2 + len(bulk)
        )
        assert [decode(r.value)[1].rep_id for r in records[2:]] == bulk  # type: ignore[attr-defined]
        assert asked and os.getpid() not in await reader.start()  # read there, in other processes


async def test_every_call_needs_a_valid_token(service: Service) -> None:
    client, context = service
    missing = await client.post("/probes", json={"name": "x"})
    assert missing.status_code == 401 and "bearer token" in missing.json()["message"]
    forged = TokenAuthority("another-secret-that-is-long-enough-0123", "ironarmy").issue("u-1", "admin")
    refused = await client.post("/probes", json={"name": "x"}, headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401 and "invalid token" in refused.json()["message"]
    expired = context.tokens.issue("u-1", "admin", now=datetime(2020, 1, 1, tzinfo=UTC))
    late = await client.post("/probes", json={"name": "x"}, headers={"Authorization": f"Bearer {expired}"})
    assert late.status_code == 401 and late.json()["message"] == "token expired"


async def test_a_role_without_the_right_gets_403_and_the_right_role_acts(service: Service) -> None:
    client, context = service
    denied = await client.post("/probes", json={"name": "x"}, headers=bearer(context, "rep"))
    assert denied.status_code == 403 and "role 'rep'" in denied.json()["message"]
    created = await client.post("/probes", json={"name": "x"}, headers=bearer(context, "ops", "ops-9"))
    assert created.status_code == 201
    assert created.headers["X-Request-ID"]


async def test_bad_input_gets_a_422_that_names_the_field(service: Service) -> None:
    client, context = service
    response = await client.post("/probes", json={"nom": "x"}, headers=bearer(context, "ops"))
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["fields"][0]["field"] == "body.name"
    malformed = await client.post(
        "/probes",
        content=b"{not json",
        headers={**bearer(context, "ops"), "Content-Type": "application/json"},
    )
    assert malformed.status_code == 422


async def test_ops_move_a_movable_clock_forward_only(service: Service) -> None:
    client, context = service
    moved = await client.post("/_clock", json={"advance_seconds": 86400}, headers=bearer(context, "ops"))
    assert moved.status_code == 200
    assert moved.json()["now"].startswith("2026-01-06T09:00:00")
    assert context.clock.now() == datetime(2026, 1, 6, 9, tzinfo=UTC)
    back = await client.post("/_clock", json={"to": "2026-01-01T00:00:00Z"}, headers=bearer(context, "ops"))
    assert back.status_code == 422 and back.json()["field"] == "body.to"
    rep = await client.post("/_clock", json={"advance_seconds": 1}, headers=bearer(context, "rep"))
    assert rep.status_code == 403


async def test_metrics_count_requests_and_relay_progress(service: Service) -> None:
    client, context = service
    await client.post("/probes", json={"name": "x"}, headers=bearer(context, "ops"))

    async def published() -> bool:
        text = (await client.get("/metrics")).text
        return "relay_position" in text and 'route="/probes"' in text

    # A created probe has no public form, but the relay still moves past it.
    await eventually_async(published, what="metrics")
    text = (await client.get("/metrics")).text
    commits = next(line for line in text.splitlines() if line.startswith("store_commit_saves_count"))
    assert float(commits.split()[-1]) >= 1  # the probe's save, a transaction of one save


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer_and_writes_nothing(
    service: Service,
) -> None:
    client, context = service
    headers = {**bearer(context, "ops", "ops-1"), "Idempotency-Key": "k-1"}
    first = await client.post("/probes", json={"name": "x"}, headers=headers)
    stored = context.application.recorder.max_notification_id()
    again = await client.post("/probes", json={"name": "x"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert context.application.recorder.max_notification_id() == stored
    other_body = await client.post("/probes", json={"name": "y"}, headers=headers)
    assert other_body.status_code == 422 and other_body.json()["field"] == "Idempotency-Key"
    # Keys belong to their caller: another user's same key is another request.
    someone_else = await client.post(
        "/probes", json={"name": "x"}, headers={**bearer(context, "ops", "ops-2"), "Idempotency-Key": "k-1"}
    )
    assert someone_else.status_code == 201 and someone_else.json() != first.json()


async def test_concurrent_requests_with_one_idempotency_key_create_one_thing(service: Service) -> None:
    client, context = service
    headers = {**bearer(context, "ops", "ops-1"), "Idempotency-Key": "race"}
    before = context.application.recorder.max_notification_id() or 0
    responses = await asyncio.gather(
        *(client.post("/probes", json={"name": "r"}, headers=headers) for _ in range(8))
    )
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert {r.status_code for r in responses} <= {201, 409}
    probes = [
        n
        for n in context.application.recorder.select_notifications(before, 100, inclusive_of_start=False)
        if n.topic.endswith("Probe.Created")
    ]
    assert len(probes) == 1


async def test_two_commands_racing_on_one_aggregate_one_wins_the_other_gets_409_with_the_version(
    service: Service,
) -> None:
    client, context = service
    headers = bearer(context, "ops")
    probe_id = (await client.post("/probes", json={"name": "contested"}, headers=headers)).json()["id"]
    context.application.race = threading.Barrier(2)  # both read version 1 before either saves
    try:
        first, second = await asyncio.gather(
            client.post(f"/probes/{probe_id}/assignments", json={"rep_id": "rep-a"}, headers=headers),
            client.post(f"/probes/{probe_id}/assignments", json={"rep_id": "rep-b"}, headers=headers),
        )
    finally:
        context.application.race = None
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    lost = first if first.status_code == 409 else second
    assert lost.json()["error"] == "conflict"
    assert lost.json()["details"] == {"aggregate_id": probe_id, "current_version": 2, "expected_version": 1}
    assert context.application.repository.get(UUID(probe_id)).assignments == 1  # never a corrupt state


def broken_translate(domain_event: object) -> None:
    raise ValueError("translator bug")  # module-level: the relay's reader process calls it


async def test_a_bug_in_a_background_loop_is_retried_and_shown_by_readyz(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    spec = dataclasses.replace(probe_spec(), translate=broken_translate)
    settings = service_settings(
        ServiceSettings, kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path
    )
    async with running_service(spec, settings) as svc:
        created = await svc.client.post("/probes", json={"name": "x"}, headers=svc.token("ops-1", "ops"))
        assert created.status_code == 201  # the store takes the command whatever the relay does

        async def failing() -> bool:
            response = await svc.client.get("/readyz")
            return response.status_code == 503 and "translator bug" in response.json()["checks"].get(
                "background", ""
            )

        await eventually_async(failing, what="readyz reports the failing relay")

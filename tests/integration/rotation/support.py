"""What the rotation integration tests share: a running rotation service and a staffed country over HTTP."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx
from aiokafka import ConsumerRecord

from shared.events.base import Envelope
from shared.events.catalog import decode
from tests.support.kafka_helpers import eventually
from tests.support.services import SIMULATION_START, RunningService

NOW = SIMULATION_START  # the clock every test starts on
DUE_SINCE = NOW - timedelta(days=240)  # about eight months in post: due
FRESH_SINCE = NOW - timedelta(days=30)  # below the minimum tenure: nobody moves them

CITIES: dict[str, tuple[float, float]] = {
    "hangzhou": (30.27, 120.15),
    "shanghai": (31.23, 121.47),
    "nanjing": (32.06, 118.80),
    "wuhan": (30.59, 114.31),
}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


async def staff(
    svc: RunningService, postings: dict[str, tuple[str, datetime]], *, past: Iterable[tuple[str, str]] = ()
) -> None:
    """Open the regions named in `postings`, register one manager each (home = their region),
    appoint them backdated to `since`, and record `past` (manager, region) postings before that."""
    hr = svc.token("hr-1", "hr")
    for region in sorted({region for region, _ in postings.values()}):
        lat, lon = CITIES[region]
        body = {"code": region, "name": region.title(), "location": {"lat": lat, "lon": lon}}
        ok(await svc.client.post("/regions", json=body, headers=hr), 201)
    for manager_id, (region, since) in postings.items():
        lat, lon = CITIES[region]
        body = {
            "manager_id": manager_id,
            "name": manager_id.title(),
            "level": "regional",
            "home_base": {"lat": lat, "lon": lon},
        }
        ok(await svc.client.post("/managers", json=body, headers=hr), 201)
        for who, old_region in past:
            if who == manager_id:
                posting = {
                    "region": old_region,
                    "start": (since - timedelta(days=400)).isoformat(),
                    "end": (since - timedelta(days=200)).isoformat(),
                }
                ok(await svc.client.post(f"/managers/{manager_id}/past-postings", json=posting, headers=hr))
        appointment = {"region": region, "since": since.isoformat()}
        ok(await svc.client.post(f"/managers/{manager_id}/appointment", json=appointment, headers=hr))


async def tick_with_the_clock(svc: RunningService) -> None:
    """Wait until the scheduler has run one whole tick that began after the clock was last moved."""
    scheduler = svc.context.scheduler
    seen = scheduler.ticks
    await eventually(lambda: scheduler.ticks >= seen + 2, what="two scheduler ticks")


def events(records: Iterable[ConsumerRecord]) -> list[tuple[Envelope, Any]]:
    return [decode(record.value) for record in records]


def of_type(records: Iterable[ConsumerRecord], event_type: str) -> list[tuple[Envelope, Any]]:
    return [(envelope, event) for envelope, event in events(records) if envelope.event_type == event_type]

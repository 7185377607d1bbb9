"""Runs real services in-process for tests: the app's lifespan starts its relay, consumers and
scheduler against the real broker; httpx talks to it over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from shared.clock import Clock, MovableClock
from shared.service import ServiceContext, ServiceSpec, build_service
from shared.settings import ServiceSettings
from shared.web import create_app

SIMULATION_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning


@dataclass
class RunningService:
    client: httpx.AsyncClient
    context: ServiceContext[Any]

    def token(self, actor_id: str, role: str, region: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.context.tokens.issue(actor_id, role, region=region)}"}

    @property
    def application(self) -> Any:
        return self.context.application


def service_settings(
    settings_class: type[ServiceSettings], *, kafka: str, topic_prefix: str, data_dir: Path, **overrides: Any
) -> ServiceSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": data_dir,
        "kafka_bootstrap_servers": kafka,
        "topic_prefix": topic_prefix,
        "clock": "movable",
        "scheduler_tick_seconds": 0.05,
        "relay_idle_seconds": 0.05,
        # Services started in this process for a test read in a thread: a reader process takes
        # a second or so to start on a busy machine, and most tests live less long than that.
        # The reader process, the default, is tested on its own (test_outbox_relay) and under
        # every service the e2e tests start.
        "relay_reader": "thread",
        **overrides,
    }
    return settings_class(**values)


@asynccontextmanager
async def running_service(
    spec: ServiceSpec[Any], settings: ServiceSettings, clock: Clock | None = None
) -> AsyncIterator[RunningService]:
    """Start one service; several services given one MovableClock share simulated time."""
    context = build_service(spec, settings, clock or MovableClock(SIMULATION_START))
    app = create_app(context)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{spec.name}") as client:
            yield RunningService(client, context)

"""A running rotation service for each test: real broker, the store chosen by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.rotation.bootstrap import spec
from services.rotation.config import RotationSettings
from shared.clock import MovableClock
from tests.integration.rotation.support import NOW
from tests.support.services import RunningService, running_service, service_settings


@pytest.fixture
def store() -> dict[str, Any]:
    """SQLite by default; a test class overrides this to run on both stores."""
    return {"store": "sqlite"}


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def rotation(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, store: dict[str, Any], clock: MovableClock
) -> AsyncIterator[RunningService]:
    settings = service_settings(
        RotationSettings, kafka=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path, **store
    )
    async with running_service(spec(), settings, clock) as svc:
        yield svc

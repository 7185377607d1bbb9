"""The whole system started the way `ironarmy up` starts it: every service as its own uvicorn
process, the nginx gateway in front, on ports and topics of this test session's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.cli.processes import System, available_services, running_system
from tests.conftest import KAFKA


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    root: Path = tmp_path_factory.mktemp("system")
    env = {
        "IRONARMY_ENVIRONMENT": "test",
        "IRONARMY_STORE": "sqlite",
        "IRONARMY_DATA_DIR": str(root / "data"),
        "IRONARMY_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "IRONARMY_TOPIC_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
        "IRONARMY_CLOCK": "movable",
        "IRONARMY_CLOCK_START": "2026-03-02T08:00:00Z",
        "IRONARMY_SCHEDULER_TICK_SECONDS": "0.1",
        "IRONARMY_RELAY_IDLE_SECONDS": "0.05",
    }
    system = System(env=env, base_port=18001, gateway_port=18080, gateway_run_dir=root / "gateway")
    with running_system(system, available_services(), root / "log", gateway=True) as running:
        yield running

"""The whole system started the way `ironarmy up` starts it: every service as its own uvicorn
process, the nginx gateway in front, on ports and topics of this test session's own."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.cli.processes import System, available_services, running_system
from tests.conftest import KAFKA


def free_ports() -> tuple[int, int]:
    """Four consecutive free ports for the services and one for the gateway, so two test
    sessions on one machine never answer each other's requests."""
    for base in range(18001, 30000, 7):
        candidates = [*range(base, base + 4), base + 5]
        if all(_free(port) for port in candidates):
            return base, base + 5
    raise RuntimeError("no free ports for the e2e system")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


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
    base, gateway = free_ports()
    system = System(env=env, base_port=base, gateway_port=gateway, gateway_run_dir=root / "gateway")
    with running_system(system, available_services(), root / "log", gateway=True) as running:
        yield running

"""Fixtures for the real infrastructure: the Kafka broker and PostgreSQL that .ci/run starts."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.stores import PG, postgres_env, sqlite_env

# Every stored event is decoded again as it is encoded and compared type for type (shared.codec);
# services the e2e tests start inherit it.
os.environ.setdefault("IRONARMY_CHECK_CODEC", "1")

REPO = Path(__file__).resolve().parents[1]
KAFKA = os.environ.get("IRONARMY_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture(scope="session")
async def kafka_bootstrap() -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 15)
        await admin.list_topics()
    except Exception as error:
        pytest.fail(f"no Kafka broker at {KAFKA} ({error!r}): run deploy/kafka/kafka.sh up")
    finally:
        await admin.close()
    return KAFKA


@pytest.fixture
def topic_prefix() -> str:
    """Topics of their own for every test, so tests never read each other's events."""
    return f"t{uuid.uuid4().hex[:10]}"


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG["host"],
        port=PG["port"],
        user=PG["user"],
        password=PG["password"],
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )


@pytest.fixture
def postgres_dbname() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        with _admin_connection() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.fail(
            f"no PostgreSQL at {PG['host']}:{PG['port']} ({error}): run deploy/postgres/postgres.sh up"
        )
    yield name
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The event store's environment: each test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_env(tmp_path / "store.sqlite")
    else:
        dbname = request.getfixturevalue("postgres_dbname")
        yield postgres_env(dbname)


class Broker:
    """A Kafka broker of the fault tests' own (port 29092), so killing it disturbs no other test."""

    def __init__(self) -> None:
        self.port = 29092
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.port + 1),
            "KAFKA_DATA_DIR": f"/tmp/ironarmy-kafka-faults-{self.port}",
        }

    def run(self, command: str) -> None:
        subprocess.run(
            [str(REPO / "deploy/kafka/kafka.sh"), command], check=True, env=self.env, capture_output=True
        )


@pytest.fixture(scope="session")
def fault_broker() -> Iterator[Broker]:
    broker = Broker()
    broker.run("stop")  # one an interrupted session left behind, found by its pid file
    shutil.rmtree(broker.env["KAFKA_DATA_DIR"], ignore_errors=True)
    broker.run("up")
    yield broker
    broker.run("stop")

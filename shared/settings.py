"""Typed settings every service shares, read from the environment (IRONARMY_*)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-secret-change-me-0123456789"
AGGREGATE_CACHE_SIZE = 5000  # aggregates a service keeps in memory
RELAY_READERS = 2  # processes that read a relay's backlog side by side
REPLAY_PROCESSES = 3  # processes an ops' rebuild applies a large topic in: one a partition of three


class ServiceSettings(BaseSettings):
    """Settings of one service process. One setting switches the store, one points at Kafka."""

    model_config = SettingsConfigDict(env_prefix="IRONARMY_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"

    # Event store: SQLite files under data_dir by default; PostgreSQL in production.
    store: Literal["sqlite", "postgres", "memory"] = "sqlite"
    data_dir: Path = Path("var/data")
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5433
    postgres_user: str = "ironarmy"
    postgres_password: SecretStr = SecretStr("ironarmy")
    postgres_dbname: str = "ironarmy"
    postgres_pool_size: int = Field(default=4, ge=1)
    # How long to wait for a pooled connection; the library tries 10 times before a 503.
    postgres_connect_timeout: int = Field(default=2, ge=1)
    # Ask the server (a round trip) before every use of a pooled connection? Not needed: every
    # store call is retried, and a connection the server dropped fails its first statement,
    # before anything is written, and is replaced (tests/integration/test_store_outage.py).
    postgres_pre_ping: bool = False

    # Recently used aggregates stay in memory as this process saved them: a service's store has
    # one writing process. A process reading a store that another one writes (`ironarmy replay`
    # opening a live store) brings each cached aggregate up to date from the store on every read.
    aggregate_cache_size: int = Field(default=AGGREGATE_CACHE_SIZE, ge=0)
    aggregate_cache_fastforward: bool = False

    # Kafka: a local broker by default; any cluster by changing bootstrap servers.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field(default="ironarmy", pattern=r"^[A-Za-z0-9._-]+$")
    topic_partitions: int = Field(default=3, ge=1)
    relay_batch_size: int = Field(default=500, ge=1)
    relay_idle_seconds: float = Field(default=0.2, gt=0)
    # While busy, the relay records its position at most this often (0: after every batch).
    relay_record_seconds: float = Field(default=1.0, ge=0)
    # Under a trickle of saves, a relay round starts at most this long after the last one began.
    relay_linger_seconds: float = Field(default=0.005, ge=0)
    # Where the relay reads and encodes a backlog: in a process of its own (the second core; not
    # for the in-memory store, which no other process can open) or in a worker thread, as it
    # always reads a trickle.
    relay_reader: Literal["process", "thread"] = "process"
    # How many such processes read a backlog's batches side by side (each holds a connection).
    relay_readers: int = Field(default=RELAY_READERS, ge=1, le=16)
    consumer_batch_size: int = Field(default=500, ge=1)
    # How many processes an ops' rebuild from the topics applies their partitions in, a share
    # each, side by side (shared.replay_processes): one a partition, on a store they can open.
    replay_processes: int = Field(default=REPLAY_PROCESSES, ge=1, le=64)

    jwt_secret: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    jwt_issuer: str = "ironarmy"

    # A movable clock lets ops and tests simulate weeks in seconds; never in production.
    clock: Literal["system", "movable"] = "system"
    clock_start: datetime | None = None
    scheduler_tick_seconds: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _refuse_insecure_outside_development(self) -> Self:
        if self.environment == "production":
            if self.jwt_secret.get_secret_value() == DEVELOPMENT_SECRET:
                raise ValueError("IRONARMY_JWT_SECRET must be set outside development")
            if self.clock == "movable":
                raise ValueError("IRONARMY_CLOCK=movable is refused in production")
        if len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("IRONARMY_JWT_SECRET must be at least 32 characters")
        return self

    def topic(self, service: str) -> str:
        return f"{self.topic_prefix}.{service}"

    def eventsourcing_env(self, service: str) -> dict[str, str]:
        """The eventsourcing library's environment for one service's own store."""
        return {
            **self._store_env(service),
            **cache_env(self.aggregate_cache_size, fastforward=self.aggregate_cache_fastforward),
        }

    def relay_reader_env(self, service: str) -> dict[str, str] | None:
        """The store's environment for the relay's reader process (one connection: it reads a
        batch at a time), or None when the relay reads in a thread."""
        if self.relay_reader == "thread" or self.store == "memory":
            return None
        env = self._store_env(service)
        if self.store == "postgres":
            env["POSTGRES_POOL_SIZE"] = "1"
        return env

    def _store_env(self, service: str) -> dict[str, str]:
        if self.store == "memory":
            return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
        if self.store == "sqlite":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / f"{service}.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": self.postgres_host,
            "POSTGRES_PORT": str(self.postgres_port),
            "POSTGRES_USER": self.postgres_user,
            "POSTGRES_PASSWORD": self.postgres_password.get_secret_value(),
            "POSTGRES_DBNAME": self.postgres_dbname,
            "POSTGRES_POOL_SIZE": str(self.postgres_pool_size),
            "POSTGRES_CONNECT_TIMEOUT": str(self.postgres_connect_timeout),
            "POSTGRES_PRE_PING": "y" if self.postgres_pre_ping else "n",
            "CREATE_TABLE": "y",
        }


def cache_env(size: int, *, fastforward: bool = False) -> dict[str, str]:
    """The library's aggregate cache: up to `size` aggregates (0: no limit). Without fast-forward
    a read from the cache asks the store nothing (shared.application keeps in it what this
    process saved); with it, every read asks the store for newer events, for a store that another
    process writes."""
    return {"AGGREGATE_CACHE_MAXSIZE": str(size), "AGGREGATE_CACHE_FASTFORWARD": "y" if fastforward else "n"}

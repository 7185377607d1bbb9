"""What a service is made of, and the one place that wires it: store, clock, auth, relay,
consumers and scheduler. Each service's bootstrap.py hands a ServiceSpec to `build_service`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from eventsourcing.persistence import Recording
from fastapi import APIRouter

from shared.application import ServiceApplication
from shared.auth import TokenAuthority
from shared.clock import Clock, MovableClock, SystemClock
from shared.consumer import ExactlyOnceConsumer, Handler
from shared.metrics import Metrics
from shared.persistence import GroupCommit
from shared.relay import OutboxRelay, ReaderProcesses, ReaderSpec, Translator
from shared.scheduler import ScheduledJob, Scheduler
from shared.settings import ServiceSettings

A = TypeVar("A", bound=ServiceApplication)


class BackgroundLoop(Protocol):
    async def run(self) -> None: ...
    async def stop(self) -> None: ...


def _no_handlers(_: Any) -> Mapping[str, Handler]:
    return {}


def _no_jobs(_: Any, __: Any) -> Sequence[ScheduledJob]:
    return ()


@dataclass(frozen=True)
class ServiceSpec(Generic[A]):
    """Everything that makes one service different from the others."""

    name: str
    make_application: Callable[[ServiceSettings, dict[str, str]], A]
    translate: Translator
    routers: Sequence[APIRouter]
    settings_class: type[ServiceSettings] = ServiceSettings
    consumes: Sequence[str] = ()  # names of the services whose topics it reads
    handlers: Callable[[A], Mapping[str, Handler]] = _no_handlers
    jobs: Callable[[A, ServiceSettings], Sequence[ScheduledJob]] = _no_jobs


@dataclass
class ServiceContext(Generic[A]):
    """One running service: what its routes and background loops share."""

    spec: ServiceSpec[A]
    settings: ServiceSettings
    application: A
    clock: Clock
    tokens: TokenAuthority
    metrics: Metrics
    relay: OutboxRelay
    consumers: list[ExactlyOnceConsumer]
    scheduler: Scheduler
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def loops(self) -> list[BackgroundLoop]:
        return [self.relay, *self.consumers, self.scheduler]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def hand_over(recordings: list[Recording[UUID]]) -> None:
            loop.call_soon_threadsafe(self.relay.hand_over, recordings)

        self.application.on_recorded.append(hand_over)
        await asyncio.to_thread(self.application.catch_up)
        self._tasks = [asyncio.create_task(background.run()) for background in self.loops]

    async def stop(self) -> None:
        for background in self.loops:
            await background.stop()
        if self._tasks:
            # Loops stop at their next tick; one still connecting to Kafka is cancelled.
            _, pending = await asyncio.wait(self._tasks, timeout=2)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        self.application.on_recorded.clear()
        self.application.close()

    @property
    def kafka_connected(self) -> bool:
        return self.relay.connected and all(c.connected for c in self.consumers)

    @property
    def failures(self) -> list[str]:
        """Unexpected errors the relay or consumers are retrying (bugs, not outages)."""
        return [f for f in (self.relay.failure, *(c.failure for c in self.consumers)) if f]


def make_clock(settings: ServiceSettings) -> Clock:
    if settings.clock == "movable":
        return MovableClock(settings.clock_start)
    return SystemClock()


def build_service(
    spec: ServiceSpec[A], settings: ServiceSettings, clock: Clock | None = None
) -> ServiceContext[A]:
    clock = clock or make_clock(settings)
    application = spec.make_application(settings, settings.eventsourcing_env(spec.name))
    metrics = Metrics(spec.name)
    if isinstance(application.recorder, GroupCommit):
        application.recorder.on_commit = metrics.store_commit_saves.observe
    reader_env = settings.relay_reader_env(spec.name)
    reader = None
    if reader_env is not None:
        reader_spec = ReaderSpec(
            spec.make_application, (settings, reader_env), spec.translate, settings.relay_batch_size
        )
        reader = ReaderProcesses(reader_spec, settings.relay_readers)
    relay = OutboxRelay(
        application,
        spec.translate,
        topic=settings.topic(spec.name),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        partitions=settings.topic_partitions,
        metrics=metrics,
        batch_size=settings.relay_batch_size,
        idle_seconds=settings.relay_idle_seconds,
        record_seconds=settings.relay_record_seconds,
        linger_seconds=settings.relay_linger_seconds,
        reader=reader,
    )
    consumers = []
    if spec.consumes:
        consumers.append(
            ExactlyOnceConsumer(
                application,
                spec.handlers(application),
                group_id=f"{settings.topic_prefix}.{spec.name}",
                topics=[settings.topic(source) for source in spec.consumes],
                bootstrap_servers=settings.kafka_bootstrap_servers,
                partitions=settings.topic_partitions,
                metrics=metrics,
                batch_size=settings.consumer_batch_size,
            )
        )
    scheduler = Scheduler(clock, list(spec.jobs(application, settings)), settings.scheduler_tick_seconds)
    return ServiceContext(
        spec=spec,
        settings=settings,
        application=application,
        clock=clock,
        tokens=TokenAuthority(settings.jwt_secret.get_secret_value(), settings.jwt_issuer),
        metrics=metrics,
        relay=relay,
        consumers=consumers,
        scheduler=scheduler,
    )

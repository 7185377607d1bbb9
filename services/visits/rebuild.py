"""Rebuilding the visits service from the topics, from offset 0 (ops' replay).

Into a fresh store (and so fresh read models): first the leads topic, up to where it ends when the
rebuild starts, builds every lead's ownership timeline; then the visits topic is replayed through
`VisitsApplication.replay_handlers`: each fact a person stated (a visit, a correction, a decision,
a requested look-back, a weekly summary) is applied again with its original actor and time, and
the detection rules derive the flags afresh. Because a visit is judged by what the leads topic
had said by the time it was recorded, the rebuilt flags are the same flags, with the same ids
and evidence; the derived events on the topic (VisitFlagged, ...) are checked against them and
any difference is reported. Run it with the same policy the service ran with.

    IRONARMY_DATA_DIR=var/rebuild python -m services.visits.rebuild
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.visits.application import VisitsApplication
from services.visits.config import VisitsSettings
from shared.application import ServiceApplication
from shared.consumer import ExactlyOnceConsumer, partition_ends
from shared.kafka import ensure_topics
from shared.metrics import Metrics
from shared.replay_processes import SPLIT_FROM, ReplayProcesses, shareable_store


class _RebuildConsumer(ExactlyOnceConsumer):
    """Parks nothing on the live dead-letter topic: a message a rebuild cannot apply is a
    divergence of the rebuild, not the live service's poison message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parked: list[str] = []

    async def _dead_letter(self, tp: TopicPartition, message: Any, reason: str) -> None:
        self.parked.append(f"{tp.topic}[{tp.partition}]@{message.offset} could not be applied: {reason}")


@dataclass
class RebuildReport:
    group_id: str
    positions: dict[str, dict[int, int]] = field(default_factory=dict)  # topic → partition → end
    flags: int = 0
    divergences: list[str] = field(default_factory=list)
    processes: int = 1  # how many applied the topics' partitions side by side


async def end_offsets(bootstrap_servers: str, topic: str, partitions: int) -> dict[int, int]:
    """Where each partition of the topic ends now (the next offset to be written)."""
    await ensure_topics(bootstrap_servers, [topic], partitions)
    # Subscribed (without a group), so the client holds the topic's metadata.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp.partition: offset for tp, offset in (await partition_ends(consumer, [topic])).items()}
    finally:
        await consumer.stop()


def _rebuild_consumer(
    application: VisitsApplication,
    *,
    handlers: str,
    topic: str,
    group_id: str,
    bootstrap_servers: str,
    partitions: int,
) -> _RebuildConsumer:
    """The rebuild's consumer of one topic, applying with the application's `handlers` (the name
    of the method that gives them: a process of a split rebuild makes its own)."""
    return _RebuildConsumer(
        application,
        getattr(application, handlers)(),
        group_id=group_id,
        topics=[topic],
        bootstrap_servers=bootstrap_servers,
        partitions=partitions,
        metrics=Metrics("visits-rebuild"),
    )


def _what_diverged(application: ServiceApplication, consumer: ExactlyOnceConsumer) -> list[str]:
    """What a topic's replay could not apply, and what the rules did not derive again (taken from
    the application: the next topic's replay reports its own)."""
    assert isinstance(application, VisitsApplication) and isinstance(consumer, _RebuildConsumer)
    divergences = [*consumer.parked, *application.replay_divergences]
    application.replay_divergences.clear()
    return divergences


async def rebuild_from_topics(
    application: VisitsApplication,
    *,
    bootstrap_servers: str,
    topic_prefix: str,
    group_id: str,
    partitions: int = 3,
    processes: int = 1,
    split_from: int = SPLIT_FROM,
    timeout: float = 300.0,
) -> RebuildReport:
    """Fill a fresh visits store from the leads topic, then the visits topic, both from offset 0.

    `processes`: how many processes apply a topic's partitions, a share each, side by side
    (`shared.replay_processes`), when the store is one they can open and there are `split_from`
    messages or more to apply; else the application applies them all here."""
    if application.recorder.max_notification_id():
        raise ValueError("rebuild into a fresh store: this one already holds events")
    if not shareable_store(application.env):
        processes = 1
    report = RebuildReport(group_id)
    make_application = functools.partial(VisitsApplication, dict(application.env), policy=application.policy)
    steps = ((f"{topic_prefix}.leads", "handlers"), (f"{topic_prefix}.visits", "replay_handlers"))
    async with ReplayProcesses(make_application, processes, split_from=split_from) as replay:
        for topic, handlers in steps:
            make_consumer = functools.partial(
                _rebuild_consumer,
                handlers=handlers,
                topic=topic,
                group_id=group_id,
                bootstrap_servers=bootstrap_servers,
                partitions=partitions,
            )
            try:
                split = await asyncio.wait_for(
                    replay.run_to_end(make_consumer(application), make_consumer, _what_diverged), timeout
                )
            except TimeoutError:
                raise TimeoutError(f"{topic} not replayed to its end after {timeout:.0f}s") from None
            report.positions[topic] = {tp.partition: offset for tp, offset in split.ends.items()}
            report.processes = max(report.processes, split.processes)
            report.divergences.extend(split.notes)
    report.flags = len(application.list_flags(limit=10**9))
    return report


def main() -> None:
    settings = VisitsSettings()
    application = VisitsApplication(settings.eventsourcing_env("visits"), policy=settings.policy)
    try:
        report = asyncio.run(
            rebuild_from_topics(
                application,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topic_prefix=settings.topic_prefix,
                group_id=f"{settings.topic_prefix}.visits.rebuild.{int(time.time())}",
                partitions=settings.topic_partitions,
                processes=settings.replay_processes,
            )
        )
    finally:
        application.close()
    print(f"rebuilt from {report.positions}: {report.flags} flags")
    for divergence in report.divergences:
        print(f"DIVERGES: {divergence}")
    raise SystemExit(1 if report.divergences else 0)


if __name__ == "__main__":
    main()

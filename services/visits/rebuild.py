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
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.visits.application import VisitsApplication
from services.visits.config import VisitsSettings
from shared.consumer import ExactlyOnceConsumer, Handler, partition_ends
from shared.kafka import ensure_topics
from shared.metrics import Metrics


class _RebuildConsumer(ExactlyOnceConsumer):
    """Parks nothing on the live dead-letter topic: a message a rebuild cannot apply is a
    divergence of the rebuild, not the live service's poison message."""

    def __init__(self, *args: Any, parked: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parked = parked

    async def _dead_letter(self, tp: TopicPartition, message: Any, reason: str) -> None:
        self.parked.append(f"{tp.topic}[{tp.partition}]@{message.offset} could not be applied: {reason}")


@dataclass
class RebuildReport:
    group_id: str
    positions: dict[str, dict[int, int]] = field(default_factory=dict)  # topic → partition → end
    flags: int = 0
    divergences: list[str] = field(default_factory=list)


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


async def _consume_to_end(
    application: VisitsApplication,
    handlers: Mapping[str, Handler],
    *,
    topic: str,
    group_id: str,
    bootstrap_servers: str,
    partitions: int,
    timeout: float,
    parked: list[str],
) -> dict[int, int]:
    consumer = _RebuildConsumer(
        application,
        handlers,
        group_id=group_id,
        topics=[topic],
        bootstrap_servers=bootstrap_servers,
        partitions=partitions,
        metrics=Metrics("visits-rebuild"),
        parked=parked,
    )
    try:
        ends = await asyncio.wait_for(consumer.run_to_end(), timeout)
    except TimeoutError:
        raise TimeoutError(f"{topic} not replayed to its end after {timeout:.0f}s") from None
    return {tp.partition: offset for tp, offset in ends.items()}


async def rebuild_from_topics(
    application: VisitsApplication,
    *,
    bootstrap_servers: str,
    topic_prefix: str,
    group_id: str,
    partitions: int = 3,
    timeout: float = 300.0,
) -> RebuildReport:
    """Fill a fresh visits store from the leads topic, then the visits topic, both from offset 0."""
    if application.recorder.max_notification_id():
        raise ValueError("rebuild into a fresh store: this one already holds events")
    report = RebuildReport(group_id)
    steps: list[tuple[str, Mapping[str, Handler]]] = [
        (f"{topic_prefix}.leads", application.handlers()),
        (f"{topic_prefix}.visits", application.replay_handlers()),
    ]
    for topic, handlers in steps:
        report.positions[topic] = await _consume_to_end(
            application,
            handlers,
            topic=topic,
            group_id=group_id,
            bootstrap_servers=bootstrap_servers,
            partitions=partitions,
            timeout=timeout,
            parked=report.divergences,
        )
    report.flags = len(application.list_flags(limit=10**9))
    report.divergences.extend(application.replay_divergences)
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

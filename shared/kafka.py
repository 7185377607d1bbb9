"""Kafka plumbing shared by the relay and the consumers: clients built one way, topics ensured."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    # Idempotence makes the broker drop a retried batch it already has, and forces acks=all.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=1024 * 1024,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
    )


async def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int) -> None:
    """Create the topics if they are missing (a cluster may also have made them already).

    Asks the controller to create just these topics and reads its answer topic by topic ("already
    exists" is fine). Listing the cluster's topics first would fetch the metadata of every topic
    it holds, which grows with the cluster (~150 ms at 6,000 topics, ~5 ms for this). A refusal
    to create (say, a cluster where only ops may create topics) is fine for a topic that exists."""
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10000)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in wanted]
        )
        refused = refusals(response.to_object())
        if refused:
            existing = set(await admin.list_topics())
            for topic, (code, message) in refused.items():
                if topic not in existing:
                    raise for_code(code)(f"cannot create topic {topic}: {message or 'refused'}")
    finally:
        await admin.close()


def refusals(answer: Mapping[str, Any]) -> dict[str, tuple[int, str | None]]:
    """The topics a CreateTopics answer refused other than as already existing: topic → (error
    code, the broker's message)."""
    refused: dict[str, tuple[int, str | None]] = {}
    for result in answer["topic_errors"]:
        code = result["error_code"]
        if code not in (0, TopicAlreadyExistsError.errno):
            refused[result["topic"]] = (code, result.get("error_message"))
    return refused

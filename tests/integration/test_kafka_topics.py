"""Topics a service needs are made with the partitions it asks for, and never remade: what the
cluster already holds is left as it is."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import InvalidPartitionsError

from shared.kafka import ensure_topics, refusals


async def partitions_of(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


async def test_missing_topics_are_made_and_existing_ones_left_as_they_are(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    old, new = f"{topic_prefix}.old", f"{topic_prefix}.new"
    await ensure_topics(kafka_bootstrap, [old], 2)

    await ensure_topics(kafka_bootstrap, [old, new, new], 3)  # twice in the list: asked once
    await ensure_topics(kafka_bootstrap, [new], 3)  # again: nothing to do
    await ensure_topics(kafka_bootstrap, [], 3)

    assert await partitions_of(kafka_bootstrap, [old, new]) == {old: 2, new: 3}


async def test_a_topic_the_broker_will_not_make_is_an_error_naming_it(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    with pytest.raises(InvalidPartitionsError, match=f"cannot create topic {topic_prefix}.bad"):
        await ensure_topics(kafka_bootstrap, [f"{topic_prefix}.bad"], 0)
    # A topic that exists is left as it is, whatever is asked of it.
    await ensure_topics(kafka_bootstrap, [f"{topic_prefix}.good"], 1)
    await ensure_topics(kafka_bootstrap, [f"{topic_prefix}.good"], 0)


def test_only_refusals_other_than_already_existing_count() -> None:
    answer = {
        "throttle_time_ms": 0,
        "topic_errors": [
            {"topic": "made", "error_code": 0, "error_message": None},
            {"topic": "there", "error_code": 36, "error_message": "Topic 'there' already exists."},
            {"topic": "locked", "error_code": 29, "error_message": "Authorization failed."},
            {"topic": "bad", "error_code": 37, "error_message": None},
        ],
    }
    assert refusals(answer) == {"locked": (29, "Authorization failed."), "bad": (37, None)}

"""Kafka plumbing shared by the relay and the consumers: clients built one way, topics ensured."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.partitioner import murmur2

if TYPE_CHECKING:
    import numpy as np

# Fewer keys than this are hashed one by one: numpy's fixed cost per call (~20 µs) is about
# that of hashing five keys in Python.
VECTOR_MIN_KEYS = 16
_M = 0x5BD1E995


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


def default_partitions(keys: Sequence[bytes], partitions: Sequence[int]) -> list[int]:
    """The partition the default partitioner (the Java client's, and aiokafka's) gives each key,
    of `partitions` sorted by id: murmur2 of the key, its sign bit cleared, modulo their number.

    aiokafka hashes in Python, ~4 µs a key; here a batch is hashed at once (~0.15 µs a key in
    thousands), so a relay catching up on events of many aggregates (a day's distribution: one
    lead each) does not spend its process's time hashing keys one by one."""
    hashes = [murmur2(key) for key in keys] if len(keys) < VECTOR_MIN_KEYS else murmur2_many(keys)
    count = len(partitions)
    return [partitions[(h & 0x7FFFFFFF) % count] for h in hashes]


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """Kafka's murmur2 of each key (as `aiokafka.partitioner.murmur2`, unsigned), the keys of each
    length hashed together: in 32-bit unsigned arithmetic, which wraps as the Java int's does.
    numpy is imported here, when first needed: most processes (the CLI, the relay's reader
    processes, a service that publishes a few events at a time) never hash a batch (~40 ms and
    ~13 MB a process)."""
    import numpy as np

    hashes = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(index)
    for length, indexes in by_length.items():
        hashes[indexes] = _murmur2_of_length(b"".join([keys[i] for i in indexes]), len(indexes), length)
    return hashes.tolist()


def _murmur2_of_length(joined: bytes, count: int, length: int) -> np.ndarray[Any, np.dtype[np.uint32]]:
    import numpy as np

    m = np.uint32(_M)
    data = np.frombuffer(joined, dtype=np.uint8).reshape(count, length)
    h = np.full(count, (0x9747B28C ^ length) & 0xFFFFFFFF, dtype=np.uint32)
    whole = length // 4
    if whole:
        words = np.ascontiguousarray(data[:, : whole * 4]).view("<u4")
        for column in range(whole):
            k = words[:, column] * m
            k ^= k >> np.uint32(24)
            k *= m
            h *= m
            h ^= k
    tail = length & ~3
    extra = length % 4
    if extra >= 3:
        h ^= data[:, tail + 2].astype(np.uint32) << np.uint32(16)
    if extra >= 2:
        h ^= data[:, tail + 1].astype(np.uint32) << np.uint32(8)
    if extra >= 1:
        h ^= data[:, tail].astype(np.uint32)
        h *= m
    h ^= h >> np.uint32(13)
    h *= m
    h ^= h >> np.uint32(15)
    return h

"""The relay's partitioner: the same partition for every key as the default partitioner that any
Kafka producer uses (aiokafka's, after the Java client's), hashed a batch at a time."""

from __future__ import annotations

import random
import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2

from shared import relay as relay_module
from shared.kafka import VECTOR_MIN_KEYS, default_partitions, murmur2_many
from shared.metrics import Metrics
from shared.relay import OutboxRelay
from tests.support.probe import ProbeApplication, translate


def keys_of_every_length() -> list[bytes]:
    """Keys of lengths 0 to 40 (every remainder modulo four), bytes above 0x7f among them (a
    signed byte in the Java client), and aggregate ids as the relay sends them."""
    rng = random.Random(7)
    keys = [bytes(rng.randrange(256) for _ in range(length)) for length in range(41) for _ in range(3)]
    keys += [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(200)]
    keys += [b"\xff" * 9, b"\x80\x00\x7f", b"rep-00042"]
    return keys


def test_a_batch_hashes_as_the_java_client_does_key_by_key() -> None:
    keys = keys_of_every_length()
    assert murmur2_many(keys) == [murmur2(key) & 0xFFFFFFFF for key in keys]


@pytest.mark.parametrize("count", [1, 2, 3, 7, 12])
def test_every_key_gets_the_default_partitioners_partition(count: int) -> None:
    partitions = list(range(count))
    keys = keys_of_every_length()
    expected = [DefaultPartitioner()(key, partitions, partitions) for key in keys]
    assert default_partitions(keys, partitions) == expected  # hashed together
    few = keys[: VECTOR_MIN_KEYS - 1]
    assert default_partitions(few, partitions) == expected[: len(few)]  # one by one


def test_a_batch_of_one_length_is_one_run_of_the_same_hashes() -> None:
    keys = [str(uuid.uuid4()).encode() for _ in range(5000)]
    assert murmur2_many(keys) == [murmur2(key) & 0xFFFFFFFF for key in keys]


def test_the_relay_remembers_partitions_until_full_then_starts_again_from_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(relay_module, "PARTITION_CACHE_SIZE", 3)
    relay = OutboxRelay(
        ProbeApplication(), translate, topic="t", bootstrap_servers="-", partitions=3, metrics=Metrics("t")
    )
    partitions = [0, 1, 2]

    def expected(keys: list[bytes]) -> list[int]:
        return [DefaultPartitioner()(key, partitions, partitions) for key in keys]

    assert relay._partitions([b"a", b"b", b"a"], partitions) == expected([b"a", b"b", b"a"])
    # Two new keys beside a remembered one overflow the three remembered: all of them again.
    batch = [b"a", b"c", b"d"]
    assert relay._partitions(batch, partitions) == expected(batch)
    assert relay._partitions([b"d", b"e"], partitions) == expected([b"d", b"e"])

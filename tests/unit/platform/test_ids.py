"""Ids derived from natural keys: the fast forms give the very ids uuid5 gives."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import pytest

from shared.domain import stable_id, uuid5_text
from shared.events.catalog import event_id_for, event_id_text


@pytest.mark.parametrize(
    "parts", [("event", uuid4(), 1), ("lead", "c-7", 12_345), ("x",), ("", 0), ("é", "中供")]
)
def test_an_id_as_text_is_the_uuid5_of_its_key(parts: tuple[object, ...]) -> None:
    expected = uuid5(uuid5(NAMESPACE_URL, "urn:ironarmy"), "/".join(str(p) for p in parts))
    assert stable_id(*parts) == expected
    assert uuid5_text("/".join(str(p) for p in parts).encode()) == str(expected)


def test_an_event_id_is_the_uuid5_of_its_stream_and_version() -> None:
    for version in range(1, 200):  # enough digests for every value of the variant's hex digit
        aggregate_id = uuid4()
        assert event_id_text(aggregate_id, version) == str(stable_id("event", aggregate_id, version))


def test_an_event_id_is_the_same_as_text_and_as_uuid() -> None:
    aggregate_id = uuid4()
    assert event_id_for(aggregate_id, 3) == UUID(event_id_text(aggregate_id, 3))
    assert event_id_for(str(aggregate_id), 3) == event_id_for(aggregate_id, 3)
    assert event_id_for(aggregate_id, 3) != event_id_for(aggregate_id, 4)


def test_equal_keys_of_other_types_are_other_ids() -> None:
    assert stable_id("v", 1) == stable_id("v", "1")  # the same text
    assert stable_id("v", True) != stable_id("v", 1)  # "True" is not "1", cache or not

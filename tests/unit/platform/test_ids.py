"""Ids derived from natural keys: the fast forms give the very ids uuid5 gives."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import pytest

from shared.domain import stable_id, uuid5_text
from shared.events.catalog import event_id_for, event_id_text
from shared.persistence import uuid_from_hex


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


def test_a_stored_id_reads_as_the_uuid_its_text_is() -> None:
    """SQLite holds ids as 32 hex digits; the fast reading accepts and refuses what `UUID` does."""
    text = uuid4().hex
    texts = [
        *(uuid4().hex for _ in range(50)),
        text.upper(),
        "0" * 32,
        "f" * 32,
        "0x" + text[2:],  # `UUID` reads these as numbers too
        "+" + text[1:],
        text[:10] + "_" + text[11:],
        "-" + text[1:],  # refused: no UUID is negative
        text[:31] + "g",
        text[:31],
        str(UUID(text)),
        "{" + text[:30] + "}",
    ]

    def read(parse: object, value: str) -> object:
        try:
            return parse(value)  # type: ignore[operator]
        except ValueError:
            return ValueError

    for value in texts:
        expected, fast = read(UUID, value), read(uuid_from_hex, value)
        assert fast == expected, value
        if isinstance(fast, UUID):
            assert type(fast) is UUID and str(fast) == str(expected) and hash(fast) == hash(expected)
            assert fast.is_safe == expected.is_safe  # type: ignore[union-attr]

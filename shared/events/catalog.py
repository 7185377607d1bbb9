"""Every public event by name and version: how envelopes are made, decoded and checked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import ValidationError

from shared.domain import uuid5_text
from shared.events import leads, reviews, rotation, visits
from shared.events.base import Envelope, IntegrationEvent

ALL_EVENTS: tuple[type[IntegrationEvent], ...] = (
    *leads.EVENTS,
    *visits.EVENTS,
    *reviews.EVENTS,
    *rotation.EVENTS,
)


def _index(events: Iterable[type[IntegrationEvent]]) -> dict[tuple[str, int], type[IntegrationEvent]]:
    index: dict[tuple[str, int], type[IntegrationEvent]] = {}
    for model in events:
        key = (model.event_type, model.schema_version)
        if key in index:
            raise RuntimeError(f"event {key} is defined twice")
        index[key] = model
    return index


EVENT_MODELS = _index(ALL_EVENTS)


def event_id_for(aggregate_id: UUID | str, version: int) -> UUID:
    """One stored event, one event id: a relay that publishes it twice publishes the same id."""
    return UUID(event_id_text(aggregate_id, version))


def event_id_text(aggregate_id: UUID | str, version: int) -> str:
    """The event id as text (what the envelope carries): `str(stable_id("event", aggregate_id,
    version))`, made without a UUID object for the relay, which makes one for every event."""
    return uuid5_text(f"event/{aggregate_id}/{version}".encode())


@dataclass(frozen=True)
class Published:
    """What a service's translator says about one stored domain event."""

    event: IntegrationEvent
    aggregate_type: str


def envelope_bytes(
    published: Published,
    *,
    aggregate_id: UUID | str,
    aggregate_version: int,
    meta: dict[str, Any],
    recorded_at: datetime,
) -> bytes:
    """The envelope on the wire, built straight to JSON: the relay's hot path (no model round trip)."""
    event = published.event
    return orjson.dumps(
        {
            "event_id": event_id_text(aggregate_id, aggregate_version),
            "event_type": event.event_type,
            "schema_version": event.schema_version,
            "aggregate_type": published.aggregate_type,
            "aggregate_id": str(aggregate_id),
            "aggregate_version": aggregate_version,
            "occurred_at": meta["at"],
            "recorded_at": recorded_at,
            "actor_id": meta["actor_id"],
            "actor_role": meta["actor_role"],
            "correlation_id": meta.get("correlation_id", ""),
            "causation_id": meta.get("causation_id", ""),
            # The payload's JSON straight from pydantic's serializer, embedded as it is.
            "payload": orjson.Fragment(event.__pydantic_serializer__.to_json(event)),
        },
        option=orjson.OPT_UTC_Z,
    )


def make_envelope(
    published: Published,
    *,
    aggregate_id: UUID | str,
    aggregate_version: int,
    meta: dict[str, Any],
    recorded_at: datetime,
) -> Envelope:
    """The same envelope as a model, checked against the envelope schema."""
    raw = envelope_bytes(
        published,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        meta=meta,
        recorded_at=recorded_at,
    )
    return Envelope.model_validate_json(raw)


class UndecodableEvent(ValueError):
    """A message that is not an envelope we can read: parked in the dead-letter topic."""


def decode(raw: bytes) -> tuple[Envelope, IntegrationEvent]:
    """Bytes off a topic → the envelope and its typed payload, or UndecodableEvent saying why."""
    try:
        envelope = Envelope.model_validate_json(raw)  # parsed and checked in one pass, in Rust
    except ValidationError as error:
        raise UndecodableEvent(f"not an event envelope: {error}") from error
    model = EVENT_MODELS.get((envelope.event_type, envelope.schema_version))
    if model is None:
        known = sorted(v for (t, v) in EVENT_MODELS if t == envelope.event_type)
        why = f"known versions {known}" if known else "unknown event type"
        raise UndecodableEvent(
            f"{envelope.event_type} v{envelope.schema_version} cannot be read here ({why})"
        )
    try:
        payload = model.model_validate(envelope.payload)
    except ValidationError as error:
        raise UndecodableEvent(f"{envelope.event_type} payload invalid: {error}") from error
    return envelope, payload

"""Public event contracts: schema files follow the models, and envelopes round-trip."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from shared.events.base import IntegrationEvent
from shared.events.catalog import (
    ALL_EVENTS,
    Published,
    UndecodableEvent,
    decode,
    envelope_bytes,
    make_envelope,
)
from shared.events.leads import LeadAssigned, LeadRegistered
from shared.events.schemas import stale_files


def test_every_schema_file_matches_its_model() -> None:
    stale = stale_files()
    assert stale == [], f"run `python -m shared.events.schemas` and commit docs/events: {stale}"


def test_the_named_events_of_the_design_are_public() -> None:
    names = {model.event_type for model in ALL_EVENTS}
    assert {"LeadAssigned", "LeadReclaimed", "VisitLogged", "ManagerRotated"} <= names


def test_an_envelope_round_trips_through_bytes() -> None:
    at = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    lead_id = uuid4()
    event = LeadAssigned(
        lead_id=str(lead_id), rep_id="rep-7", region="hangzhou", assigned_at=at, follow_up_deadline=at
    )
    envelope = make_envelope(
        Published(event, "Lead"),
        aggregate_id=lead_id,
        aggregate_version=3,
        meta={
            "actor_id": "mgr-1",
            "actor_role": "manager",
            "at": at,
            "correlation_id": "c",
            "causation_id": "r",
        },
        recorded_at=at,
    )
    decoded_envelope, decoded_event = decode(envelope.to_bytes())
    assert decoded_envelope == envelope
    assert decoded_event == event


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xff\xfe", "not an event envelope"),
        (b'{"event_type": "LeadAssigned"}', "not an event envelope"),
    ],
)
def test_what_is_not_an_envelope_is_refused_with_the_reason(raw: bytes, why: str) -> None:
    with pytest.raises(UndecodableEvent, match=why):
        decode(raw)


AT = datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "event",
    [
        LeadAssigned(lead_id="l-1", rep_id="r", region="x", assigned_at=AT, follow_up_deadline=AT),
        LeadRegistered(
            lead_id="l-2",
            company_name='杭州 "Quotes" & Co\n',
            company_key="hz-quotes",
            region="hangzhou",
            address_line="1 Wensan Road",
            city="Hangzhou",
            customer_lat=30.274100000000001,
            customer_lon=-1e-7,
            score=1e16,
            source="fair",
            registered_at=AT,
        ),
    ],
)
def test_the_relays_fast_envelope_is_byte_for_byte_the_models_envelope(event: IntegrationEvent) -> None:
    fields = {
        "aggregate_id": uuid4(),
        "aggregate_version": 2,
        "recorded_at": AT,
        "meta": {"actor_id": "a", "actor_role": "rep", "at": AT, "correlation_id": "c", "causation_id": "d"},
    }
    assert (
        envelope_bytes(Published(event, "Lead"), **fields)
        == make_envelope(Published(event, "Lead"), **fields).to_bytes()
    )

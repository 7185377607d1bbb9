"""What the reviews service publishes: every stored event's public form, readable without our code."""

from __future__ import annotations

from typing import Any

from services.reviews.application import ReviewsApplication
from services.reviews.domain.values import EvidenceLink, ValueAdjustment
from services.reviews.integration import to_integration
from shared.events import reviews as public
from shared.events.catalog import ALL_EVENTS, Published, decode, make_envelope
from tests.unit.reviews.given import (
    Topics,
    evidence,
    fabrication_confirmed,
    hr,
    lead_converted,
    manager,
    meta,
    rep,
)


def published(app: ReviewsApplication) -> list[tuple[Any, Published | None]]:
    stored = app.recorder.select_notifications(0, 1000)
    events = [app.mapper.to_domain_event(n) for n in stored]
    return [(e, to_integration(e)) for e in events]


def full_quarter(app: ReviewsApplication) -> None:
    topics = Topics(app)
    topics.reps("hangzhou", "rep-1")
    topics.deliver(app.on_lead_converted, lead_converted("lead-1", "rep-1"), source="lead-1")
    review_id = app.open_review("rep-1", "2026Q1", hr())
    app.self_assess(review_id, evidence(4, 4, 4, 4, 4, 4), rep("rep-1"))
    app.assess_values(review_id, evidence(3, 3, 3, 3, 3, 3), manager(), caller_region="hangzhou")
    app.rate_performance(review_id, 4, "solid quarter, one big deal", manager(), caller_region="hangzhou")
    app.calibrate(review_id, [ValueAdjustment("passion", 4)], None, "passion well documented", hr())
    app.complete_review(review_id, hr())
    app.correct_review(review_id, [], 5, "rating raised on appeal", hr())
    topics.deliver(
        app.on_fabrication_confirmed,
        fabrication_confirmed("rep-1", "visit-7", "hangzhou"),
        source="flag-7",
        actor=("qc-1", "qc"),
    )
    cases = app.red_line_cases()
    app.decide_red_line_case(cases[0].case_id, "confirmed", "nobody came that day", hr())
    links = [EvidenceLink("document", "receipt-42.pdf")]
    app.open_red_line_case("rep-1", "advance_payment", links, "paid the customer's fee", meta("qc-1", "qc"))


def test_every_public_event_of_a_quarter_round_trips_through_its_envelope() -> None:
    app = ReviewsApplication()
    full_quarter(app)
    seen: dict[str, Any] = {}
    for domain_event, out in published(app):
        if out is None:
            continue
        envelope = make_envelope(
            out,
            aggregate_id=domain_event.originator_id,
            aggregate_version=domain_event.originator_version,
            meta=domain_event.meta.as_dict(),
            recorded_at=domain_event.timestamp,
        )
        decoded_envelope, decoded = decode(envelope.to_bytes())
        assert decoded == out.event and decoded_envelope == envelope
        seen[out.event.event_type] = out.event

    assert set(seen) == {model.event_type for model in public.EVENTS}
    completed = seen["ReviewCompleted"]
    assert isinstance(completed, public.ReviewCompleted)
    assert completed.rep_id == "rep-1" and completed.quarter == "2026Q1" and completed.conversions == 1
    assert completed.outcome.value_scores["passion"] == 4
    marked = seen["ReviewRedLineMarked"]
    assert isinstance(marked, public.ReviewRedLineMarked)
    assert marked.outcome is not None and marked.outcome.category == "red_line"
    opened = seen["RedLineCaseOpened"]
    assert isinstance(opened, public.RedLineCaseOpened)
    assert opened.source in ("fabrication_confirmed", "by_hand")
    decided = seen["RedLineCaseDecided"]
    assert isinstance(decided, public.RedLineCaseDecided)
    assert (decided.decision, decided.decided_by, decided.rule_code) == (
        "confirmed",
        "hr-1",
        "fabricated_visit",
    )


def test_reps_results_and_rules_stay_inside_the_service() -> None:
    app = ReviewsApplication()
    full_quarter(app)
    internal = {type(e).__qualname__ for e, out in published(app) if out is None}
    assert internal == {
        "Rep.Registered",
        "QuarterResults.Started",
        "QuarterResults.ConversionCounted",
        "QuarterResults.VisitDiscounted",
        "RedLineRulebook.Seeded",
    }  # and the inbox positions are tracking records, not events


def test_the_reviews_events_are_in_the_catalog() -> None:
    assert set(public.EVENTS) <= set(ALL_EVENTS)
    assert {m.event_type for m in public.EVENTS} >= {
        "ReviewOpened",
        "SelfAssessed",
        "ManagerAssessed",
        "PerformanceRated",
        "ReviewCalibrated",
        "ReviewCompleted",
        "RedLineCaseOpened",
        "RedLineCaseDecided",
    }

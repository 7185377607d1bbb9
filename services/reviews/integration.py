"""What the reviews service tells the others: each stored domain event's public form, or None."""

from __future__ import annotations

from typing import Any

from services.reviews.domain.outcome import Outcome
from services.reviews.domain.red_line import RedLineCase
from services.reviews.domain.review import Review
from services.reviews.domain.values import levels_by_value, value_scores
from shared.events import reviews as public
from shared.events.catalog import Published

REVIEW = "Review"
RED_LINE_CASE = "RedLineCase"


def outcome_payload(outcome: Outcome) -> public.ReviewOutcome:
    return public.ReviewOutcome.model_validate(outcome.as_dict())


def to_integration(domain_event: Any) -> Published | None:
    """Reps, results and the rule list are internal: they map to None."""
    if isinstance(domain_event, Review.Event):
        return _review_event(domain_event)
    if isinstance(domain_event, RedLineCase.Opened):
        return Published(
            public.RedLineCaseOpened(
                case_id=str(domain_event.originator_id),
                rep_id=domain_event.rep_id,
                region=domain_event.region,
                rule_code=domain_event.rule_code,
                rule_name=domain_event.rule_name,
                source=domain_event.source,
                visit_id=domain_event.visit_id,
                evidence=[
                    public.EvidenceRef(kind=link.kind, ref=link.ref, note=link.note)
                    for link in domain_event.evidence
                ],
                description=domain_event.description,
                opened_by=domain_event.meta.actor_id,
                opened_at=domain_event.meta.at,
            ),
            RED_LINE_CASE,
        )
    if isinstance(domain_event, RedLineCase.Decided):
        subject = domain_event.subject
        return Published(
            public.RedLineCaseDecided(
                case_id=str(domain_event.originator_id),
                rep_id=subject.rep_id,
                region=subject.region,
                rule_code=subject.rule_code,
                decision=domain_event.decision,
                reason=domain_event.reason,
                decided_by=domain_event.meta.actor_id,
                decided_at=domain_event.meta.at,
            ),
            RED_LINE_CASE,
        )
    return None


def _review_event(domain_event: Any) -> Published | None:
    review_id = str(domain_event.originator_id)
    meta = domain_event.meta
    event: public.ReviewsEvent
    if isinstance(domain_event, Review.Opened):
        event = public.ReviewOpened(
            review_id=review_id,
            rep_id=domain_event.rep_id,
            region=domain_event.region,
            quarter=domain_event.quarter,
            opened_at=meta.at,
            red_line_case_ids=list(domain_event.red_line_case_ids),
        )
        return Published(event, REVIEW)
    subject = domain_event.subject
    ref = {
        "review_id": review_id,
        "rep_id": subject.rep_id,
        "region": subject.region,
        "quarter": subject.quarter,
    }
    if isinstance(domain_event, Review.SelfAssessed):
        event = public.SelfAssessed(
            **ref, value_scores=value_scores(levels_by_value(domain_event.evidence)), assessed_at=meta.at
        )
    elif isinstance(domain_event, Review.ManagerAssessed):
        event = public.ManagerAssessed(
            **ref,
            manager_id=meta.actor_id,
            value_scores=value_scores(levels_by_value(domain_event.evidence)),
            assessed_at=meta.at,
        )
    elif isinstance(domain_event, Review.PerformanceRated):
        event = public.PerformanceRated(
            **ref,
            manager_id=meta.actor_id,
            rating=domain_event.rating,
            conversions=domain_event.conversions,
            visits=domain_event.visits,
            rated_at=meta.at,
        )
    elif isinstance(domain_event, Review.Calibrated):
        event = public.ReviewCalibrated(
            **ref,
            value_scores=dict(domain_event.value_scores),
            rating=domain_event.calibrated_rating,
            reason=domain_event.reason,
            calibrated_by=meta.actor_id,
            calibrated_at=meta.at,
        )
    elif isinstance(domain_event, Review.Completed):
        event = public.ReviewCompleted(
            **ref,
            conversions=domain_event.conversions,
            visits=domain_event.visits,
            outcome=outcome_payload(domain_event.outcome),
            completed_by=meta.actor_id,
            completed_at=meta.at,
        )
    elif isinstance(domain_event, Review.Corrected):
        event = public.ReviewCorrected(
            **ref,
            reason=domain_event.reason,
            outcome=outcome_payload(domain_event.outcome),
            corrected_by=meta.actor_id,
            corrected_at=meta.at,
        )
    elif isinstance(domain_event, Review.RedLineMarked):
        event = public.ReviewRedLineMarked(
            **ref,
            case_id=domain_event.case_id,
            rule_code=domain_event.rule_code,
            outcome=None if domain_event.outcome is None else outcome_payload(domain_event.outcome),
            marked_at=meta.at,
        )
    else:
        return None
    return Published(event, REVIEW)

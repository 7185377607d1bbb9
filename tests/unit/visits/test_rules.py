"""Each detection rule on its own: given a visit and the rep's history, then this finding or none.
Thresholds are probed just under and just over."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.visits.domain.ownership import LeadFact, LeadFacts
from services.visits.domain.rules import (
    RepHistory,
    RuleContext,
    bulk_entry,
    detect,
    duplicate_visit,
    far_from_customer,
    impossible_travel,
    late_entry,
    missing_checkin_evidence,
    not_the_owner,
    overlapping_visits,
)
from services.visits.domain.values import GeoPoint, VisitFacts, haversine_m
from services.visits.policy import VisitsPolicy
from tests.unit.visits.support import HANGZHOU, PHOTO, SHANGHAI, at

POLICY = VisitsPolicy()


def visit(
    visit_id: str = "v1",
    *,
    lead_id: str = "L1",
    visited_at: datetime | None = None,
    recorded_at: datetime | None = None,
    left_at: datetime | None = None,
    where: GeoPoint | None = HANGZHOU,
    checkin: GeoPoint | None = HANGZHOU,
    photo: str | None = PHOTO,
) -> VisitFacts:
    visited = visited_at or at(1)
    return VisitFacts(
        visit_id=visit_id,
        rep_id="r1",
        lead_id=lead_id,
        region="hangzhou",
        visited_at=visited,
        left_at=left_at,
        recorded_at=recorded_at or visited + timedelta(minutes=5),
        position=where,
        checkin_position=checkin,
        photo_hash=photo,
    )


def ctx(*visits: VisitFacts, lead: LeadFacts | None = None) -> RuleContext:
    return RuleContext(RepHistory(visits), lead)


def lead(*facts: LeadFact, customer: GeoPoint | None = HANGZHOU) -> LeadFacts:
    return LeadFacts("L1", "hangzhou", customer, "ev-registered" if customer else None, facts)


def assigned(event_id: str, rep_id: str, when: datetime) -> LeadFact:
    return LeadFact(event_id, "LeadAssigned", "assigned", "L1", when, rep_id, "hangzhou")


def reclaimed(event_id: str, rep_id: str, when: datetime) -> LeadFact:
    return LeadFact(event_id, "LeadReclaimed", "reclaimed", "L1", when, rep_id, "hangzhou")


def point_east_of(origin: GeoPoint, metres: float) -> GeoPoint:
    """A point `metres` due east (near enough for a few km), with no accuracy radius."""
    lon = origin.lon + metres / haversine_m(origin.lat, origin.lon, origin.lat, origin.lon + 1.0)
    return GeoPoint(origin.lat, lon)


# --- not the owner ------------------------------------------------------------------------------


def test_a_visit_while_the_rep_owned_the_lead_is_not_flagged() -> None:
    facts = lead(assigned("ev-a", "r1", at(0)))
    assert not_the_owner(visit(visited_at=at(0)), ctx(lead=facts), POLICY) is None


def test_a_visit_at_the_very_moment_of_reclaim_is_no_longer_the_reps() -> None:
    facts = lead(assigned("ev-a", "r1", at(-5)), reclaimed("ev-r", "r1", at(1)))
    just_before = visit(visited_at=at(1) - timedelta(seconds=1))
    assert not_the_owner(just_before, ctx(lead=facts), POLICY) is None
    finding = not_the_owner(visit(visited_at=at(1)), ctx(lead=facts), POLICY)
    assert finding is not None and finding.severity == "serious"
    assert finding.evidence == ("v1", "ev-r")
    assert "reclaimed" in finding.reason


def test_a_visit_to_a_colleagues_lead_names_the_assignment_that_made_it_theirs() -> None:
    facts = lead(assigned("ev-a", "r2", at(-5)))
    finding = not_the_owner(visit(), ctx(lead=facts), POLICY)
    assert finding is not None
    assert finding.evidence == ("v1", "ev-a")
    assert "r2 owned it" in finding.reason


def test_a_visit_claimed_before_the_lead_was_assigned_to_the_rep_is_flagged() -> None:
    facts = lead(assigned("ev-a", "r1", at(2)))
    finding = not_the_owner(visit(visited_at=at(2) - timedelta(minutes=1)), ctx(lead=facts), POLICY)
    assert finding is not None and finding.evidence == ("v1", "ev-a")
    assert "after that time" in finding.reason


# --- late entry ---------------------------------------------------------------------------------


def test_an_entry_a_day_late_is_fine_just_under_and_a_minor_breach_just_over() -> None:
    limit = POLICY.late_entry_minor_after
    assert late_entry(visit(visited_at=at(0), recorded_at=at(0) + limit), ctx(), POLICY) is None
    finding = late_entry(
        visit(visited_at=at(0), recorded_at=at(0) + limit + timedelta(seconds=1)), ctx(), POLICY
    )
    assert finding is not None and finding.severity == "minor"


def test_an_entry_past_the_flag_limit_is_a_moderate_flag_not_a_minor_breach() -> None:
    limit = POLICY.late_entry_flag_after
    at_limit = late_entry(visit(visited_at=at(0), recorded_at=at(0) + limit), ctx(), POLICY)
    assert at_limit is not None and at_limit.severity == "minor"
    over = late_entry(
        visit(visited_at=at(0), recorded_at=at(0) + limit + timedelta(seconds=1)), ctx(), POLICY
    )
    assert over is not None and over.severity == "moderate" and over.evidence == ("v1",)


# --- evening bulk entry -------------------------------------------------------------------------


def evening(n: int, *, minutes_apart: float, claimed_hours: list[float]) -> list[VisitFacts]:
    return [
        visit(
            f"e{i}",
            lead_id=f"L{i}",
            visited_at=at(claimed_hours[i]),
            recorded_at=at(12, minutes=i * minutes_apart),
        )
        for i in range(n)
    ]


def test_three_visits_typed_in_minutes_but_claimed_over_the_day_are_bulk_entry() -> None:
    batch = evening(3, minutes_apart=5, claimed_hours=[1, 4, 8])
    finding = bulk_entry(batch[2], ctx(*batch), POLICY)
    assert finding is not None and finding.severity == "serious"
    assert finding.evidence == ("e2", "e0", "e1")
    assert set(finding.related_visit_ids) == {"e0", "e1"}


def test_two_visits_typed_together_are_under_the_bulk_entry_count() -> None:
    batch = evening(2, minutes_apart=5, claimed_hours=[1, 8])
    assert bulk_entry(batch[1], ctx(*batch), POLICY) is None


def test_bulk_entry_counts_visits_recorded_exactly_the_window_apart_but_not_a_second_more() -> None:
    window_minutes = POLICY.bulk_entry_window.total_seconds() / 60 / 2
    inside = evening(3, minutes_apart=window_minutes, claimed_hours=[1, 4, 8])
    assert bulk_entry(inside[2], ctx(*inside), POLICY) is not None
    outside = evening(3, minutes_apart=window_minutes + 1 / 60, claimed_hours=[1, 4, 8])
    assert bulk_entry(outside[2], ctx(*outside), POLICY) is None


def test_bulk_entry_needs_the_claimed_times_spread_wider_than_the_setting() -> None:
    span = POLICY.bulk_entry_min_claimed_span.total_seconds() / 3600
    at_span = evening(3, minutes_apart=5, claimed_hours=[1, 1 + span / 2, 1 + span])
    assert bulk_entry(at_span[2], ctx(*at_span), POLICY) is None
    over = evening(3, minutes_apart=5, claimed_hours=[1, 1 + span / 2, 1 + span + 1 / 60])
    assert bulk_entry(over[2], ctx(*over), POLICY) is not None


# --- impossible travel ----------------------------------------------------------------------------


def test_hangzhou_to_shanghai_in_an_hour_is_impossible_travel() -> None:
    first = visit("a", lead_id="La", visited_at=at(1))
    second = visit("b", lead_id="Lb", visited_at=at(2), where=SHANGHAI, checkin=SHANGHAI)
    finding = impossible_travel(second, ctx(first, second), POLICY)
    assert finding is not None and finding.evidence == ("b", "a")
    assert "km/h" in finding.reason


def test_travel_is_judged_against_the_nearest_placed_visits_on_either_side() -> None:
    shanghai_before = visit("a", lead_id="La", visited_at=at(1), where=SHANGHAI, checkin=SHANGHAI)
    unplaced = visit("b", lead_id="Lb", visited_at=at(1.5), where=None, checkin=None)
    hangzhou_before = visit("c", lead_id="Lc", visited_at=at(0.5), where=HANGZHOU, checkin=HANGZHOU)
    here = visit("d", lead_id="Ld", visited_at=at(2))
    shanghai_after = visit("e", lead_id="Le", visited_at=at(3), where=SHANGHAI, checkin=SHANGHAI)
    shanghai_later = visit("f", lead_id="Lf", visited_at=at(3.5), where=SHANGHAI, checkin=SHANGHAI)
    history = (hangzhou_before, shanghai_before, unplaced, here, shanghai_after, shanghai_later)
    finding = impossible_travel(here, ctx(*history), POLICY)
    # Not the visit without a position, nor the farther ones: Shanghai an hour before and after.
    assert finding is not None and finding.evidence == ("d", "a", "e")


def test_travel_just_under_the_speed_limit_passes_and_just_over_is_flagged() -> None:
    limit_m_per_hour = POLICY.max_travel_speed_kmh * 1000
    first = visit("a", lead_id="La", visited_at=at(1), checkin=None, where=GeoPoint(30.0, 120.0))
    under = visit(
        "b",
        lead_id="Lb",
        visited_at=at(2),
        checkin=None,
        where=point_east_of(GeoPoint(30.0, 120.0), limit_m_per_hour - 50),
    )
    over = visit(
        "b",
        lead_id="Lb",
        visited_at=at(2),
        checkin=None,
        where=point_east_of(GeoPoint(30.0, 120.0), limit_m_per_hour + 50),
    )
    assert impossible_travel(under, ctx(first, under), POLICY) is None
    assert impossible_travel(over, ctx(first, over), POLICY) is not None


def test_nearby_visits_are_never_judged_for_travel_whatever_the_time() -> None:
    first = visit("a", lead_id="La", visited_at=at(1), checkin=None, where=GeoPoint(30.0, 120.0))
    near = visit(
        "b",
        lead_id="Lb",
        visited_at=at(1),
        checkin=None,
        where=point_east_of(GeoPoint(30.0, 120.0), POLICY.travel_min_distance_m - 10),
    )
    assert impossible_travel(near, ctx(first, near), POLICY) is None


# --- overlapping visits -------------------------------------------------------------------------


def test_visits_to_two_customers_at_once_overlap() -> None:
    first = visit("a", lead_id="La", visited_at=at(1), left_at=at(2))
    second = visit("b", lead_id="Lb", visited_at=at(1.5))
    finding = overlapping_visits(second, ctx(first, second), POLICY)
    assert finding is not None and finding.evidence == ("b", "a") and finding.severity == "moderate"


def test_a_visit_starting_as_the_last_one_ends_does_not_overlap() -> None:
    first = visit("a", lead_id="La", visited_at=at(1), left_at=at(2))
    touching = visit("b", lead_id="Lb", visited_at=at(2))
    assert overlapping_visits(touching, ctx(first, touching), POLICY) is None
    one_second_early = visit("b", lead_id="Lb", visited_at=at(2) - timedelta(seconds=1))
    assert overlapping_visits(one_second_early, ctx(first, one_second_early), POLICY) is not None


def test_a_visit_without_a_leaving_time_lasts_the_assumed_duration() -> None:
    first = visit("a", lead_id="La", visited_at=at(1))
    after = visit("b", lead_id="Lb", visited_at=at(1) + POLICY.assumed_visit_duration)
    assert overlapping_visits(after, ctx(first, after), POLICY) is None
    inside = visit("b", lead_id="Lb", visited_at=at(1) + POLICY.assumed_visit_duration - timedelta(minutes=1))
    assert overlapping_visits(inside, ctx(first, inside), POLICY) is not None


# --- far from the customer ------------------------------------------------------------------------


def test_a_check_in_just_within_the_distance_passes_and_just_beyond_is_flagged() -> None:
    origin = GeoPoint(30.0, 120.0)
    facts = lead(customer=origin)
    inside = visit(checkin=point_east_of(origin, POLICY.far_from_customer_m - 1))
    outside = visit(checkin=point_east_of(origin, POLICY.far_from_customer_m + 1))
    assert far_from_customer(inside, ctx(lead=facts), POLICY) is None
    finding = far_from_customer(outside, ctx(lead=facts), POLICY)
    assert finding is not None and finding.evidence == ("v1", "ev-registered")


def test_the_fixs_accuracy_gives_the_rep_the_benefit_of_the_doubt() -> None:
    origin = GeoPoint(30.0, 120.0)
    east = point_east_of(origin, POLICY.far_from_customer_m + 50)
    fuzzy = visit(checkin=GeoPoint(east.lat, east.lon, 60.0))
    assert far_from_customer(fuzzy, ctx(lead=lead(customer=origin)), POLICY) is None


def test_without_the_customers_address_distance_is_not_judged() -> None:
    assert far_from_customer(visit(checkin=SHANGHAI), ctx(lead=lead(customer=None)), POLICY) is None


# --- missing check-in evidence ----------------------------------------------------------------------


def test_a_visit_without_check_in_position_or_photo_is_flagged_with_what_is_missing() -> None:
    finding = missing_checkin_evidence(visit(checkin=None, photo=None), ctx(), POLICY)
    assert finding is not None
    assert "no check-in position" in finding.reason and "no check-in photo" in finding.reason


def test_a_check_in_fix_less_precise_than_the_setting_counts_as_missing() -> None:
    limit = POLICY.max_checkin_accuracy_m
    precise = visit(checkin=GeoPoint(30.0, 120.0, limit))
    vague = visit(checkin=GeoPoint(30.0, 120.0, limit + 1))
    assert missing_checkin_evidence(precise, ctx(), POLICY) is None
    assert missing_checkin_evidence(vague, ctx(), POLICY) is not None


def test_a_photo_need_not_be_required() -> None:
    relaxed = VisitsPolicy(require_photo=False)
    assert missing_checkin_evidence(visit(photo=None), ctx(), relaxed) is None


# --- duplicates ------------------------------------------------------------------------------------


def test_the_same_lead_logged_again_within_the_window_is_a_duplicate_of_the_first() -> None:
    first = visit("a", visited_at=at(1), recorded_at=at(1.1), photo=None)
    again = visit("b", visited_at=at(1) + POLICY.duplicate_within, recorded_at=at(4), photo=None)
    finding = duplicate_visit(again, ctx(first, again), POLICY)
    assert finding is not None and finding.evidence == ("b", "a")
    assert duplicate_visit(first, ctx(first, again), POLICY) is None  # the first is the original
    later = visit(
        "c", visited_at=at(1) + POLICY.duplicate_within + timedelta(seconds=1), recorded_at=at(4), photo=None
    )
    assert duplicate_visit(later, ctx(first, later), POLICY) is None


def test_the_same_photo_on_another_leads_visit_is_a_duplicate() -> None:
    first = visit("a", lead_id="La", visited_at=at(1), recorded_at=at(1.1))
    reused = visit("b", lead_id="Lb", visited_at=at(5), recorded_at=at(5.1))
    finding = duplicate_visit(reused, ctx(first, reused), POLICY)
    assert finding is not None and "the same photo" in finding.reason


# --- the rules together -----------------------------------------------------------------------------


def test_a_rule_switched_off_finds_nothing() -> None:
    bare = visit(checkin=None, photo=None)
    assert [f.rule for f in detect(bare, ctx(bare), POLICY)] == ["missing_checkin_evidence"]
    off = VisitsPolicy(disabled_rules=frozenset({"missing_checkin_evidence"}))
    assert detect(bare, ctx(bare), off) == []


def test_an_unknown_rule_cannot_be_switched_off() -> None:
    with pytest.raises(ValueError, match="unknown rules"):
        VisitsPolicy(disabled_rules=frozenset({"no_such_rule"}))


def test_the_same_inputs_always_give_the_same_findings() -> None:
    batch = evening(4, minutes_apart=3, claimed_hours=[1, 3, 5, 7])
    shuffled = [batch[2], batch[0], batch[3], batch[1]]
    first = [detect(v, ctx(*batch), POLICY) for v in batch]
    second = [detect(v, ctx(*shuffled), POLICY) for v in batch]
    assert first == second and all(first)

"""The quality-control desk, the look-back, the weekly minor-breach summary, the audit trail, the
public events, and replay: flags are suspicions that people decide, and the same events always
give the same flags."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import pytest
from eventsourcing.domain import MutableOrImmutableAggregate

from services.visits.application import VisitsApplication
from services.visits.domain.visit_log import VisitLog
from services.visits.integration import to_integration
from services.visits.policy import VisitsPolicy
from services.visits.read_models import AuditEntry, AuditTrail
from shared.domain import Conflict, Forbidden, Meta, RuleViolated
from shared.events.catalog import decode, make_envelope
from shared.events.visits import EVENTS, FabricationConfirmed, LookBackCompleted, VisitFlagged
from tests.unit.visits.support import HANGZHOU, PHOTO, LeadsTopic, at, qc, rep

MONDAY = at(0).date()


def setup(app: VisitsApplication) -> tuple[LeadsTopic, dict[str, str]]:
    """r1 owns L1; L2 belongs to r2. r1 logs an honest visit, a visit to L2, and a late one."""
    leads = LeadsTopic(app)
    leads.owned_lead("L1", "r1", at(-48))
    leads.owned_lead("L2", "r2", at(-48))
    leads.owned_lead("L3", "r1", at(-48))
    visits = {
        "honest": app.log_visit(
            lead_id="L1",
            visited_at=at(1),
            position=HANGZHOU,
            checkin_position=HANGZHOU,
            photo_hash=PHOTO,
            meta=rep("r1", at(1.2)),
        ),
        "not_mine": app.log_visit(
            lead_id="L2",
            visited_at=at(3),
            position=HANGZHOU,
            checkin_position=HANGZHOU,
            photo_hash="sha256:" + "cd" * 32,
            meta=rep("r1", at(3.2)),
        ),
    }
    return leads, visits


def flag_of(app: VisitsApplication, visit_id: str, rule: str) -> str:
    (flag,) = [f for f in app.list_flags(rule=rule) if f.visit_id == visit_id]
    return flag.flag_id


@pytest.fixture
def app() -> VisitsApplication:
    return VisitsApplication(env={})


def test_the_desk_lists_flags_by_region_rep_rule_and_status(app: VisitsApplication) -> None:
    _, visits = setup(app)
    flag_id = flag_of(app, visits["not_mine"], "not_the_owner")
    assert [f.flag_id for f in app.list_flags(region="hangzhou", rep_id="r1", status="open")] == [flag_id]
    assert app.list_flags(region="shanghai") == []
    assert app.list_flags(rule="duplicate_visit") == []
    assert app.list_flags(not_about="r1") == []  # nobody reads flags about themselves
    app.dismiss_flag(flag_id, reason="r2 asked r1 to cover the visit", meta=qc(at(5)))
    assert app.list_flags(status="open") == []
    dismissed = app.get_flag(flag_id)
    assert (dismissed.status, dismissed.decided_by) == ("dismissed", "qc-1")


def test_a_rep_sees_their_visits_but_never_the_flags_on_them(app: VisitsApplication) -> None:
    _, visits = setup(app)
    mine = app.list_visits(rep_id="r1", include_flags=False)
    assert {v.visit_id for v in mine} == set(visits.values())
    assert all(v.flag_ids is None and v.fabrication_confirmed is None for v in mine)
    assert app.get_visit(visits["not_mine"]).flag_ids
    assert app.get_visit(visits["not_mine"], include_flags=False).flag_ids is None
    trail = app.audit_trail(rep_id="r1", include_flags=False)
    assert trail and not any(e.about_flags for e in trail)


def test_only_quality_control_decides_never_about_themselves_and_only_once(app: VisitsApplication) -> None:
    _, visits = setup(app)
    flag_id = flag_of(app, visits["not_mine"], "not_the_owner")
    manager = Meta("m-1", "manager", at(5))
    with pytest.raises(Forbidden, match="only quality control"):
        app.confirm_flag(flag_id, reason="looks fake", fabrication=True, meta=manager)
    with pytest.raises(Forbidden, match="themselves"):
        app.dismiss_flag(flag_id, reason="not me", meta=Meta("r1", "qc", at(5)))
    with pytest.raises(RuleViolated) as no_reason:
        app.dismiss_flag(flag_id, reason="", meta=qc(at(5)))
    assert no_reason.value.field == "reason"
    app.confirm_flag(flag_id, reason="customer says no one came", fabrication=False, meta=qc(at(5)))
    with pytest.raises(Conflict, match="already confirmed"):
        app.dismiss_flag(flag_id, reason="changed my mind", meta=qc(at(6), "qc-2"))


def test_confirming_a_flag_as_breach_of_procedure_is_not_a_fabrication(app: VisitsApplication) -> None:
    _, visits = setup(app)
    flag_id = flag_of(app, visits["not_mine"], "not_the_owner")
    assert (
        app.confirm_flag(flag_id, reason="visited, but not their lead", fabrication=False, meta=qc(at(5)))
        is None
    )
    types = [type(e).__name__ for e in app.events.get(VisitLog.create_id("r1"))]
    assert "FlagConfirmed" in types and "FabricationConfirmed" not in types


def test_a_confirmed_fabrication_is_public_with_its_evidence_and_starts_a_look_back(
    app: VisitsApplication,
) -> None:
    _, visits = setup(app)
    flag_id = flag_of(app, visits["not_mine"], "not_the_owner")
    evidence = app.get_flag(flag_id).evidence
    # Rules switched off at logging time are on for the look-back: it finds what they missed.
    app.policy = VisitsPolicy(disabled_rules=frozenset({"duplicate_visit"}))
    again = app.log_visit(
        lead_id="L1",
        visited_at=at(1, minutes=30),
        position=HANGZHOU,
        checkin_position=HANGZHOU,
        photo_hash=PHOTO,
        meta=rep("r1", at(4)),
    )
    assert app.get_visit(again).flag_ids == ()
    app.policy = VisitsPolicy()

    look_back_id = app.confirm_flag(
        flag_id, reason="the customer never met r1", fabrication=True, meta=qc(at(6))
    )
    assert look_back_id is not None

    events = list(app.events.get(VisitLog.create_id("r1")))
    fabrication = next(e for e in events if isinstance(e, VisitLog.FabricationConfirmed))
    public = to_integration(fabrication)
    assert public is not None and isinstance(public.event, FabricationConfirmed)
    assert public.event.rep_id == "r1" and public.event.visit_id == visits["not_mine"]
    assert public.event.flag_ids == [flag_id] and public.event.evidence_event_ids == list(evidence)
    assert public.event.region == "hangzhou" and public.event.decided_by == "qc-1"
    assert public.event.look_back_id == look_back_id and public.event.visited_at == at(3)

    look_back = app.get_look_back(look_back_id)
    assert look_back.visits_examined == 3 and look_back.trigger_visit_id == visits["not_mine"]
    duplicate = flag_of(app, again, "duplicate_visit")
    assert [f.finding_id for f in look_back.new_findings] == [duplicate]
    assert app.get_flag(duplicate).origin == "look_back"
    assert app.get_flag(duplicate).look_back_id == look_back_id
    assert app.get_visit(visits["not_mine"]).fabrication_confirmed is True
    completed = to_integration(events[-1])
    assert completed is not None and isinstance(completed.event, LookBackCompleted)
    assert completed.event.new_flag_ids == [duplicate]


def test_a_visit_confirmed_as_fabricated_can_no_longer_be_corrected(app: VisitsApplication) -> None:
    _, visits = setup(app)
    app.confirm_flag(
        flag_of(app, visits["not_mine"], "not_the_owner"), reason="fake", fabrication=True, meta=qc(at(6))
    )
    with pytest.raises(Conflict, match="fabricated"):
        app.correct_visit(visits["not_mine"], notes="really went", reason="please", meta=rep("r1", at(7)))


def test_a_late_entry_is_a_minor_breach_for_the_weekly_summary_not_a_flag(app: VisitsApplication) -> None:
    setup(app)
    late = app.log_visit(
        lead_id="L3",
        visited_at=at(2),
        position=HANGZHOU,
        checkin_position=HANGZHOU,
        photo_hash="sha256:" + "ef" * 32,
        meta=rep("r1", at(2, days=1, minutes=30)),
    )
    assert app.get_visit(late).flag_ids == ()
    (breach,) = app.minor_breaches(week_start=MONDAY, rep_id="r1")
    assert (breach.visit_id, breach.rule, breach.summarised) == (late, "late_entry", False)

    with pytest.raises(RuleViolated, match="not over"):
        app.summarise_minor_breaches(MONDAY, meta=qc(at(0, days=6)))
    with pytest.raises(RuleViolated) as not_monday:
        app.summarise_minor_breaches(MONDAY + timedelta(days=1), meta=qc(at(0, days=8)))
    assert not_monday.value.field == "week_start"

    assert app.summarise_last_week(at(0, days=8)) == ["r1"]
    assert app.summarise_last_week(at(0, days=8, minutes=1)) == []  # once a week
    (summary,) = app.weekly_summaries(region="hangzhou")
    assert summary.week_start == MONDAY and [b.visit_id for b in summary.breaches] == [late]
    assert app.minor_breaches(rep_id="r1")[0].summarised
    events = list(app.events.get(VisitLog.create_id("r1")))
    public = to_integration(events[-1])
    assert public is not None and public.event.event_type == "WeeklyMinorBreachSummary"


def test_the_audit_trail_of_a_rep_tells_leads_and_visits_events_in_order(app: VisitsApplication) -> None:
    _, visits = setup(app)
    flag_id = flag_of(app, visits["not_mine"], "not_the_owner")
    app.confirm_flag(flag_id, reason="fake", fabrication=True, meta=qc(at(6)))
    trail = app.audit_trail(rep_id="r1")
    assert [e.at for e in trail] == sorted(e.at for e in trail)
    types = [e.event_type for e in trail]
    assert types[:2] == ["LeadAssigned", "LeadAssigned"]  # L1 and L3, from the leads topic
    assert {
        "VisitLogged",
        "VisitFlagged",
        "FlagConfirmed",
        "FabricationConfirmed",
        "LookBackCompleted",
    } <= set(types)
    flagged = next(e for e in trail if e.event_type == "VisitFlagged" and flag_id in e.summary)
    assert flagged.evidence == app.get_flag(flag_id).evidence
    lead_trail = app.audit_trail(lead_id="L2")
    assert [e.source for e in lead_trail][:2] == ["leads", "leads"]
    assert any(e.rep_id == "r2" for e in lead_trail) and any(
        e.visit_id == visits["not_mine"] for e in lead_trail
    )


def test_the_audit_trail_keeps_time_order_when_events_arrive_out_of_it_and_arrival_order_in_ties() -> None:
    trail = AuditTrail()

    def entry(hour: float, name: str) -> AuditEntry:
        return AuditEntry(
            at=at(hour),
            source="leads",
            event_type=name,
            event_id=name,
            rep_id="r1",
            lead_id="L1",
            visit_id=None,
            summary=name,
        )

    for hour, name in [(1, "a"), (3, "b"), (2, "c"), (3, "d"), (0, "e"), (3, "f"), (4, "g")]:
        trail._add(entry(hour, name))
    for rep_id, lead_id in (("r1", None), (None, "L1")):
        listed = trail.trail(rep_id=rep_id, lead_id=lead_id, include_flags=True)
        assert [e.event_id for e in listed] == ["e", "a", "c", "b", "d", "f", "g"]


def test_every_public_event_of_the_visits_service_round_trips_through_an_envelope(
    app: VisitsApplication,
) -> None:
    _, visits = setup(app)
    app.confirm_flag(
        flag_of(app, visits["not_mine"], "not_the_owner"), reason="fake", fabrication=True, meta=qc(at(6))
    )
    app.correct_visit(visits["honest"], notes="fixed", reason="typo", meta=rep("r1", at(7)))
    bare = app.log_visit(lead_id="L3", visited_at=at(2), meta=rep("r1", at(2, days=1, minutes=30)))
    app.dismiss_flag(
        flag_of(app, bare, "missing_checkin_evidence"), reason="GPS was off", meta=qc(at(0, days=2))
    )
    app.summarise_minor_breaches(MONDAY, meta=qc(at(0, days=7)))
    seen: set[str] = set()
    for notification in app.recorder.select_notifications(0, 1000):
        domain_event = app.mapper.to_domain_event(notification)
        published = to_integration(domain_event)
        if published is None:
            continue
        envelope = make_envelope(
            published,
            aggregate_id=domain_event.originator_id,
            aggregate_version=domain_event.originator_version,
            meta=domain_event.meta.as_dict(),  # type: ignore[attr-defined]
            recorded_at=domain_event.timestamp,  # type: ignore[attr-defined]
        )
        decoded_envelope, decoded = decode(envelope.to_bytes())
        assert decoded == published.event and decoded_envelope.aggregate_type == "VisitLog"
        seen.add(published.event.event_type)
    assert {e.event_type for e in EVENTS} == seen


def test_replaying_the_same_leads_events_and_commands_gives_exactly_the_same_flags() -> None:
    def run() -> tuple[list[Any], list[Any]]:
        app = VisitsApplication(env={})
        _, visits = setup(app)
        app.log_visit(lead_id="L2", visited_at=at(3.1), position=HANGZHOU, meta=rep("r1", at(3.3)))
        app.confirm_flag(
            flag_of(app, visits["not_mine"], "not_the_owner"), reason="fake", fabrication=True, meta=qc(at(6))
        )
        flags = [(f.flag_id, f.visit_id, f.rule, f.reason, f.evidence, f.status) for f in app.list_flags()]
        published = [
            p.event
            for n in app.recorder.select_notifications(0, 1000)
            if (p := to_integration(app.mapper.to_domain_event(n))) is not None
        ]
        return flags, published

    first, second = run(), run()
    assert first[0] and first == second


def test_read_models_rebuilt_from_the_store_hold_the_same_flags(app: VisitsApplication) -> None:
    setup(app)
    before = app.list_flags()
    app.rebuild_read_models()
    assert app.list_flags() == before and before


class SmallSnapshots(VisitsApplication):
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {VisitLog: 3}


def test_a_reps_log_loads_the_same_from_a_snapshot() -> None:
    app = SmallSnapshots(env={})
    _, visits = setup(app)
    app.confirm_flag(
        flag_of(app, visits["not_mine"], "not_the_owner"), reason="fake", fabrication=True, meta=qc(at(6))
    )
    assert app.snapshots is not None and list(app.snapshots.get(VisitLog.create_id("r1")))
    rebuilt: VisitLog = app.repository.get(VisitLog.create_id("r1"))
    assert isinstance(rebuilt, VisitLog)
    assert set(rebuilt.visits) == set(visits.values())
    assert all(isinstance(f.evidence, tuple) for f in rebuilt.flags.values())
    # The log keeps working after a snapshot: a further visit is judged against the history.
    dup = app.log_visit(
        lead_id="L1",
        visited_at=at(1, minutes=10),
        position=HANGZHOU,
        checkin_position=HANGZHOU,
        photo_hash=PHOTO,
        meta=rep("r1", at(9)),
    )
    assert [app.get_flag(f).rule for f in app.get_visit(dup).flag_ids or ()] == ["duplicate_visit"]


def test_a_visit_flag_event_is_public_but_the_ownership_timeline_is_not(app: VisitsApplication) -> None:
    setup(app)
    kinds = {}
    for n in app.recorder.select_notifications(0, 1000):
        e = app.mapper.to_domain_event(n)
        kinds[type(e).__qualname__] = to_integration(e)
    assert kinds["LeadTimeline.FactRecorded"] is None
    assert kinds["VisitLog.Opened"] is None
    flagged = kinds["VisitLog.VisitFlagged"]
    assert flagged is not None and isinstance(flagged.event, VisitFlagged)
    assert flagged.event.evidence_event_ids and flagged.event.severity in ("moderate", "serious")

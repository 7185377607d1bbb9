"""What the apps read (workbench, a lead's history, the pool by region, a region's view) and what
goes on the leads topic, checked against the public catalog."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from services.leads.integration import to_integration
from shared.events.catalog import decode, make_envelope
from shared.events.leads import EVENTS

from .given import DAY, T0, Topic, admin, app, appoint, assign, at, hire, rep, stock, system, visit


def test_a_leads_history_names_every_owner_and_how_each_lost_it() -> None:
    leads = app()
    hire(leads, "r1")
    hire(leads, "r2")
    lead_id = assign(leads, "Acme", "r1")
    leads.reclaim_overdue(at(49))
    leads.assign_lead(lead_id, "r2", admin(at(50)))
    leads.keep_private(lead_id, "r2", rep("r2", at(51)))
    leads.convert_lead(lead_id, rep("r2", at(60)))
    owners = leads.lead(lead_id).owners
    assert [(o.rep_id, o.ended_by, o.reason) for o in owners] == [
        ("r1", "reclaimed", "follow_up_overdue"),
        ("r2", "converted", None),
    ]
    assert owners[1].kept_private_at == at(51) and owners[0].until == at(49)


def test_the_workbench_shows_deadlines_soonest_first_and_the_quota_left_today() -> None:
    leads = app()
    hire(leads, "r1", quota=30)
    later = assign(leads, "Later", "r1", at(2))
    sooner = assign(leads, "Sooner", "r1", at(1))
    bench = leads.workbench("r1", at(3))
    assert [c.lead_id for c in bench.assigned] == [sooner, later]
    assert (bench.assigned_today, bench.quota_left_today, bench.day) == (2, 28, DAY)


def test_the_pool_by_region_counts_every_state() -> None:
    leads = app()
    hire(leads, "r1")
    stock(leads, 3)
    kept = assign(leads, "Kept", "r1")
    leads.keep_private(kept, "r1", rep("r1", at(1)))
    closed = assign(leads, "Closed", "r1")
    leads.close_lead(closed, "wrong number", rep("r1", at(1)))
    [region] = leads.pool_by_region()
    assert region.counts == {"pool": 3, "assigned": 0, "private": 1, "converted": 0, "closed": 1}


def test_a_managers_view_shows_each_reps_load_and_the_best_waiting_leads() -> None:
    leads = app()
    appoint(Topic(leads, "rotation"), "m1", "hangzhou")
    hire(leads, "r1", quota=30)
    hire(leads, "r2", quota=30)
    stock(leads, 40, score=90)
    leads.distribute(DAY, system())
    view = leads.region_view("hangzhou", at(49))
    assert view.manager_id == "m1"
    assert [(r.rep_id, r.assigned, r.overdue) for r in view.reps] == [("r1", 20, 20), ("r2", 20, 20)]
    assert view.counts["pool"] == 0 and view.top_pool_leads == ()
    assert view.last_distribution is not None and view.last_distribution.assigned == 40


def test_every_public_event_of_a_leads_life_is_in_the_catalog_and_self_contained() -> None:
    leads = app()
    hire(leads, "r1")
    hire(leads, "r2")
    lead_id = assign(leads, "Acme", "r1")
    other = assign(leads, "Other", "r1")
    leads.warn_follow_ups_due(at(40))
    visit(Topic(leads, "visits"), lead_id, "r1", visited_at=at(41))
    leads.keep_private(lead_id, "r1", rep("r1", at(42)))
    leads.release_lead(other, "r1", "not a fit", rep("r1", at(42)))
    leads.convert_lead(lead_id, rep("r1", at(43)))
    leads.deactivate_rep("r2", "left", admin(at(44)))
    published: list[Any] = []
    for notification in leads.recorder.select_notifications(0, 1000):
        domain_event: Any = leads.mapper.to_domain_event(notification)
        public = to_integration(domain_event)
        if public is None:
            continue
        envelope = make_envelope(
            public,
            aggregate_id=domain_event.originator_id,
            aggregate_version=domain_event.originator_version,
            meta=domain_event.meta.as_dict(),
            recorded_at=T0,
        )
        _, payload = decode(envelope.to_bytes())
        published.append(payload)
    kinds = [p.event_type for p in published if getattr(p, "lead_id", None) == lead_id]
    assert kinds == [
        "LeadRegistered",
        "LeadAssigned",
        "FollowUpDue",
        "LeadFollowedUp",
        "LeadKeptPrivate",
        "LeadConverted",
    ]
    assert all(p.region == "hangzhou" for p in published if hasattr(p, "lead_id"))
    registered = next(p for p in published if p.event_type == "LeadRegistered")
    assert (registered.customer_lat, registered.customer_lon) == (30.2741, 120.1551)
    followed = next(p for p in published if p.event_type == "LeadFollowedUp")
    assert followed.visit_id is not None and followed.channel == "visit"
    assert {p.event_type for p in published} >= {"RepRegistered", "RepDeactivated", "LeadReleased"}
    assert {type(p) for p in published} <= set(EVENTS)


def test_bookkeeping_events_stay_inside_the_service() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    leads.keep_private(lead_id, "r1", rep("r1", at(1)))
    from services.leads.domain.rep import Rep

    rep_events = list(leads.events.get(Rep.create_id("r1")))
    assert [to_integration(e) is None for e in rep_events] == [False, True]
    assert UUID(lead_id) == leads.events.get(UUID(lead_id)).__next__().originator_id
    assert leads.lead(lead_id).deadline == at(1) + timedelta(days=30)

"""The private pool: keep under the cap, swap at the cap (both or neither), release with a reason,
and the longer no-progress limit that replaces follow-up reclaim."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from services.leads.application import LeadsApplication
from services.leads.domain.rep import Rep
from services.leads.integration import to_integration
from shared.domain import Conflict, Forbidden, RuleViolated
from shared.events.leads import LeadKeptPrivate, LeadReleased

from .given import POLICY, T0, admin, app, assign, at, hire, rep, stored

NO_PROGRESS = timedelta(days=POLICY.private_no_progress_days)


def keeper(cap: int = 2) -> tuple[LeadsApplication, list[str]]:
    leads = app()
    hire(leads, "r1", cap=cap)
    held = [assign(leads, f"Co {i}", "r1") for i in range(cap + 1)]
    for lead_id in held[:cap]:
        leads.keep_private(lead_id, "r1", rep("r1", at(1)))
    return leads, held


def test_a_rep_keeps_an_assigned_lead_in_their_private_pool() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    leads.keep_private(lead_id, "r1", rep("r1", at(1)))
    bench = leads.workbench("r1", at(1))
    assert [c.lead_id for c in bench.private_pool] == [lead_id] and bench.assigned == ()
    assert leads.lead(lead_id).deadline == at(1) + NO_PROGRESS


def test_at_the_cap_keeping_another_without_naming_one_to_return_is_refused_and_nothing_changes() -> None:
    leads, held = keeper(cap=2)
    with pytest.raises(RuleViolated) as refused:
        leads.keep_private(held[2], "r1", rep("r1", at(2)))
    assert refused.value.field == "return_lead_id"
    assert leads.lead(held[2]).status == "assigned"
    assert stored(leads, Rep.create_id("r1")).count("PrivateLeadKept") == 2


def test_just_under_the_cap_a_lead_is_kept_without_a_swap() -> None:
    leads = app()
    hire(leads, "r1", cap=2)
    first, second = assign(leads, "A", "r1"), assign(leads, "B", "r1")
    leads.keep_private(first, "r1", rep("r1", at(1)))
    leads.keep_private(second, "r1", rep("r1", at(1)))
    assert len(leads.workbench("r1", at(1)).private_pool) == 2


def test_at_the_cap_a_swap_keeps_one_and_returns_the_other_to_the_pool_in_one_go() -> None:
    leads, held = keeper(cap=2)
    leads.keep_private(held[2], "r1", rep("r1", at(2)), return_lead_id=held[0])
    returned = leads.lead(held[0])
    assert returned.status == "pool" and returned.owners[-1].reason == "swapped_for_private"
    bench = leads.workbench("r1", at(2))
    assert sorted(c.lead_id for c in bench.private_pool) == sorted(held[1:])


def test_the_public_events_of_a_swap_name_each_other() -> None:
    leads, held = keeper(cap=2)
    leads.keep_private(held[2], "r1", rep("r1", at(2)), return_lead_id=held[0])
    kept = to_integration(_last(leads, held[2]))
    released = to_integration(_last(leads, held[0]))
    assert kept is not None and released is not None
    assert isinstance(kept.event, LeadKeptPrivate) and kept.event.returned_lead_id == held[0]
    assert isinstance(released.event, LeadReleased) and released.event.swapped_for_lead_id == held[2]


def _last(leads: LeadsApplication, lead_id: str) -> object:
    return list(leads.events.get(UUID(lead_id)))[-1]


def test_a_swap_naming_a_lead_not_in_the_private_pool_changes_neither() -> None:
    leads, held = keeper(cap=2)
    other = assign(leads, "Other", "r1")
    with pytest.raises(RuleViolated) as refused:
        leads.keep_private(held[2], "r1", rep("r1", at(2)), return_lead_id=other)
    assert refused.value.field == "return_lead_id"
    assert leads.lead(held[2]).status == "assigned" and leads.lead(other).status == "assigned"


def test_a_lead_not_yours_cannot_be_kept() -> None:
    leads = app()
    hire(leads, "r1")
    hire(leads, "r2")
    lead_id = assign(leads, "Acme", "r2")
    with pytest.raises(Forbidden):
        leads.keep_private(lead_id, "r1", rep("r1", at(1)))
    assert leads.lead(lead_id).status == "assigned"


def test_an_overdue_lead_cannot_be_kept_private_to_escape_reclaim() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    with pytest.raises(RuleViolated):
        leads.keep_private(lead_id, "r1", rep("r1", at(48, seconds=1)))
    leads.keep_private(lead_id, "r1", rep("r1", at(1)))
    with pytest.raises(Conflict):
        leads.keep_private(lead_id, "r1", rep("r1", at(2)))


def test_private_leads_are_exempt_from_follow_up_reclaim_until_their_no_progress_limit() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    leads.keep_private(lead_id, "r1", rep("r1", at(1)))
    limit = at(1) + NO_PROGRESS
    assert leads.reclaim_overdue(at(49)) == []
    assert leads.reclaim_overdue(limit) == []
    assert leads.reclaim_overdue(limit + timedelta(seconds=1)) == [lead_id]
    assert leads.lead(lead_id).owners[-1].reason == "private_no_progress"
    assert leads.workbench("r1", limit).private_pool == ()
    assert stored(leads, Rep.create_id("r1"))[-1] == "PrivateLeadLeft"


def test_progress_on_a_private_lead_pushes_its_no_progress_limit() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    leads.keep_private(lead_id, "r1", rep("r1", at(1)))
    leads.record_follow_up(lead_id, "r1", rep("r1", at(days=20)), channel="meeting")
    assert leads.lead(lead_id).deadline == at(days=20) + NO_PROGRESS
    assert leads.reclaim_overdue(at(1) + NO_PROGRESS + timedelta(days=1)) == []


def test_a_private_lead_is_warned_of_its_no_progress_limit() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    leads.keep_private(lead_id, "r1", rep("r1", at(1)))
    opens = at(1) + NO_PROGRESS - timedelta(days=POLICY.private_warn_before_days)
    assert leads.warn_follow_ups_due(opens - timedelta(seconds=1)) == []
    assert leads.warn_follow_ups_due(opens) == [lead_id]


def test_a_released_lead_goes_back_to_the_pool_with_the_reason_and_frees_a_place() -> None:
    leads, held = keeper(cap=2)
    leads.release_lead(held[0], "r1", "customer chose a competitor", rep("r1", at(3)))
    lead = leads.lead(held[0])
    assert lead.status == "pool" and lead.owners[-1].reason == "customer chose a competitor"
    leads.keep_private(held[2], "r1", rep("r1", at(3)))
    assert len(leads.workbench("r1", at(3)).private_pool) == 2


def test_a_release_needs_a_reason() -> None:
    leads = app()
    hire(leads, "r1")
    lead_id = assign(leads, "Acme", "r1")
    with pytest.raises(RuleViolated) as refused:
        leads.release_lead(lead_id, "r1", "  ", rep("r1", at(1)))
    assert refused.value.field == "reason"
    assert stored(leads, UUID(lead_id))[-1] == "Assigned"


def test_a_lowered_cap_keeps_what_is_there_but_then_needs_swaps() -> None:
    leads, held = keeper(cap=2)
    leads.set_private_pool_cap("r1", 1, admin())
    assert len(leads.workbench("r1", T0).private_pool) == 2
    with pytest.raises(RuleViolated):
        leads.keep_private(held[2], "r1", rep("r1", at(2)))
    leads.keep_private(held[2], "r1", rep("r1", at(2)), return_lead_id=held[1])

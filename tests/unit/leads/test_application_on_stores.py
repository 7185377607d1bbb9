"""A simulated week through the application, on the in-memory store and again on SQLite; on SQLite,
a fresh process reads the same store."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from services.leads.application import LeadsApplication
from services.leads.policy import LeadsPolicy
from tests.support.stores import sqlite_env

from .given import DAY, POLICY, T0, Topic, app, at, hire, rep, stock, system, visit


class TestLeadsOnMemory:
    @pytest.fixture
    def env(self, tmp_path: Path) -> dict[str, str]:
        return {}

    def new_app(self, env: dict[str, str], policy: LeadsPolicy = POLICY) -> LeadsApplication:
        return app(policy, env=dict(env))

    def test_a_week_where_the_idle_rep_loses_leads_to_colleagues_and_the_keeper_swaps(
        self, env: dict[str, str]
    ) -> None:
        # A small team with a small band keeps the week quick; the rules are the same.
        policy = LeadsPolicy(quota_min=5, default_daily_quota=5, quota_max=10, default_private_pool_cap=2)
        leads = self.new_app(env, policy)
        for rep_id in ("idle", "busy", "keeper"):
            hire(leads, rep_id, quota=5, cap=2)
        stock(leads, 40)
        visits = Topic(leads, "visits")
        idle_lost: set[str] = set()
        for day_n in range(5):
            morning = at(days=day_n)
            leads.reclaim_overdue(morning)
            leads.distribute(DAY + timedelta(days=day_n), system(morning))
            for rep_id in ("busy", "keeper"):
                for card in leads.workbench(rep_id, morning).assigned:
                    visit(visits, card.lead_id, rep_id, visited_at=morning + timedelta(hours=2))
            keeper = leads.workbench("keeper", morning)
            if keeper.assigned:
                newest = keeper.assigned[-1].lead_id
                returned = keeper.private_pool[0].lead_id if len(keeper.private_pool) >= 2 else None
                leads.keep_private(newest, "keeper", rep("keeper", morning + timedelta(hours=3)), returned)
            idle_lost |= {c.lead_id for c in leads.workbench("idle", morning).assigned}
        end = at(days=5)
        reclaimed = leads.reclaim_overdue(end)
        assert set(reclaimed) <= idle_lost and reclaimed
        for lead_id in idle_lost:
            owners = leads.lead(lead_id).owners
            idle_ended = [o for o in owners if o.rep_id == "idle" and o.until is not None]
            assert all(o.reason == "follow_up_overdue" for o in idle_ended)
            # never straight back to the rep who lost it
            assert all((a.rep_id, b.rep_id) != ("idle", "idle") for a, b in itertools.pairwise(owners))
        keeper = leads.workbench("keeper", end)
        assert len(keeper.private_pool) == 2
        assert not any(c.deadline and c.deadline < end for c in leads.workbench("busy", end).assigned)

    def test_rebuilding_the_read_model_gives_the_same_answers(self, env: dict[str, str]) -> None:
        leads = self.new_app(env)
        hire(leads, "r1")
        stock(leads, 40)
        leads.distribute(DAY, system())
        leads.reclaim_overdue(at(49))
        before = (leads.pool_by_region(), leads.workbench("r1", at(50)))
        leads.rebuild_read_models()
        assert (leads.pool_by_region(), leads.workbench("r1", at(50))) == before


class TestLeadsOnSQLite(TestLeadsOnMemory):
    @pytest.fixture
    def env(self, tmp_path: Path) -> dict[str, str]:
        return sqlite_env(tmp_path / "leads.db")

    def test_an_assignment_stored_before_it_became_an_event_class_reads_the_same(
        self, env: dict[str, str]
    ) -> None:
        leads = self.new_app(env)
        hire(leads, "r1")
        (lead_id,) = stock(leads, 1)
        # Lead.Assigned as the @event method stored it (2026-11-27): same topic, same fields.
        state = (
            b'{"timestamp":"2026-03-02T01:00:00.000001Z","rep_id":"r1","region":"hangzhou",'
            b'"day":"2026-03-02","follow_up_deadline":"2026-03-04T01:00:00Z","former_owner_lock":"P7D",'
            b'"distribution_id":null,"meta":{"actor_id":"admin-1","actor_role":"admin",'
            b'"at":"2026-03-02T01:00:00Z","correlation_id":"","causation_id":""}}'
        )
        topic = "services.leads.domain.lead:Lead.Assigned"
        event = leads.mapper.to_domain_event(StoredEvent(UUID(lead_id), 2, topic, state))
        leads.events.put([event])
        again = self.new_app(env)
        assert again.workbench("r1", at(1)).assigned[0].deadline == at(48)
        assert again.lead(lead_id).owners[0].since == T0
        assert again.repository.get(UUID(lead_id)).status == "assigned"

    def test_a_fresh_process_rebuilds_the_same_views_from_the_store(self, env: dict[str, str]) -> None:
        leads = self.new_app(env)
        hire(leads, "r1")
        stock(leads, 40)
        leads.distribute(DAY, system())
        before = leads.workbench("r1", at(1))
        again = self.new_app(env)
        assert again.workbench("r1", at(1)) == before
        assert again.pool_by_region() == leads.pool_by_region()
        assert again.reclaim_overdue(at(49)) and leads.workbench("r1", at(49)).assigned == ()

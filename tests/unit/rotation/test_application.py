"""The rotation application end to end on an event store: plan, approve, defer, decline, carry out."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from services.rotation.application import RotationApplication, RotationInfeasible
from services.rotation.domain.solver import Plan
from services.rotation.integration import to_integration
from services.rotation.policy import RotationPolicy
from shared.domain import Conflict, Forbidden, NotFound, RuleViolated
from shared.events import rotation as public
from shared.events.catalog import decode, make_envelope
from tests.support.stores import sqlite_env
from tests.unit.rotation.support import as_manager, at, hr, move_pairs, staff

SETUP = at(2025, 12, 1)
NOW = at(2026, 1, 10)
DUE = at(2025, 6, 1)
POLICY = RotationPolicy(draw_in_early_movers=False)


def preview(app: RotationApplication, as_of: datetime) -> Plan:
    result = app.preview_plan(as_of)
    assert isinstance(result, Plan), result
    return result


class TestRotationApplication:
    def env(self, tmp_path: Path) -> dict[str, str]:
        return {}

    @pytest.fixture
    def app(self, tmp_path: Path) -> RotationApplication:
        app = RotationApplication(env=self.env(tmp_path), policy=POLICY)
        staff(
            app,
            {
                "ann": ("hangzhou", DUE),
                "bob": ("shanghai", DUE),
                "cat": ("suzhou", DUE),
                "dan": ("wuhan", at(2025, 11, 1)),
            },
            when=SETUP,
        )
        return app

    def published(self, app: RotationApplication) -> list[Any]:
        """Every public event the relay would send, decoded back as a consumer reads it."""
        events = []
        for notification in app.recorder.select_notifications(0, 1000):
            domain_event: Any = app.mapper.to_domain_event(notification)
            item = to_integration(domain_event)
            if item is None:
                continue
            envelope = make_envelope(
                item,
                aggregate_id=domain_event.originator_id,
                aggregate_version=domain_event.originator_version,
                meta=domain_event.meta.as_dict(),
                recorded_at=domain_event.timestamp,
            )
            events.append(decode(envelope.to_bytes())[1])
        return events

    def test_the_due_list_names_who_is_due_and_how_overdue(self, app: RotationApplication) -> None:
        due = app.due_list(NOW)
        assert due.manager_ids == ("ann", "bob", "cat")
        assert due.due[0].overdue_days == (NOW - at(2025, 12, 1)).days
        assert app.due_list(at(2025, 12, 1) - timedelta(seconds=1)).due == ()

    def test_an_approved_plan_moves_its_managers_on_the_effective_date_and_not_before(
        self, app: RotationApplication
    ) -> None:
        plan_id = app.propose_plan(hr(NOW), effective_at=NOW + timedelta(days=30))
        app.approve_plan(plan_id, hr(NOW))
        assert app.carry_out_due_moves(NOW + timedelta(days=30) - timedelta(seconds=1)) == ()
        assert app.manager("ann").region == "hangzhou"

        assert app.carry_out_due_moves(NOW + timedelta(days=30)) == (plan_id,)
        moves = move_pairs(app, plan_id)
        assert set(moves) == {"ann", "bob", "cat"}
        for manager_id, region in moves.items():
            assert app.manager(manager_id).region == region
            assert app.manager_of(region) == manager_id
        assert app.manager_of("wuhan") == "dan"  # not due: untouched
        assert app.plan(plan_id).status == "carried_out"
        assert app.carry_out_due_moves(NOW + timedelta(days=31)) == ()  # once only

        rotated = [e for e in self.published(app) if isinstance(e, public.ManagerRotated)]
        assert {(e.manager_id, e.to_region) for e in rotated} == set(moves.items())
        assert all(e.effective_at == NOW + timedelta(days=30) and e.plan_id == str(plan_id) for e in rotated)
        assert {e.from_region for e in rotated} == {"hangzhou", "shanghai", "suzhou"}

    def test_the_default_effective_date_is_the_notice_period_after_planning(
        self, app: RotationApplication
    ) -> None:
        plan_id = app.propose_plan(hr(NOW))
        assert app.plan(plan_id).effective_at == NOW + timedelta(days=POLICY.notice_days)

    def test_every_public_event_of_a_rotation_is_published(self, app: RotationApplication) -> None:
        plan_id = app.propose_plan(hr(NOW))
        app.approve_plan(plan_id, hr(NOW))
        app.carry_out_due_moves(NOW + timedelta(days=30))
        events = self.published(app)
        types = {type(e).__name__ for e in events}
        assert {
            "RegionOpened",
            "ManagerAppointed",
            "RotationPlanned",
            "RotationApproved",
            "ManagerRotated",
        } <= types
        appointed = [e for e in events if isinstance(e, public.ManagerAppointed)]
        assert ("ann", "hangzhou", DUE) in {(e.manager_id, e.region, e.appointed_at) for e in appointed}
        planned = next(e for e in events if isinstance(e, public.RotationPlanned))
        assert {m.manager_id for m in planned.moves} == {"ann", "bob", "cat"}
        assert planned.total_cost == pytest.approx(sum(m.cost for m in planned.moves), abs=0.05)

    def test_a_deferral_removes_the_manager_from_the_next_plan(self, app: RotationApplication) -> None:
        app.request_deferral("bob", "child's school exams", NOW + timedelta(days=60), as_manager("bob", NOW))
        assert [m.manager_id for m in app.deferral_requests()] == ["bob"]
        # Until approved, a request changes nothing: bob would still move.
        assert "bob" in {m.manager_id for m in preview(app, NOW).moves}
        app.approve_deferral("bob", hr(NOW))
        plan_id = app.propose_plan(hr(NOW))
        plan = app.plan(plan_id)
        assert set(move_pairs(app, plan_id)) == {"ann", "cat"}
        assert "shanghai" not in move_pairs(app, plan_id).values()
        assert [s.manager_id for s in plan.staying] == ["bob"]
        deferred = [e for e in self.published(app) if isinstance(e, public.RotationDeferred)]
        assert [(e.manager_id, e.region, e.until) for e in deferred] == [
            ("bob", "shanghai", NOW + timedelta(days=60))
        ]

    def test_a_deferral_granted_after_planning_withdraws_the_plan_that_would_move_them(
        self, app: RotationApplication
    ) -> None:
        plan_id = app.propose_plan(hr(NOW))
        app.approve_plan(plan_id, hr(NOW))
        app.request_deferral("bob", "spouse's surgery", NOW + timedelta(days=60), as_manager("bob", NOW))
        assert app.approve_deferral("bob", hr(NOW)) == (plan_id,)
        assert app.plan(plan_id).status == "withdrawn"
        assert app.carry_out_due_moves(NOW + timedelta(days=30)) == ()
        assert app.manager("bob").region == "shanghai"

    def test_a_declined_rotation_shows_in_the_history_and_withdraws_the_plan(
        self, app: RotationApplication
    ) -> None:
        plan_id = app.propose_plan(hr(NOW))
        offered = move_pairs(app, plan_id)["cat"]
        app.decline_rotation("cat", plan_id, "caring for parents", as_manager("cat", NOW))
        assert app.plan(plan_id).status == "withdrawn"
        assert "cat declined" in app.plan(plan_id).withdrawn_because
        history = app.history("cat", viewer_id="cat", viewer_role="manager")
        assert [h.kind for h in history] == ["appointed", "rotation_declined"]
        assert offered in history[-1].detail
        declined = [e for e in self.published(app) if isinstance(e, public.RotationDeclined)]
        assert [(e.manager_id, e.offered_region) for e in declined] == [("cat", offered)]
        # The next plan leaves cat where they are for the hold period.
        replan = app.plan(app.propose_plan(hr(NOW + timedelta(days=1))))
        assert [s.manager_id for s in replan.staying] == ["cat"]
        hold_ends = NOW + timedelta(days=POLICY.decline_hold_days)
        still_held = preview(app, hold_ends - timedelta(seconds=1))
        assert [s.manager_id for s in still_held.staying] == ["cat"]
        released = preview(app, hold_ends)
        assert released.staying == () and "cat" in {m.manager_id for m in released.moves}

    def test_a_manager_cannot_decline_a_plan_that_does_not_move_them(self, app: RotationApplication) -> None:
        plan_id = app.propose_plan(hr(NOW))
        with pytest.raises(RuleViolated) as error:
            app.decline_rotation("dan", plan_id, "no", as_manager("dan", NOW))
        assert error.value.field == "manager_id"
        with pytest.raises(Forbidden):
            app.decline_rotation("ann", plan_id, "no", as_manager("bob", NOW))

    def test_an_infeasible_plan_is_refused_with_the_managers_named(self, app: RotationApplication) -> None:
        for manager_id in ("bob", "cat"):
            app.request_deferral(manager_id, "hardship", NOW + timedelta(days=30), hr(NOW))
            app.approve_deferral(manager_id, hr(NOW))
        with pytest.raises(RotationInfeasible) as error:
            app.propose_plan(hr(NOW))
        assert error.value.details["manager_ids"] == ["ann"]
        assert "ann must move from hangzhou" in error.value.message
        assert app.plans() == ()

    def test_nobody_returns_to_a_region_held_in_recent_postings(self, app: RotationApplication) -> None:
        app.register_manager("eve", "Eve", "regional", 30.0, 120.0, hr(SETUP))
        app.record_past_posting("eve", "hangzhou", at(2024, 1, 1), at(2024, 12, 1), hr(SETUP))
        app.record_past_posting("eve", "suzhou", at(2024, 12, 1), at(2025, 5, 1), hr(SETUP))
        app.open_region("xian", "Xi'an", 34.34, 108.94, hr(SETUP))
        app.appoint_manager("eve", "xian", hr(SETUP), since=at(2025, 5, 1))
        moves = {m.manager_id: m.to_region for m in preview(app, NOW).moves}
        assert moves["eve"] not in {"hangzhou", "suzhou", "xian"}

    def test_a_new_proposal_supersedes_one_still_waiting_but_not_one_approved(
        self, app: RotationApplication
    ) -> None:
        first = app.propose_plan(hr(NOW))
        second = app.propose_plan(hr(NOW))
        assert app.plan(first).status == "withdrawn" and app.plan(second).status == "proposed"
        app.approve_plan(second, hr(NOW))
        with pytest.raises(Conflict, match="withdraw it"):
            app.propose_plan(hr(NOW))
        app.withdraw_plan(second, "budget freeze", hr(NOW))
        assert app.plan(app.propose_plan(hr(NOW))).status == "proposed"

    def test_only_hr_or_admin_plan_and_approve(self, app: RotationApplication) -> None:
        with pytest.raises(Forbidden):
            app.propose_plan(as_manager("ann", NOW))
        plan_id = app.propose_plan(hr(NOW))
        with pytest.raises(Forbidden):
            app.approve_plan(plan_id, as_manager("ann", NOW))
        with pytest.raises(Forbidden):
            app.withdraw_plan(plan_id, "no", as_manager("ann", NOW))

    def test_managers_see_their_own_history_only(self, app: RotationApplication) -> None:
        assert app.history("ann", viewer_id="ann", viewer_role="manager")[0].region == "hangzhou"
        assert app.history("ann", viewer_id="hr-1", viewer_role="hr")
        with pytest.raises(Forbidden):
            app.history("ann", viewer_id="bob", viewer_role="manager")
        with pytest.raises(Forbidden):
            app.history("ann", viewer_id="ann", viewer_role="rep")

    def test_a_region_has_one_manager_and_duplicates_are_refused(self, app: RotationApplication) -> None:
        with pytest.raises(Conflict) as error:
            app.open_region("hangzhou", "Hangzhou", 30.0, 120.0, hr(NOW))
        assert error.value.field == "code"
        with pytest.raises(Conflict):
            app.register_manager("ann", "Ann", "regional", 30.0, 120.0, hr(NOW))
        app.register_manager("eve", "Eve", "regional", 30.0, 120.0, hr(NOW))
        with pytest.raises(Conflict, match="managed by ann"):
            app.appoint_manager("eve", "hangzhou", hr(NOW))
        with pytest.raises(NotFound):
            app.appoint_manager("eve", "atlantis", hr(NOW))
        app.appoint_manager("eve", "chengdu", hr(NOW))
        assert app.manager_of("chengdu") == "eve"

    def test_unknown_things_are_not_found(self, app: RotationApplication) -> None:
        with pytest.raises(NotFound):
            app.manager("nobody")
        with pytest.raises(NotFound):
            app.plan(uuid4())
        with pytest.raises(NotFound):
            app.request_deferral("nobody", "x", NOW + timedelta(days=1), hr(NOW))

    def test_read_models_rebuilt_from_the_store_give_the_same_answers(self, app: RotationApplication) -> None:
        plan_id = app.propose_plan(hr(NOW))
        app.approve_plan(plan_id, hr(NOW))
        app.carry_out_due_moves(NOW + timedelta(days=30))
        before = (app.regions(), app.manager("ann"), app.plan(plan_id))
        assert app.rebuild_read_models() > 0
        assert (app.regions(), app.manager("ann"), app.plan(plan_id)) == before

    def test_nobody_due_means_no_plan(self, app: RotationApplication) -> None:
        with pytest.raises(RuleViolated, match="nobody is due"):
            app.propose_plan(hr(at(2025, 11, 30)))


class TestRotationApplicationOnSQLite(TestRotationApplication):
    def env(self, tmp_path: Path) -> dict[str, str]:
        return sqlite_env(tmp_path / "rotation.db")

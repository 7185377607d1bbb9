"""Logging and correcting visits through the application: validation, the recorded time, retries,
corrections as new events, and the seed's story told from the events."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.visits.application import VisitsApplication
from services.visits.domain.values import GeoPoint
from services.visits.domain.visit_log import VisitLog
from services.visits.policy import VisitsPolicy
from shared.domain import Conflict, NotFound, RuleViolated
from tests.support.stores import sqlite_env
from tests.unit.visits.support import HANGZHOU, PHOTO, LeadsTopic, at, rep


def customer(i: int) -> GeoPoint:
    """Customers about 2 km apart along one road."""
    return GeoPoint(30.2741, 120.1551 + 0.02 * i, 8.0)


def photo(i: int) -> str:
    return f"sha256:{i:064x}"


class TestLoggingAVisit:
    """On the in-memory store; re-run on SQLite below by overriding `make_env`."""

    @pytest.fixture
    def app(self, tmp_path: Path) -> VisitsApplication:
        return VisitsApplication(env=self.make_env(tmp_path))

    def make_env(self, tmp_path: Path) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}

    @pytest.fixture
    def leads(self, app: VisitsApplication) -> LeadsTopic:
        topic = LeadsTopic(app)
        topic.owned_lead("L1", "r1", at(-24))
        return topic

    def log(self, app: VisitsApplication, visited_at: datetime, now: datetime, **kw: Any) -> str:
        args: dict[str, Any] = {"position": HANGZHOU, "checkin_position": HANGZHOU, "photo_hash": PHOTO}
        args.update(kw)
        return app.log_visit(
            lead_id=str(args.pop("lead_id", "L1")), visited_at=visited_at, meta=rep("r1", now), **args
        )

    def test_a_visit_is_recorded_at_the_services_time_for_the_rep_in_the_token(
        self, app: VisitsApplication, leads: LeadsTopic
    ) -> None:
        visit_id = self.log(app, at(1), at(1, minutes=20), notes="met the owner")
        view = app.get_visit(visit_id)
        assert (view.rep_id, view.lead_id, view.region) == ("r1", "L1", "hangzhou")
        assert view.visited_at == at(1) and view.recorded_at == at(1, minutes=20)
        assert view.notes == "met the owner" and view.flag_ids == ()
        stored = [type(e).__name__ for e in app.events.get(VisitLog.create_id("r1"))]
        assert stored == ["Opened", "VisitLogged"]
        assert app.list_visits(rep_id="r1") == [view]

    def test_a_time_in_the_future_is_refused_beyond_the_clock_tolerance(
        self, app: VisitsApplication, leads: LeadsTopic
    ) -> None:
        tolerance = VisitsPolicy().future_tolerance
        assert self.log(app, at(1) + tolerance, at(1))
        with pytest.raises(RuleViolated) as refused:
            self.log(app, at(2) + tolerance + timedelta(seconds=1), at(2))
        assert refused.value.field == "visited_at" and "future" in refused.value.message

    def test_a_time_without_a_timezone_is_refused(self, app: VisitsApplication, leads: LeadsTopic) -> None:
        with pytest.raises(RuleViolated) as refused:
            self.log(app, at(1).replace(tzinfo=None), at(2))
        assert refused.value.field == "visited_at"

    def test_a_visit_older_than_the_backdating_limit_cannot_be_logged(
        self, app: VisitsApplication, leads: LeadsTopic
    ) -> None:
        limit = VisitsPolicy().max_backdating
        now = at(0, days=100)
        with pytest.raises(RuleViolated) as refused:
            self.log(app, now - limit - timedelta(seconds=1), now)
        assert refused.value.field == "visited_at"

    @pytest.mark.parametrize(
        ("kw", "field"),
        [
            ({"position": GeoPoint(90.5, 120.0)}, "position.lat"),
            ({"position": GeoPoint(30.0, -180.1)}, "position.lon"),
            ({"checkin_position": GeoPoint(30.0, 120.0, -1.0)}, "checkin_position.accuracy_m"),
            ({"checkin_position": GeoPoint(float("nan"), 120.0)}, "checkin_position.lat"),
            ({"photo_hash": "not a hash"}, "photo_hash"),
            ({"left_at": at(0)}, "left_at"),
            ({"notes": "x" * 4001}, "notes"),
        ],
    )
    def test_bad_input_is_refused_naming_the_field(
        self, app: VisitsApplication, leads: LeadsTopic, kw: dict[str, object], field: str
    ) -> None:
        with pytest.raises(RuleViolated) as refused:
            self.log(app, at(1), at(2), **kw)
        assert refused.value.field == field

    def test_a_lead_the_leads_service_never_told_us_about_is_not_found(
        self, app: VisitsApplication, leads: LeadsTopic
    ) -> None:
        with pytest.raises(NotFound) as refused:
            self.log(app, at(1), at(2), lead_id="L-invented")
        assert refused.value.field == "lead_id"
        assert app.list_visits(rep_id="r1") == []

    def test_a_retried_request_with_the_same_client_ref_logs_one_visit(
        self, app: VisitsApplication, leads: LeadsTopic
    ) -> None:
        first = self.log(app, at(1), at(1.2), client_ref="phone-42")
        again = self.log(app, at(1), at(1.3), client_ref="phone-42")
        assert first == again and len(app.list_visits(rep_id="r1")) == 1
        with pytest.raises(Conflict) as refused:
            self.log(app, at(1.5), at(1.6), client_ref="phone-42")
        assert refused.value.field == "client_ref"

    def test_a_retried_request_is_answered_with_the_first_requests_recorded_time(
        self, app: VisitsApplication, leads: LeadsTopic
    ) -> None:
        sent: dict[str, Any] = {"position": HANGZHOU, "photo_hash": PHOTO, "client_ref": "phone-7"}
        first = app.record_visit(lead_id="L1", visited_at=at(1), meta=rep("r1", at(1.2)), **sent)
        again = app.record_visit(lead_id="L1", visited_at=at(1), meta=rep("r1", at(1.3)), **sent)
        assert first == again and first.recorded_at == at(1.2)
        assert app.get_visit(first.visit_id).recorded_at == first.recorded_at

    def test_a_correction_is_a_new_event_and_the_logged_visit_stays_in_the_record(
        self, app: VisitsApplication, leads: LeadsTopic
    ) -> None:
        visit_id = self.log(app, at(1), at(1.2), notes="draft")
        app.correct_visit(
            visit_id,
            visited_at=at(0.5),
            notes="met the buyer",
            reason="typed the wrong hour",
            meta=rep("r1", at(2)),
        )
        view = app.get_visit(visit_id)
        assert view.visited_at == at(0.5) and view.notes == "met the buyer"
        assert [c.changed for c in view.corrections] == [("visited_at", "notes")]
        events = list(app.events.get(VisitLog.create_id("r1")))
        logged = [e for e in events if isinstance(e, VisitLog.VisitLogged)]
        assert logged[0].visit.visited_at == at(1) and logged[0].notes == "draft"
        assert isinstance(events[-1], VisitLog.VisitCorrected)

    def test_only_the_rep_can_correct_their_visit_and_only_with_a_reason_and_a_change(
        self, app: VisitsApplication, leads: LeadsTopic
    ) -> None:
        visit_id = self.log(app, at(1), at(1.2))
        with pytest.raises(NotFound):
            app.correct_visit(visit_id, notes="x", reason="mine now", meta=rep("r2", at(2)))
        with pytest.raises(RuleViolated) as no_reason:
            app.correct_visit(visit_id, notes="x", reason="  ", meta=rep("r1", at(2)))
        assert no_reason.value.field == "reason"
        with pytest.raises(RuleViolated, match="changes nothing"):
            app.correct_visit(visit_id, visited_at=at(1), reason="same", meta=rep("r1", at(2)))

    def test_a_corrected_visit_is_judged_again(self, app: VisitsApplication, leads: LeadsTopic) -> None:
        leads.owned_lead("L2", "r2", at(-24))
        visit_id = self.log(app, at(1), at(1.2))
        assert app.get_visit(visit_id).flag_ids == ()
        # Moved back before the rep had the lead: now it was not theirs at that time.
        raised = app.correct_visit(
            visit_id, visited_at=at(-30), reason="it was the week before", meta=rep("r1", at(2))
        )
        assert [app.get_flag(f).rule for f in raised] == ["not_the_owner"]
        assert app.get_flag(raised[0]).origin == "correction"


class TestLoggingAVisitOnSQLite(TestLoggingAVisit):
    """The same behaviour on the SQLite store (snapshots and transcodings included)."""

    def make_env(self, tmp_path: Path) -> dict[str, str]:
        return sqlite_env(tmp_path / "visits.db")


# --- the seed's story -----------------------------------------------------------------------------


def test_one_real_visit_then_an_evening_of_invented_ones_each_is_flagged_with_its_evidence() -> None:
    app = VisitsApplication(env={})
    leads = LeadsTopic(app)
    leads.owned_lead("L-own", "r1", at(-24), customer=customer(0))
    colleague_assignments = {
        lead_id: leads.owned_lead(lead_id, "r2", at(-24), customer=customer(i))
        for i, lead_id in enumerate(["L-a", "L-b", "L-c"], start=1)
    }
    # Morning: the one real visit, logged on the spot with its evidence.
    honest = app.log_visit(
        lead_id="L-own",
        visited_at=at(1),
        position=customer(0),
        checkin_position=customer(0),
        photo_hash=photo(0),
        meta=rep("r1", at(1, minutes=40)),
    )
    # Evening, from home: "a few customers from the system", claimed over the day.
    home = GeoPoint(30.30, 120.10, 15.0)
    invented = {
        lead_id: app.log_visit(
            lead_id=lead_id,
            visited_at=at(claimed),
            position=customer(i),
            checkin_position=home,
            meta=rep("r1", at(13, minutes=3 * i)),
        )
        for i, (lead_id, claimed) in enumerate([("L-a", 3.0), ("L-b", 5.0), ("L-c", 7.5)], start=1)
    }

    assert app.get_visit(honest).flag_ids == ()
    for lead_id, visit_id in invented.items():
        rules = {app.get_flag(f).rule: app.get_flag(f) for f in app.get_visit(visit_id).flag_ids or ()}
        assert {"not_the_owner", "bulk_entry", "far_from_customer", "missing_checkin_evidence"} <= set(rules)
        not_owner = rules["not_the_owner"]
        assert not_owner.evidence == (visit_id, colleague_assignments[lead_id])
        assert not_owner.severity == "serious" and "r2 owned it" in not_owner.reason
        assert set(rules["bulk_entry"].evidence) == set(invented.values())


def test_an_honest_reps_busy_day_raises_no_flag_and_no_breach() -> None:
    app = VisitsApplication(env={})
    leads = LeadsTopic(app)
    for i in range(8):
        leads.owned_lead(f"L{i}", "r3", at(-24), customer=customer(i))
    for i in range(8):
        start = at(1 + i * 1.25)
        app.log_visit(
            lead_id=f"L{i}",
            visited_at=start,
            left_at=start + timedelta(minutes=50),
            position=customer(i),
            checkin_position=customer(i),
            photo_hash=photo(i),
            notes=f"visit {i}",
            meta=rep("r3", start + timedelta(minutes=55)),
        )
    assert len(app.list_visits(rep_id="r3")) == 8
    assert app.list_flags() == []
    assert app.minor_breaches() == []

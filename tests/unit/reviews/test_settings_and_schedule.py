"""The reviews settings read the policy from the environment; the scheduled run opens the
quarter's reviews only inside the review window, once per rep."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.reviews.application import ReviewsApplication
from services.reviews.bootstrap import handlers, jobs, spec
from services.reviews.config import ReviewsSettings
from services.reviews.policy import ReviewsPolicy
from shared.events.catalog import ALL_EVENTS
from tests.unit.reviews.given import Topics


def test_the_policy_is_filled_from_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__MIN_EXAMPLE_CHARS", "25")
    monkeypatch.setenv("IRONARMY_POLICY__REVIEW_WINDOW_DAYS", "7")
    monkeypatch.setenv("IRONARMY_POLICY__OUTCOME__BAND_A_MIN", "0.85")
    monkeypatch.setenv("IRONARMY_POLICY__OUTCOME__EXIT_AFTER_C_BANDS", "3")
    monkeypatch.setenv("IRONARMY_OPEN_REVIEWS_EVERY_MINUTES", "15")

    settings = ReviewsSettings()

    assert isinstance(settings.policy, ReviewsPolicy)
    assert settings.policy.min_example_chars == 25 and settings.policy.review_window_days == 7
    assert settings.policy.outcome.band_a_min == 0.85
    assert settings.policy.outcome.exit_after_c_bands == 3
    assert settings.policy.outcome.band_b_min == ReviewsPolicy().outcome.band_b_min  # untouched default
    assert settings.open_reviews_every_minutes == 15


def test_an_inconsistent_policy_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRONARMY_POLICY__OUTCOME__BAND_B_MIN", "0.9")  # above band A's 0.8
    with pytest.raises(ValidationError, match="band_b_min must not exceed band_a_min"):
        ReviewsSettings()


def test_the_spec_consumes_leads_and_visits_and_maps_every_event_it_reads() -> None:
    service = spec()
    app = ReviewsApplication()
    assert (service.name, tuple(service.consumes)) == ("reviews", ("leads", "visits"))
    consumed = handlers(app)
    assert set(consumed) == {
        "RepRegistered",
        "RepDeactivated",
        "RepReactivated",
        "LeadConverted",
        "VisitLogged",
        "FabricationConfirmed",
    }
    # Each is a real contract of the service it comes from: a misspelt name would never match.
    services = {model.event_type: model.service for model in ALL_EVENTS}
    assert {services[event_type] for event_type in consumed} == set(service.consumes)
    assert [job.name for job in jobs(app, ReviewsSettings())] == ["open_due_reviews"]


class TestScheduledOpening:
    @pytest.fixture
    def app(self) -> ReviewsApplication:
        app = ReviewsApplication(policy=ReviewsPolicy(review_window_days=14))
        topics = Topics(app)
        topics.reps("hangzhou", "rep-1", "rep-2")
        topics.reps("ningbo", "rep-9")
        return app

    def test_nothing_opens_before_the_last_fortnight_of_the_quarter(self, app: ReviewsApplication) -> None:
        assert app.open_due_reviews(datetime(2026, 3, 17, 23, tzinfo=UTC)) == []

    def test_the_window_opens_every_active_reps_review_once_as_the_scheduler(
        self, app: ReviewsApplication
    ) -> None:
        opened = app.open_due_reviews(datetime(2026, 3, 18, 0, tzinfo=UTC))
        assert len(opened) == 3
        assert app.open_due_reviews(datetime(2026, 3, 19, tzinfo=UTC)) == []
        views = app.region_reviews("hangzhou", "2026Q1")
        assert [v.rep_id for v in views] == ["rep-1", "rep-2"]
        stored: list[Any] = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(0, 100)]
        openers = {(e.meta.actor_id, e.meta.actor_role) for e in stored if type(e).__name__ == "Opened"}
        assert ("scheduler", "system") in openers

    def test_a_quarter_that_turned_opens_in_its_own_last_fortnight(self, app: ReviewsApplication) -> None:
        app.open_due_reviews(datetime(2026, 3, 30, tzinfo=UTC))
        assert app.open_due_reviews(datetime(2026, 4, 2, tzinfo=UTC)) == []
        assert len(app.open_due_reviews(datetime(2026, 12, 20, tzinfo=UTC))) == 3
        assert [v.quarter for v in app.rep_history("rep-1").reviews] == ["2026Q1", "2026Q4"]

"""The review cycle: opening, self and manager assessment, performance, calibration, outcome, history."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from uuid import UUID

import pytest

from services.reviews.application import ReviewsApplication
from services.reviews.domain.review import COMPLETED, READY_FOR_CALIBRATION, SELF_ASSESSED, Review
from services.reviews.domain.values import ValueAdjustment, ValueEvidence
from services.reviews.policy import OutcomePolicy, ReviewsPolicy
from shared.domain import Conflict, Forbidden, NotFound, RuleViolated
from tests.support.stores import sqlite_env
from tests.unit.reviews.given import (
    IN_Q1,
    IN_Q2,
    Q1,
    Q2,
    Topics,
    evidence,
    hr,
    lead_converted,
    manager,
    rep,
    rep_deactivated,
    rep_reactivated,
    rep_registered,
    visit_logged,
)

# Performance is conversions / 10 alone, so a test says exactly where a rep lands.
POLICY = ReviewsPolicy(
    outcome=OutcomePolicy(results_weight=1.0, conversions_share=1.0, conversions_target=10)
)


class TestReviewCycle:
    def env(self, tmp_path: Path) -> dict[str, str]:
        return {}

    @pytest.fixture
    def app(self, tmp_path: Path) -> ReviewsApplication:
        return ReviewsApplication(self.env(tmp_path), policy=POLICY)

    @pytest.fixture
    def topics(self, app: ReviewsApplication) -> Topics:
        topics = Topics(app)
        topics.reps("hangzhou", "rep-1", "rep-2")
        topics.reps("ningbo", "rep-9")
        return topics

    def convert(self, topics: Topics, rep_id: str, count: int, at: datetime = IN_Q1) -> None:
        for n in range(count):
            topics.deliver(
                topics.app.on_lead_converted,
                lead_converted(f"lead-{rep_id}-{at:%m}-{n}", rep_id, at),
                source=f"l{n}",
                at=at,
            )

    def calibrated(
        self,
        app: ReviewsApplication,
        rep_id: str = "rep-1",
        quarter: str = Q1,
        scores: tuple[int, ...] = (4, 4, 4, 4, 4, 4),
        at: datetime = IN_Q1,
    ) -> UUID:
        review_id = app.open_review(rep_id, quarter, hr(at))
        app.assess_values(review_id, evidence(*scores), manager(at), caller_region="hangzhou")
        app.rate_performance(
            review_id, 3, "steady quarter, kept every follow-up", manager(at), caller_region="hangzhou"
        )
        app.calibrate(review_id, [], None, "consistent with the region", hr(at))
        return review_id

    # --- opening ------------------------------------------------------------------------

    def test_a_region_run_opens_one_review_per_active_rep_and_skips_those_already_open(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        topics.deliver(
            app.on_rep_registered, rep_registered("rep-3", "hangzhou", active=False), source="rep-rep-3"
        )
        first = app.open_review("rep-1", Q1, hr())

        opened = app.open_quarter_reviews("hangzhou", Q1, manager(), caller_region="hangzhou")

        assert opened == [Review.create_id("rep-2", Q1)]
        assert first == Review.create_id("rep-1", Q1)
        assert [v.rep_id for v in app.region_reviews("hangzhou", Q1)] == ["rep-1", "rep-2"]
        assert app.open_quarter_reviews("hangzhou", Q1, hr()) == []

    def test_a_rep_who_moved_region_is_reviewed_in_the_new_one(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        topics.deliver(app.on_rep_registered, rep_registered("rep-2", "ningbo"), source="rep-rep-2")
        assert app.active_reps("hangzhou") == ["rep-1"]
        assert app.open_quarter_reviews("ningbo", Q1, hr()) == [
            Review.create_id("rep-2", Q1),
            Review.create_id("rep-9", Q1),
        ]

    def test_a_rep_who_left_is_no_longer_reviewed(self, app: ReviewsApplication, topics: Topics) -> None:
        assert topics.deliver(app.on_rep_deactivated, rep_deactivated("rep-2"), source="rep-rep-2") is True
        assert (
            topics.deliver(app.on_rep_deactivated, rep_deactivated("rep-404"), source="rep-rep-404") is True
        )
        assert app.active_reps("hangzhou") == ["rep-1"]
        assert app.open_quarter_reviews("hangzhou", Q1, hr()) == [Review.create_id("rep-1", Q1)]

    def test_a_rep_who_came_back_is_reviewed_again_in_their_region(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        topics.deliver(app.on_rep_deactivated, rep_deactivated("rep-2"), source="rep-rep-2")
        topics.deliver(app.on_rep_reactivated, rep_reactivated("rep-2"), source="rep-rep-2")
        assert app.active_reps("hangzhou") == ["rep-1", "rep-2"]

    def test_a_manager_opens_reviews_only_in_their_region(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        with pytest.raises(Forbidden, match="ningbo"):
            app.open_quarter_reviews("hangzhou", Q1, manager(), caller_region="ningbo")
        with pytest.raises(Forbidden):
            app.open_review("rep-1", Q1, rep("rep-1"))

    def test_a_quarter_not_yet_started_cannot_be_reviewed(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        with pytest.raises(RuleViolated, match="not started") as refused:
            app.open_review("rep-1", Q2, hr(IN_Q1))
        assert refused.value.field == "quarter"
        with pytest.raises(RuleViolated, match="2026-Q1"):
            app.open_review("rep-1", "2026-Q1", hr())

    def test_opening_for_an_unknown_or_inactive_rep_or_empty_region_is_refused(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        with pytest.raises(NotFound):
            app.open_review("rep-404", Q1, hr())
        topics.deliver(
            app.on_rep_registered, rep_registered("rep-1", "hangzhou", active=False), source="rep-rep-1"
        )
        with pytest.raises(RuleViolated, match="not active"):
            app.open_review("rep-1", Q1, hr())
        with pytest.raises(RuleViolated, match="no active reps"):
            app.open_quarter_reviews("shenzhen", Q1, hr())

    def test_a_review_is_opened_once_per_rep_and_quarter(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        app.open_review("rep-1", Q1, hr())
        with pytest.raises(Conflict):
            app.open_review("rep-1", Q1, hr())

    # --- self-assessment ------------------------------------------------------------------

    def test_a_rep_writes_their_own_self_assessment_and_only_theirs(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        review_id = app.open_review("rep-1", Q1, hr())
        with pytest.raises(Forbidden):
            app.self_assess(review_id, evidence(3, 3, 3, 3, 3, 3), rep("rep-2"))
        with pytest.raises(Forbidden):
            app.self_assess(review_id, evidence(3, 3, 3, 3, 3, 3), manager())

        app.self_assess(review_id, evidence(3, 3, 3, 3, 3, 2), rep("rep-1"))

        view = app.review(review_id)
        assert view.stage == SELF_ASSESSED
        assert view.self_scores is not None and view.self_scores["dedication"] == 2

    @pytest.mark.parametrize("example", ["", "   ", "too short"])
    def test_a_point_without_a_written_example_is_refused(
        self, app: ReviewsApplication, topics: Topics, example: str
    ) -> None:
        review_id = app.open_review("rep-1", Q1, hr())
        points = [*evidence(2, 2, 2, 2, 2, 2), ValueEvidence("integrity", 3, example)]
        with pytest.raises(RuleViolated, match="integrity level 3") as refused:
            app.self_assess(review_id, points, rep("rep-1"))
        assert refused.value.field == "evidence[12].example"
        assert app.review(review_id).self_scores is None

    def test_an_example_just_long_enough_counts(self, app: ReviewsApplication, topics: Topics) -> None:
        review_id = app.open_review("rep-1", Q1, hr())
        with pytest.raises(RuleViolated, match="9 characters"):
            app.self_assess(review_id, [ValueEvidence("passion", 1, "主动加班帮同事签单")], rep("rep-1"))
        app.self_assess(review_id, [ValueEvidence("passion", 1, "主动加班帮同事签下单")], rep("rep-1"))
        scores = app.review(review_id).self_scores
        assert scores is not None and scores["passion"] == 1 and scores["integrity"] == 0

    @pytest.mark.parametrize(
        ("point", "field"),
        [
            (ValueEvidence("charisma", 1, "a long enough example"), "evidence[0].value"),
            (ValueEvidence("teamwork", 6, "a long enough example"), "evidence[0].level"),
            (ValueEvidence("teamwork", 0, "a long enough example"), "evidence[0].level"),
        ],
    )
    def test_a_point_outside_the_six_values_or_the_five_levels_is_refused(
        self, app: ReviewsApplication, topics: Topics, point: ValueEvidence, field: str
    ) -> None:
        review_id = app.open_review("rep-1", Q1, hr())
        with pytest.raises(RuleViolated) as refused:
            app.self_assess(review_id, [point], rep("rep-1"))
        assert refused.value.field == field

    def test_the_self_assessment_closes_once_the_manager_has_assessed(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        review_id = app.open_review("rep-1", Q1, hr())
        app.assess_values(review_id, evidence(3, 3, 3, 3, 3, 3), manager(), caller_region="hangzhou")
        with pytest.raises(Conflict, match="self-assessment is closed"):
            app.self_assess(review_id, evidence(5, 5, 5, 5, 5, 5), rep("rep-1"))

    # --- the manager ---------------------------------------------------------------------

    def test_a_manager_assesses_and_rates_only_in_their_region(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        review_id = app.open_review("rep-1", Q1, hr())
        with pytest.raises(Forbidden):
            app.assess_values(review_id, evidence(3, 3, 3, 3, 3, 3), manager(), caller_region="ningbo")
        with pytest.raises(Forbidden):
            app.assess_values(review_id, evidence(3, 3, 3, 3, 3, 3), hr(), caller_region="hangzhou")
        with pytest.raises(Forbidden):
            app.rate_performance(review_id, 4, "a good quarter overall", manager(), caller_region="ningbo")
        assert app.review(review_id).manager_scores is None

    def test_the_manager_records_levels_met_and_the_score_is_the_top_of_the_unbroken_run(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        review_id = app.open_review("rep-1", Q1, hr())
        points = [
            *evidence(3, 3, 3, 3, 3, 3),
            ValueEvidence("integrity", 5, "returned a customer's overpayment"),
        ]
        app.assess_values(review_id, points, manager(), caller_region="hangzhou")
        scores = app.review(review_id).manager_scores
        assert scores is not None and scores["integrity"] == 3  # the 5 is not earned without the 4
        assert app.manager_evidence(review_id)[-1].level == 5  # but it stays on record

    def test_performance_is_rated_beside_the_results_counted_from_consumed_events(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        self.convert(topics, "rep-1", 3)
        # The same lead converted again (a replayed source) counts once.
        topics.deliver(app.on_lead_converted, lead_converted("lead-rep-1-03-0", "rep-1"), source="again")
        for n in range(4):
            topics.deliver(app.on_visit_logged, visit_logged(f"v{n}", "rep-1", IN_Q1), source=f"visit-{n}")
        topics.deliver(app.on_visit_logged, visit_logged("v-q2", "rep-1", IN_Q2), source="visit-q2", at=IN_Q2)
        review_id = app.open_review("rep-1", Q1, hr())

        shown = app.rate_performance(
            review_id, 4, "three conversions, all followed up", manager(), caller_region="hangzhou"
        )

        assert (shown.conversions, shown.visits) == (3, 4)
        assert app.quarter_results("rep-1", Q2).visits == 1
        assert app.review(review_id).rating == 4
        with pytest.raises(RuleViolated, match="1 to 5"):
            app.rate_performance(review_id, 6, "off the scale entirely", manager(), caller_region="hangzhou")
        with pytest.raises(RuleViolated) as no_comment:
            app.rate_performance(review_id, 4, " ", manager(), caller_region="hangzhou")
        assert no_comment.value.field == "comment"

    def test_a_redelivered_event_changes_nothing(self, app: ReviewsApplication, topics: Topics) -> None:
        assert (
            topics.deliver(app.on_lead_converted, lead_converted("lead-x", "rep-1"), source="lead-x") is True
        )
        assert topics.redeliver_last(app.on_lead_converted) is False
        assert app.quarter_results("rep-1", Q1).conversions == 1

    # --- hr ------------------------------------------------------------------------------

    def test_hr_calibrates_only_after_the_manager_has_assessed_and_rated(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        review_id = app.open_review("rep-1", Q1, hr())
        app.assess_values(review_id, evidence(3, 3, 3, 3, 3, 3), manager(), caller_region="hangzhou")
        with pytest.raises(RuleViolated, match="rate performance before"):
            app.calibrate(review_id, [], None, "region-wide consistency", hr())
        app.rate_performance(review_id, 3, "kept every follow-up", manager(), caller_region="hangzhou")
        assert app.review(review_id).stage == READY_FOR_CALIBRATION
        with pytest.raises(Forbidden):
            app.calibrate(review_id, [], None, "region-wide consistency", manager())
        with pytest.raises(RuleViolated) as no_reason:
            app.calibrate(review_id, [], None, "", hr())
        assert no_reason.value.field == "reason"

        app.calibrate(review_id, [ValueAdjustment("teamwork", 2)], 4, "teamwork example is thin", hr())

        view = app.review(review_id)
        assert view.calibrated_scores is not None and view.calibrated_scores["teamwork"] == 2
        assert view.calibrated_scores["integrity"] == 3 and view.calibrated_rating == 4
        with pytest.raises(Conflict, match="calibrated"):
            app.assess_values(review_id, evidence(5, 5, 5, 5, 5, 5), manager(), caller_region="hangzhou")

    def test_completing_a_review_computes_its_outcome_from_calibrated_scores_and_results(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        self.convert(topics, "rep-1", 8)
        review_id = self.calibrated(app, scores=(4, 4, 4, 4, 4, 5))
        app.calibrate(review_id, [ValueAdjustment("dedication", 4)], None, "dedication 5 not shown", hr())
        with pytest.raises(Forbidden):
            app.complete_review(review_id, manager())

        outcome = app.complete_review(review_id, hr())

        assert outcome.values_score == 0.8 and outcome.performance_score == 0.8
        assert (outcome.band, outcome.category, outcome.promotable) == ("A", "star", True)
        view = app.review(review_id)
        assert view.stage == COMPLETED and view.outcome == outcome

    def test_completing_needs_calibration_first(self, app: ReviewsApplication, topics: Topics) -> None:
        review_id = app.open_review("rep-1", Q1, hr())
        with pytest.raises(RuleViolated, match="calibrate"):
            app.complete_review(review_id, hr())

    def test_nobody_edits_a_completed_review_a_correction_is_a_new_event(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        self.convert(topics, "rep-1", 8)
        review_id = self.calibrated(app)
        first = app.complete_review(review_id, hr())
        for edit in (
            lambda: app.assess_values(
                review_id, evidence(1, 1, 1, 1, 1, 1), manager(), caller_region="hangzhou"
            ),
            lambda: app.rate_performance(
                review_id, 1, "changed my mind now", manager(), caller_region="hangzhou"
            ),
            lambda: app.calibrate(review_id, [], 1, "late calibration attempt", hr()),
            lambda: app.complete_review(review_id, hr()),
        ):
            with pytest.raises(Conflict, match="completed"):
                edit()
        assert app.review(review_id).outcome == first

        corrected = app.correct_review(
            review_id, [ValueAdjustment("integrity", 0)], None, "appeal upheld", hr()
        )

        assert first.category == "star" and corrected.category == "wild_dog"
        assert corrected.promotable is False
        view = app.review(review_id)
        assert view.outcome == corrected and view.corrections == 1
        with pytest.raises(RuleViolated):
            app.correct_review(review_id, [], None, "nothing to change", hr())

    def test_a_second_c_band_in_a_row_raises_the_exit_warning(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        q1 = self.calibrated(app, scores=(3, 3, 3, 3, 3, 3))  # values 0.6, no results: C
        assert app.complete_review(q1, hr()).exit_warning is False
        q2 = self.calibrated(app, quarter=Q2, scores=(3, 3, 3, 3, 3, 3), at=IN_Q2)

        outcome = app.complete_review(q2, hr(IN_Q2))

        assert outcome.band == "C" and outcome.exit_warning is True
        assert "2 consecutive C bands" in outcome.reasons

    def test_a_reps_history_shows_reviews_over_time_with_their_trend(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        q1 = self.calibrated(app, scores=(3, 3, 3, 3, 3, 3))
        app.complete_review(q1, hr())
        assert app.rep_history("rep-1").trend == "not_enough_history"
        self.convert(topics, "rep-1", 9, at=IN_Q2)
        q2 = self.calibrated(app, quarter=Q2, at=IN_Q2)
        app.complete_review(q2, hr(IN_Q2))

        history = app.rep_history("rep-1")

        assert [v.quarter for v in history.reviews] == [Q1, Q2]
        assert history.trend == "improving"
        assert app.rep_history("rep-2").reviews == []

    def test_a_regions_distribution_counts_bands_categories_and_stages(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        self.convert(topics, "rep-1", 8)
        star = self.calibrated(app, "rep-1")
        app.complete_review(star, hr())
        app.open_review("rep-2", Q1, hr())

        spread = app.region_distribution("hangzhou", Q1)

        assert (spread.reviews, spread.completed) == (2, 1)
        assert spread.by_band == {"A": 1} and spread.by_category == {"star": 1}
        assert spread.by_stage == {"completed": 1, "open": 1}
        assert (spread.promotable, spread.bonus_eligible, spread.exit_warnings) == (1, 1, 0)
        assert app.region_distribution("ningbo", Q1).reviews == 0

    def test_read_models_rebuilt_from_the_store_answer_the_same(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        review_id = self.calibrated(app)
        app.complete_review(review_id, hr())
        before = app.review(review_id)
        app.rebuild_read_models()
        assert app.review(review_id) == before
        assert app.active_reps("hangzhou") == ["rep-1", "rep-2"]


class TestReviewCycleOnSQLite(TestReviewCycle):
    def env(self, tmp_path: Path) -> dict[str, str]:
        return sqlite_env(tmp_path / "reviews.db")

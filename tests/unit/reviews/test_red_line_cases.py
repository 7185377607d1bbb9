"""Red lines: the rule list as data, cases from confirmed fabrications or by hand, decided by people."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from uuid import UUID

import pytest

from services.reviews.application import ReviewsApplication
from services.reviews.domain.red_line import RedLineCase
from services.reviews.domain.rep import Rep
from services.reviews.domain.results import QuarterResults
from services.reviews.domain.values import EvidenceLink
from services.reviews.policy import OutcomePolicy, RedLineRule, ReviewsPolicy
from shared.domain import Conflict, Forbidden, NotFound, RuleViolated
from tests.support.stores import sqlite_env
from tests.unit.reviews.given import (
    IN_Q1,
    IN_Q2,
    Q1,
    Q2,
    Topics,
    evidence,
    fabrication_confirmed,
    hr,
    lead_converted,
    manager,
    meta,
    rep_registered,
    visit_logged,
)

QC = ("qc-1", "qc")
# Full results are one conversion and one visit, to keep the tests short.
POLICY = ReviewsPolicy(outcome=OutcomePolicy(conversions_target=1, visits_target=1))


class TestRedLineCases:
    def env(self, tmp_path: Path) -> dict[str, str]:
        return {}

    @pytest.fixture
    def app(self, tmp_path: Path) -> ReviewsApplication:
        return ReviewsApplication(self.env(tmp_path), policy=POLICY)

    @pytest.fixture
    def topics(self, app: ReviewsApplication) -> Topics:
        topics = Topics(app)
        topics.reps("hangzhou", "rep-1", "rep-2")
        return topics

    def fabrication(self, topics: Topics, visit_id: str = "visit-7", at: datetime = IN_Q1) -> UUID:
        topics.deliver(
            topics.app.on_fabrication_confirmed,
            fabrication_confirmed("rep-1", visit_id, "hangzhou", at),
            source=f"flag-{visit_id}",
            at=at,
            actor=QC,
        )
        return RedLineCase.create_id(RedLineCase.fabrication_key(visit_id))

    def calibrated(self, topics: Topics) -> UUID:
        """rep-1's Q1 review, calibrated, on the way to a star: full results, full marks."""
        app = topics.app
        topics.deliver(app.on_lead_converted, lead_converted("lead-1", "rep-1"), source="lead-1")
        topics.deliver(app.on_visit_logged, visit_logged("visit-1", "rep-1", IN_Q1), source="visit-1")
        review_id = app.open_review("rep-1", Q1, hr())
        app.assess_values(review_id, evidence(5, 5, 5, 5, 5, 5), manager(), caller_region="hangzhou")
        app.rate_performance(review_id, 5, "best quarter in the region", manager(), caller_region="hangzhou")
        app.calibrate(review_id, [], None, "consistent with the region", hr())
        return review_id

    # --- opened from the visits service -------------------------------------------------

    def test_a_confirmed_fabrication_opens_one_case_with_its_evidence_however_often_delivered(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        case_id = self.fabrication(topics)
        self.fabrication(topics)  # re-published under a new position: still one case

        cases = app.red_line_cases(rep_id="rep-1")

        assert [c.case_id for c in cases] == [case_id]
        case = cases[0]
        assert (case.rule_code, case.source, case.status) == (
            "fabricated_visit",
            "fabrication_confirmed",
            "open",
        )
        assert case.visit_id == "visit-7" and case.opened_by == "reviews"
        refs = {(link.kind, link.ref) for link in case.evidence}
        assert {
            ("visit", "visit-7"),
            ("flag", "flag-1"),
            ("event", "evt-owner-1"),
            ("event", "evt-visit-1"),
        } <= refs
        assert case.description == "the customer says nobody came that day"

    def test_the_fabricated_visit_no_longer_counts_as_results(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        for visit_id in ("visit-6", "visit-7"):
            topics.deliver(app.on_visit_logged, visit_logged(visit_id, "rep-1", IN_Q1), source=visit_id)
        self.fabrication(topics, "visit-7")
        # A late copy of the fabricated visit's log does not bring it back.
        topics.deliver(app.on_visit_logged, visit_logged("visit-7", "rep-1", IN_Q1), source="visit-7-late")
        assert app.quarter_results("rep-1", Q1).visits == 1

    # --- decided by people --------------------------------------------------------------

    def test_a_case_is_decided_by_a_person_never_by_the_machine(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        case_id = self.fabrication(topics)
        with pytest.raises(Forbidden, match="never by the machine"):
            app.decide_red_line_case(case_id, "confirmed", "all flags agree", meta("reviews", "system"))
        with pytest.raises(Forbidden, match="only hr"):
            app.decide_red_line_case(case_id, "confirmed", "all flags agree", meta("qc-1", "qc"))
        with pytest.raises(RuleViolated) as no_reason:
            app.decide_red_line_case(case_id, "confirmed", "  ", hr())
        assert no_reason.value.field == "reason"
        with pytest.raises(RuleViolated, match="'confirmed' or 'dismissed'"):
            app.decide_red_line_case(case_id, "maybe", "not sure yet", hr())
        assert app.red_line_case(case_id).status == "open"

        app.decide_red_line_case(case_id, "dismissed", "the customer confirmed the visit later", hr())

        case = app.red_line_case(case_id)
        assert (case.status, case.decided_by) == ("dismissed", "hr-1")
        with pytest.raises(Conflict, match="already dismissed"):
            app.decide_red_line_case(case_id, "confirmed", "second thoughts", hr())

    def test_confirming_a_case_marks_the_reps_current_review_non_promotable(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        review_id = self.calibrated(topics)
        case_id = self.fabrication(topics)

        marked = app.decide_red_line_case(case_id, "confirmed", "the customer was never visited", hr())

        assert marked == [review_id]
        assert app.review(review_id).red_line_case_ids == [str(case_id)]
        outcome = app.complete_review(review_id, hr())
        assert (outcome.category, outcome.band, outcome.promotable) == ("red_line", "C", False)
        assert outcome.values_score == 1.0  # a perfect review, overridden

    def test_confirming_a_case_revises_a_completed_review_with_a_new_event(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        review_id = self.calibrated(topics)
        before = app.complete_review(review_id, hr())
        case_id = self.fabrication(topics)

        app.decide_red_line_case(case_id, "confirmed", "the customer was never visited", hr())

        after = app.review(review_id).outcome
        assert before.promotable is True
        assert after is not None and after.category == "red_line" and after.promotable is False
        assert app.region_distribution("hangzhou", Q1).red_lines == 1

    def test_a_case_confirmed_before_the_review_opens_marks_the_next_review(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        case_id = self.fabrication(topics)
        app.decide_red_line_case(case_id, "confirmed", "the customer was never visited", hr())

        opened = app.open_quarter_reviews("hangzhou", Q1, hr())

        by_rep = {app.review(i).rep_id: app.review(i).red_line_case_ids for i in opened}
        assert by_rep == {"rep-1": [str(case_id)], "rep-2": []}
        # Once applied, it does not follow the rep into every later quarter.
        assert app.review(app.open_review("rep-1", Q2, hr(IN_Q2))).red_line_case_ids == []

    def test_a_dismissed_case_leaves_the_review_alone(self, app: ReviewsApplication, topics: Topics) -> None:
        review_id = self.calibrated(topics)
        case_id = self.fabrication(topics)
        assert app.decide_red_line_case(case_id, "dismissed", "the visit was real after all", hr()) == []
        assert app.complete_review(review_id, hr()).category == "star"

    # --- by hand ------------------------------------------------------------------------

    def test_hr_or_qc_open_a_case_by_hand_with_evidence_under_a_rule_in_force(
        self, app: ReviewsApplication, topics: Topics
    ) -> None:
        links = [EvidenceLink("document", "bank-transfer-2026-03-02.pdf", "paid the customer's fee")]
        with pytest.raises(Forbidden):
            app.open_red_line_case("rep-1", "advance_payment", links, "paid the fee", manager())
        with pytest.raises(RuleViolated, match="evidence"):
            app.open_red_line_case("rep-1", "advance_payment", [], "paid the fee", hr())
        with pytest.raises(RuleViolated, match="not a red line") as unknown:
            app.open_red_line_case("rep-1", "being_late", links, "late again", hr())
        assert unknown.value.field == "rule_code"
        with pytest.raises(NotFound):
            app.open_red_line_case("rep-404", "advance_payment", links, "paid the fee", hr())

        case_id = app.open_red_line_case(
            "rep-1", "advance_payment", links, "paid the customer's fee", meta(*QC)
        )

        case = app.red_line_case(case_id)
        assert (case.rule_code, case.rule_name, case.source, case.region) == (
            "advance_payment",
            "Advance payment",
            "by_hand",
            "hangzhou",
        )
        with pytest.raises(Conflict):
            app.open_red_line_case("rep-1", "advance_payment", links, "paid the customer's fee", meta(*QC))

    def test_the_red_line_list_is_data_that_hr_edits(self, app: ReviewsApplication, topics: Topics) -> None:
        codes = [rule.code for rule in app.red_line_rules()]
        assert {"fabricated_visit", "advance_payment", "exam_cheating"} <= set(codes) and len(codes) == 6
        links = [EvidenceLink("url", "https://exam.example/attempt/9")]
        with pytest.raises(Forbidden):
            app.add_red_line_rule(RedLineRule("data_leak", "Customer data leak", "泄露客户资料"), manager())

        app.add_red_line_rule(RedLineRule("data_leak", "Customer data leak", "泄露客户资料"), hr())
        app.retire_red_line_rule("exam_cheating", "exams are now proctored", hr())

        codes = [rule.code for rule in app.red_line_rules()]
        assert "data_leak" in codes and "exam_cheating" not in codes
        with pytest.raises(RuleViolated, match="was retired"):
            app.open_red_line_case("rep-1", "exam_cheating", links, "copied answers", hr())
        with pytest.raises(Conflict):
            app.add_red_line_rule(RedLineRule("data_leak", "Again", "再次"), hr())
        with pytest.raises(NotFound):
            app.retire_red_line_rule("exam_cheating", "already retired", hr())
        with pytest.raises(RuleViolated) as bad_code:
            app.add_red_line_rule(RedLineRule("Bad Code", "Bad", "坏"), hr())
        assert bad_code.value.field == "rule.code"

    def test_a_reps_history_lists_their_red_line_cases(self, app: ReviewsApplication, topics: Topics) -> None:
        case_id = self.fabrication(topics)
        app.decide_red_line_case(case_id, "confirmed", "the customer was never visited", hr())
        history = app.rep_history("rep-1")
        assert [(c.case_id, c.status) for c in history.red_line_cases] == [(case_id, "confirmed")]
        assert app.red_line_cases(status="open") == []
        assert app.red_line_cases(region="ningbo") == []


class TestRedLineCasesOnSQLite(TestRedLineCases):
    def env(self, tmp_path: Path) -> dict[str, str]:
        return sqlite_env(tmp_path / "reviews.db")


def test_each_consumed_event_names_the_rep_or_the_quarter_results_applying_it_reads() -> None:
    app = ReviewsApplication(env={})
    topics = Topics(app)
    topics.deliver(app.on_rep_registered, rep_registered("rep-1", "hangzhou"), source="rep-1")
    topics.deliver(app.on_lead_converted, lead_converted("lead-1", "rep-1", IN_Q2), source="lead-1", at=IN_Q2)
    topics.deliver(app.on_visit_logged, visit_logged("visit-1", "rep-1", IN_Q1), source="visit-1")
    named = [list(app.aggregates_touched(envelope, event)) for _, event, envelope in topics.sent]
    assert named == [
        [Rep.create_id("rep-1")],
        [QuarterResults.create_id("rep-1", "2026Q2")],
        [QuarterResults.create_id("rep-1", "2026Q1")],
    ]

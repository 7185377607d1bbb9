"""The Review aggregate: one rep's quarterly review, from opening through assessments to its outcome."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.reviews.domain.outcome import Outcome, OutcomeInputs, compute_outcome
from services.reviews.domain.values import (
    MAX_LEVEL,
    Quarter,
    ReviewRef,
    ValueAdjustment,
    ValueEvidence,
    check_value_evidence,
    levels_by_value,
    require_rating,
    require_text,
    require_value,
    value_scores,
)
from services.reviews.policy import OutcomePolicy
from shared.domain import Conflict, Forbidden, Meta, RuleViolated, direct_events, stable_id

OPEN = "open"
SELF_ASSESSED = "self_assessed"
MANAGER_ASSESSING = "manager_assessing"
READY_FOR_CALIBRATION = "ready_for_calibration"
CALIBRATED = "calibrated"
COMPLETED = "completed"
STAGES = (OPEN, SELF_ASSESSED, MANAGER_ASSESSING, READY_FOR_CALIBRATION, CALIBRATED, COMPLETED)


def check_adjustments(adjustments: Iterable[ValueAdjustment]) -> tuple[ValueAdjustment, ...]:
    checked = tuple(adjustments)
    seen: set[str] = set()
    for i, adjustment in enumerate(checked):
        require_value(adjustment.value, f"adjustments[{i}].value")
        if not 0 <= adjustment.score <= MAX_LEVEL:
            raise RuleViolated(
                f"a calibrated score is 0 to {MAX_LEVEL}, not {adjustment.score}",
                field=f"adjustments[{i}].score",
            )
        if adjustment.value in seen:
            raise RuleViolated(f"{adjustment.value} is adjusted twice", field=f"adjustments[{i}].value")
        seen.add(adjustment.value)
    return checked


@direct_events
class Review(Aggregate):
    """Opened for a rep and a quarter; the rep assesses themself, the manager assesses the six
    values (通关: levels met, each with an example) and rates performance, hr calibrates and
    completes it. A completed review is never edited: corrections and red-line marks are new
    events carrying the revised outcome."""

    class Opened(Aggregate.Created):
        rep_id: str
        region: str
        quarter: str
        red_line_case_ids: tuple[str, ...]
        meta: Meta

    class SelfAssessed(Aggregate.Event):
        subject: ReviewRef
        evidence: tuple[ValueEvidence, ...]
        meta: Meta

    class ManagerAssessed(Aggregate.Event):
        subject: ReviewRef
        evidence: tuple[ValueEvidence, ...]
        meta: Meta

    class PerformanceRated(Aggregate.Event):
        subject: ReviewRef
        rating: int
        comment: str
        conversions: int
        visits: int
        meta: Meta

    class Calibrated(Aggregate.Event):
        subject: ReviewRef
        adjustments: tuple[ValueAdjustment, ...]
        rating: int | None
        reason: str
        value_scores: dict[str, int]  # after calibration, as the outcome will use them
        calibrated_rating: int
        meta: Meta

    class Completed(Aggregate.Event):
        subject: ReviewRef
        outcome: Outcome
        conversions: int
        visits: int
        previous_bands: tuple[str, ...]
        meta: Meta

    class Corrected(Aggregate.Event):
        subject: ReviewRef
        adjustments: tuple[ValueAdjustment, ...]
        rating: int | None
        reason: str
        outcome: Outcome
        meta: Meta

    class RedLineMarked(Aggregate.Event):
        subject: ReviewRef
        case_id: str
        rule_code: str
        outcome: Outcome | None  # the revised outcome when the review was already completed
        meta: Meta

    @staticmethod
    def create_id(rep_id: str, quarter: str) -> UUID:
        return stable_id("review", rep_id, quarter)

    @event(Opened)
    def __init__(
        self, rep_id: str, region: str, quarter: str, red_line_case_ids: tuple[str, ...], meta: Meta
    ) -> None:
        if Quarter.parse(quarter).starts_at > meta.at:
            raise RuleViolated(f"{quarter} has not started yet: it cannot be reviewed", field="quarter")
        self.rep_id = rep_id
        self.region = region
        self.quarter = quarter
        self.opened_at: datetime = meta.at
        self.red_line_case_ids: list[str] = list(red_line_case_ids)
        self.self_evidence: tuple[ValueEvidence, ...] | None = None
        self.manager_evidence: tuple[ValueEvidence, ...] | None = None
        self.manager_id: str | None = None
        self.rating: int | None = None
        self.rating_comment = ""
        self.rated_conversions = 0
        self.rated_visits = 0
        self.calibrated = False
        self.calibrated_scores: dict[str, int] = {}
        self.calibrated_rating: int | None = None
        self.calibration_reasons: list[str] = []
        self.outcome: Outcome | None = None
        self.completed_at: datetime | None = None
        self.conversions = 0
        self.visits = 0
        self.previous_bands: tuple[str, ...] = ()
        self.corrections: list[str] = []

    # --- where the review stands --------------------------------------------------------

    @property
    def stage(self) -> str:
        if self.outcome is not None:
            return COMPLETED
        if self.calibrated:
            return CALIBRATED
        if self.manager_evidence is not None and self.rating is not None:
            return READY_FOR_CALIBRATION
        if self.manager_evidence is not None or self.rating is not None:
            return MANAGER_ASSESSING
        if self.self_evidence is not None:
            return SELF_ASSESSED
        return OPEN

    @property
    def ref(self) -> ReviewRef:
        return ReviewRef(self.rep_id, self.region, self.quarter)

    @property
    def completed(self) -> bool:
        return self.outcome is not None

    @property
    def red_line(self) -> bool:
        return bool(self.red_line_case_ids)

    def value_levels(self, calibrated_scores: dict[str, int] | None = None) -> dict[str, frozenset[int]]:
        """The manager's levels met, with hr's calibrated scores in place where given."""
        levels = levels_by_value(self.manager_evidence or ())
        scores = self.calibrated_scores if calibrated_scores is None else calibrated_scores
        for value, score in scores.items():
            levels[value] = frozenset(range(1, score + 1))
        return levels

    def self_scores(self) -> dict[str, int] | None:
        if self.self_evidence is None:
            return None
        return value_scores(levels_by_value(self.self_evidence))

    def manager_scores(self) -> dict[str, int] | None:
        if self.manager_evidence is None:
            return None
        return value_scores(levels_by_value(self.manager_evidence))

    def effective_rating(self) -> int | None:
        return self.calibrated_rating if self.calibrated_rating is not None else self.rating

    def _refuse_if_completed(self, doing: str) -> None:
        if self.outcome is not None:
            raise Conflict(
                f"the {self.quarter} review of {self.rep_id} is completed: nobody may {doing}; "
                "hr corrects it with a new event"
            )

    # --- the rep ----------------------------------------------------------------------

    def self_assess(self, evidence: Sequence[ValueEvidence], meta: Meta, *, min_example_chars: int) -> None:
        self._self_assessed(
            self.ref, check_value_evidence(evidence, min_example_chars=min_example_chars), meta
        )

    @event(SelfAssessed)
    def _self_assessed(self, subject: ReviewRef, evidence: tuple[ValueEvidence, ...], meta: Meta) -> None:
        if meta.actor_role != "rep" or meta.actor_id != self.rep_id:
            raise Forbidden("only the rep writes their own self-assessment")
        self._refuse_if_completed("change the self-assessment")
        if self.manager_evidence is not None or self.calibrated:
            raise Conflict("the manager has assessed this review: the self-assessment is closed")
        self.self_evidence = tuple(evidence)

    # --- the manager ------------------------------------------------------------------

    def _require_manager(self, meta: Meta, doing: str) -> None:
        if meta.actor_role != "manager":
            raise Forbidden(f"only the region's manager may {doing} (you are '{meta.actor_role}')")
        if meta.actor_id == self.rep_id:
            raise Forbidden(f"nobody may {doing} for their own review")
        self._refuse_if_completed(doing)
        if self.calibrated:
            raise Conflict(f"hr has calibrated this review: too late to {doing}; ask hr to calibrate")

    def assess(self, evidence: Sequence[ValueEvidence], meta: Meta, *, min_example_chars: int) -> None:
        """The manager records which levels of each value are met, each with an example."""
        checked = check_value_evidence(evidence, min_example_chars=min_example_chars)
        if not checked:
            raise RuleViolated("a manager assessment needs at least one level met", field="evidence")
        self._manager_assessed(self.ref, checked, meta)

    @event(ManagerAssessed)
    def _manager_assessed(self, subject: ReviewRef, evidence: tuple[ValueEvidence, ...], meta: Meta) -> None:
        self._require_manager(meta, "assess values")
        self.manager_evidence = tuple(evidence)
        self.manager_id = meta.actor_id

    def rate_performance(
        self, rating: int, comment: str, conversions: int, visits: int, meta: Meta, *, min_comment_chars: int
    ) -> None:
        """The manager's rating, beside the results counted so far (shown, stored for audit)."""
        require_rating(rating)
        text = require_text(comment, "comment", min_chars=min_comment_chars, what="the rating's comment")
        self._performance_rated(self.ref, rating, text, conversions, visits, meta)

    @event(PerformanceRated)
    def _performance_rated(
        self, subject: ReviewRef, rating: int, comment: str, conversions: int, visits: int, meta: Meta
    ) -> None:
        self._require_manager(meta, "rate performance")
        self.rating = rating
        self.rating_comment = comment
        self.rated_conversions = conversions
        self.rated_visits = visits

    # --- hr -----------------------------------------------------------------------------

    def calibrate(
        self, adjustments: Sequence[ValueAdjustment], rating: int | None, reason: str, meta: Meta
    ) -> None:
        checked = check_adjustments(adjustments)
        if rating is not None:
            require_rating(rating)
        text = require_text(reason, "reason", what="a calibration")
        if self.manager_evidence is None or self.rating is None:
            raise RuleViolated(
                "the manager must assess the values and rate performance before hr calibrates",
                field="review_id",
            )
        scores = {**self.calibrated_scores, **{a.value: a.score for a in checked}}
        resulting_rating = rating if rating is not None else self.effective_rating()
        assert resulting_rating is not None
        self._calibrated(
            self.ref, checked, rating, text, value_scores(self.value_levels(scores)), resulting_rating, meta
        )

    @event(Calibrated)
    def _calibrated(
        self,
        subject: ReviewRef,
        adjustments: tuple[ValueAdjustment, ...],
        rating: int | None,
        reason: str,
        value_scores: dict[str, int],
        calibrated_rating: int,
        meta: Meta,
    ) -> None:
        if meta.actor_role != "hr":
            raise Forbidden(f"only hr calibrates reviews (you are '{meta.actor_role}')")
        self._refuse_if_completed("calibrate it")
        if self.manager_evidence is None or self.rating is None:
            raise RuleViolated(
                "the manager must assess the values and rate performance before hr calibrates",
                field="review_id",
            )
        for adjustment in adjustments:
            self.calibrated_scores[adjustment.value] = adjustment.score
        if rating is not None:
            self.calibrated_rating = rating
        self.calibrated = True
        self.calibration_reasons.append(reason)

    def _outcome(
        self,
        policy: OutcomePolicy,
        *,
        red_line: bool,
        results: tuple[int, int, tuple[str, ...]] | None = None,
        calibrated_scores: dict[str, int] | None = None,
        rating: int | None = None,
    ) -> Outcome:
        rating = rating or self.effective_rating()
        assert rating is not None  # calibrated reviews have one
        conversions, visits, previous_bands = results or (self.conversions, self.visits, self.previous_bands)
        inputs = OutcomeInputs(
            value_levels=self.value_levels(calibrated_scores),
            conversions=conversions,
            visits=visits,
            rating=rating,
            red_line=red_line,
            previous_bands=previous_bands,
        )
        return compute_outcome(inputs, policy)

    def complete(
        self,
        conversions: int,
        visits: int,
        previous_bands: tuple[str, ...],
        policy: OutcomePolicy,
        meta: Meta,
    ) -> Outcome:
        """Compute the outcome from the calibrated review and the quarter's results."""
        if meta.actor_role != "hr":
            raise Forbidden(f"only hr completes reviews (you are '{meta.actor_role}')")
        self._refuse_if_completed("complete it again")
        if not self.calibrated:
            raise RuleViolated("hr must calibrate the review before completing it", field="review_id")
        outcome = self._outcome(
            policy, red_line=self.red_line, results=(conversions, visits, tuple(previous_bands))
        )
        self._completed(self.ref, outcome, conversions, visits, previous_bands, meta)
        return outcome

    @event(Completed)
    def _completed(
        self,
        subject: ReviewRef,
        outcome: Outcome,
        conversions: int,
        visits: int,
        previous_bands: tuple[str, ...],
        meta: Meta,
    ) -> None:
        self._refuse_if_completed("complete it again")
        self.outcome = outcome
        self.completed_at = meta.at
        self.conversions = conversions
        self.visits = visits
        self.previous_bands = tuple(previous_bands)

    def correct(
        self,
        adjustments: Sequence[ValueAdjustment],
        rating: int | None,
        reason: str,
        policy: OutcomePolicy,
        meta: Meta,
    ) -> Outcome:
        """hr corrects a completed review: a new event with the revised outcome, never an edit."""
        if meta.actor_role != "hr":
            raise Forbidden(f"only hr corrects reviews (you are '{meta.actor_role}')")
        if self.outcome is None:
            raise Conflict("the review is not completed yet: calibrate it instead of correcting it")
        checked = check_adjustments(adjustments)
        if rating is not None:
            require_rating(rating)
        if not checked and rating is None:
            raise RuleViolated("a correction changes a value score or the rating", field="adjustments")
        text = require_text(reason, "reason", what="a correction")
        scores = {**self.calibrated_scores, **{a.value: a.score for a in checked}}
        outcome = self._outcome(policy, red_line=self.red_line, calibrated_scores=scores, rating=rating)
        self._corrected(self.ref, checked, rating, text, outcome, meta)
        return outcome

    @event(Corrected)
    def _corrected(
        self,
        subject: ReviewRef,
        adjustments: tuple[ValueAdjustment, ...],
        rating: int | None,
        reason: str,
        outcome: Outcome,
        meta: Meta,
    ) -> None:
        for adjustment in adjustments:
            self.calibrated_scores[adjustment.value] = adjustment.score
        if rating is not None:
            self.calibrated_rating = rating
        self.outcome = outcome
        self.corrections.append(reason)

    # --- red lines ----------------------------------------------------------------------

    def mark_red_line(self, case_id: str, rule_code: str, policy: OutcomePolicy, meta: Meta) -> bool:
        """A confirmed red-line case marks the review; a completed one gets its outcome revised."""
        if case_id in self.red_line_case_ids:
            return False
        outcome = self._outcome(policy, red_line=True) if self.outcome is not None else None
        self._red_line_marked(self.ref, case_id, rule_code, outcome, meta)
        return True

    @event(RedLineMarked)
    def _red_line_marked(
        self, subject: ReviewRef, case_id: str, rule_code: str, outcome: Outcome | None, meta: Meta
    ) -> None:
        self.red_line_case_ids.append(case_id)
        if outcome is not None:
            self.outcome = outcome

"""The reviews application: review cycles, outcomes, red-line rules and cases, and their history."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import Transcoding

from services.reviews.domain.access import (
    CALIBRATORS,
    CASE_OPENERS,
    may_open_reviews,
    require_manager_of,
    require_role,
)
from services.reviews.domain.history import trend
from services.reviews.domain.outcome import Outcome
from services.reviews.domain.red_line import RedLineCase, RedLineRulebook
from services.reviews.domain.rep import Rep
from services.reviews.domain.results import QuarterResults
from services.reviews.domain.review import COMPLETED, Review
from services.reviews.domain.values import (
    CaseRef,
    EvidenceLink,
    Quarter,
    ReviewRef,
    ValueAdjustment,
    ValueEvidence,
)
from services.reviews.policy import RedLineRule, ReviewsPolicy
from services.reviews.read_models import CaseDesk, CaseView, ReviewBoard, ReviewView, Roster
from shared.application import DataclassAsDict, Delivery, ReadModel, ServiceApplication
from shared.domain import Conflict, Meta, NotFound, RuleViolated
from shared.events.base import Envelope

SERVICE_ACTOR = "reviews"  # the actor of what this service derives from other services' events
SCHEDULER_ACTOR = "scheduler"  # the actor of what the service does on its own clock
FABRICATION_RULE = "fabricated_visit"


class OutcomeAsDict(Transcoding):
    type = Outcome
    name = "review_outcome"

    def encode(self, obj: Outcome) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> Outcome:
        return Outcome.from_dict(data)


# --- what this service reads of other services' events (fields used, not the whole model) ----


class RepRegisteredEvent(Protocol):
    """leads' RepRegistered: who the rep is, where, and whether active."""

    @property
    def rep_id(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def active(self) -> bool: ...


class RepDeactivatedEvent(Protocol):
    @property
    def rep_id(self) -> str: ...


class RepReactivatedEvent(Protocol):
    @property
    def rep_id(self) -> str: ...


class LeadConvertedEvent(Protocol):
    @property
    def lead_id(self) -> str: ...
    @property
    def rep_id(self) -> str: ...
    @property
    def converted_at(self) -> datetime: ...


class VisitLoggedEvent(Protocol):
    @property
    def visit_id(self) -> str: ...
    @property
    def rep_id(self) -> str: ...
    @property
    def visited_at(self) -> datetime: ...


class FabricationConfirmedEvent(Protocol):
    @property
    def rep_id(self) -> str: ...
    @property
    def visit_id(self) -> str: ...
    @property
    def visited_at(self) -> datetime: ...
    @property
    def flag_ids(self) -> Sequence[str]: ...
    @property
    def evidence_event_ids(self) -> Sequence[str]: ...
    @property
    def region(self) -> str: ...
    @property
    def decided_by(self) -> str: ...
    @property
    def reason(self) -> str: ...


# --- what queries return -------------------------------------------------------------------


@dataclass(frozen=True)
class RepHistory:
    rep_id: str
    reviews: list[ReviewView]  # by quarter, oldest first
    trend: str  # improving | declining | steady | not_enough_history
    red_line_cases: list[CaseView]


@dataclass(frozen=True)
class RegionDistribution:
    region: str
    quarter: str
    reviews: int
    completed: int
    by_stage: dict[str, int]
    by_band: dict[str, int]
    by_category: dict[str, int]
    promotable: int
    bonus_eligible: int
    exit_warnings: int
    red_lines: int


@dataclass(frozen=True)
class QuarterResultsView:
    rep_id: str
    quarter: str
    conversions: int
    visits: int


class ReviewsApplication(ServiceApplication):
    extra_transcodings: ClassVar[Sequence[Transcoding]] = (
        DataclassAsDict(ValueEvidence, "value_evidence"),
        DataclassAsDict(ValueAdjustment, "value_adjustment"),
        DataclassAsDict(EvidenceLink, "evidence_link"),
        DataclassAsDict(ReviewRef, "review_ref"),
        DataclassAsDict(CaseRef, "case_ref"),
        DataclassAsDict(RedLineRule, "red_line_rule"),
        OutcomeAsDict(),
    )

    def __init__(self, env: Mapping[str, str] | None = None, policy: ReviewsPolicy | None = None) -> None:
        self.policy = policy or ReviewsPolicy()
        super().__init__(env)

    def construct_read_models(self) -> Sequence[ReadModel]:
        return (Roster(), ReviewBoard(), CaseDesk())

    @property
    def roster(self) -> Roster:
        model = self.read_models[0]
        assert isinstance(model, Roster)
        return model

    @property
    def board(self) -> ReviewBoard:
        model = self.read_models[1]
        assert isinstance(model, ReviewBoard)
        return model

    @property
    def desk(self) -> CaseDesk:
        model = self.read_models[2]
        assert isinstance(model, CaseDesk)
        return model

    # --- loading ------------------------------------------------------------------------

    def _get_or_none(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _review(self, review_id: UUID) -> Review:
        review = self._get_or_none(review_id)
        if not isinstance(review, Review):
            raise NotFound(f"no review {review_id}", field="review_id")
        return review

    def _case(self, case_id: UUID) -> RedLineCase:
        case = self._get_or_none(case_id)
        if not isinstance(case, RedLineCase):
            raise NotFound(f"no red-line case {case_id}", field="case_id")
        return case

    def _rulebook(self, meta: Meta) -> RedLineRulebook:
        """The rule list; the first use seeds it from the policy (saved with that command)."""
        rulebook = self._get_or_none(RedLineRulebook.create_id())
        if isinstance(rulebook, RedLineRulebook):
            return rulebook
        return RedLineRulebook(self.policy.red_line_seed, meta)

    def _results(self, rep_id: str, quarter: str, meta: Meta) -> QuarterResults:
        results = self._get_or_none(QuarterResults.create_id(rep_id, quarter))
        if isinstance(results, QuarterResults):
            return results
        return QuarterResults(rep_id, quarter, meta)

    def _counts(self, rep_id: str, quarter: str) -> tuple[int, int]:
        results = self._get_or_none(QuarterResults.create_id(rep_id, quarter))
        if isinstance(results, QuarterResults):
            return results.conversions, results.visits
        return 0, 0

    # --- reps, from the leads topic -----------------------------------------------------

    def _record_rep(self, rep_id: str, region: str, active: bool, meta: Meta) -> list[Rep]:
        rep = self._get_or_none(Rep.create_id(rep_id))
        if isinstance(rep, Rep):
            return [rep] if rep.update(region, active, meta) else []
        return [Rep(rep_id, region, active, meta)]

    def aggregates_touched(self, envelope: Envelope, event: Any) -> Iterable[UUID]:
        """A consumed rep event is recorded on the rep; a visit or a conversion is counted in the
        rep's results for its quarter (more reps' results than the cache keeps)."""
        kind = envelope.event_type
        if kind in ("RepRegistered", "RepDeactivated", "RepReactivated"):
            return (Rep.create_id(event.rep_id),)
        if kind == "VisitLogged":
            return (QuarterResults.create_id(event.rep_id, str(Quarter.of(event.visited_at))),)
        if kind == "LeadConverted":
            return (QuarterResults.create_id(event.rep_id, str(Quarter.of(event.converted_at))),)
        return ()

    def on_rep_registered(self, delivery: Delivery, event: RepRegisteredEvent, envelope: Envelope) -> bool:
        """A rep joined, moved region or changed status: the roster reviews are opened from."""
        return self.process_delivery(
            delivery,
            lambda: self._record_rep(
                event.rep_id, event.region, event.active, envelope.caused_meta(SERVICE_ACTOR, "system")
            ),
        )

    def on_rep_deactivated(self, delivery: Delivery, event: RepDeactivatedEvent, envelope: Envelope) -> bool:
        return self.process_delivery(delivery, lambda: self._set_active(event.rep_id, False, envelope))

    def on_rep_reactivated(self, delivery: Delivery, event: RepReactivatedEvent, envelope: Envelope) -> bool:
        return self.process_delivery(delivery, lambda: self._set_active(event.rep_id, True, envelope))

    def _set_active(self, rep_id: str, active: bool, envelope: Envelope) -> list[Rep]:
        rep = self._get_or_none(Rep.create_id(rep_id))
        if not isinstance(rep, Rep):
            return []  # never registered here: no region to keep them in
        return [rep] if rep.update(rep.region, active, envelope.caused_meta(SERVICE_ACTOR, "system")) else []

    # --- results, from the leads and visits topics --------------------------------------

    def on_lead_converted(self, delivery: Delivery, event: LeadConvertedEvent, envelope: Envelope) -> bool:
        """A converted lead counts once, in the quarter it was converted, for the rep who owned it."""
        meta = envelope.caused_meta(SERVICE_ACTOR, "system")
        quarter = str(Quarter.of(event.converted_at))

        def handle() -> list[QuarterResults]:
            results = self._results(event.rep_id, quarter, meta)
            results.count_conversion(event.lead_id, meta)
            return [results]  # nothing new to store when the lead was already counted

        return self.process_delivery(delivery, handle)

    def on_visit_logged(self, delivery: Delivery, event: VisitLoggedEvent, envelope: Envelope) -> bool:
        """A logged visit counts once, in the quarter the visit happened."""
        meta = envelope.caused_meta(SERVICE_ACTOR, "system")
        quarter = str(Quarter.of(event.visited_at))

        def handle() -> list[QuarterResults]:
            results = self._results(event.rep_id, quarter, meta)
            results.count_visit(event.visit_id, meta)
            return [results]

        return self.process_delivery(delivery, handle)

    # --- red-line cases opened automatically --------------------------------------------

    def on_fabrication_confirmed(
        self, delivery: Delivery, event: FabricationConfirmedEvent, envelope: Envelope
    ) -> bool:
        """qc confirmed a fabricated visit: open a red-line case for a person to decide, and take
        the visit out of the rep's results."""
        meta = envelope.caused_meta(SERVICE_ACTOR, "system")
        evidence = (
            EvidenceLink("visit", event.visit_id),
            *(EvidenceLink("flag", flag_id) for flag_id in event.flag_ids),
            *(EvidenceLink("event", event_id) for event_id in event.evidence_event_ids),
            EvidenceLink("event", str(envelope.event_id), f"confirmed by {event.decided_by}"),
        )

        def handle() -> list[Any]:
            changed: list[Any] = []
            case_id = RedLineCase.create_id(RedLineCase.fabrication_key(event.visit_id))
            if self._get_or_none(case_id) is None:
                rulebook = self._rulebook(meta)
                changed.append(rulebook)  # stored only if this seeded it
                rule = rulebook.rules.get(FABRICATION_RULE) or RedLineRule(
                    FABRICATION_RULE, "Fabricated visit", "虚假拜访"
                )
                changed.append(
                    RedLineCase.open_from_fabrication(
                        event.rep_id, event.region, rule, event.visit_id, evidence, event.reason, meta
                    )
                )
            results = self._results(event.rep_id, str(Quarter.of(event.visited_at)), meta)
            results.discount_visit(event.visit_id, "fabrication confirmed", meta)
            changed.append(results)
            return changed

        return self.process_delivery(delivery, handle)

    # --- the review cycle ---------------------------------------------------------------

    def _unapplied_red_lines(self, rep_id: str) -> tuple[str, ...]:
        """Confirmed cases that marked no review yet: they mark the rep's next review."""
        return tuple(
            str(case.case_id)
            for case in self.desk.select(status="confirmed", rep_id=rep_id)
            if not self.board.marked_by_case.get(str(case.case_id))
        )

    def open_quarter_reviews(
        self, region: str, quarter: str, meta: Meta, *, caller_region: str | None = None
    ) -> list[UUID]:
        """Open the quarter's review of every active rep of the region; returns the new ones' ids
        (reps who already have theirs are skipped)."""
        may_open_reviews(meta, caller_region, region)
        Quarter.parse(quarter)
        with self.reading():
            if not self.roster.active_in(region):
                raise RuleViolated(f"no active reps are known in region '{region}'", field="region")
            opened = self._unopened_reviews(region, quarter, meta)
        self.save(*opened)
        return [review.id for review in opened]

    def _unopened_reviews(self, region: str, quarter: str, meta: Meta) -> list[Review]:
        """New reviews for the region's active reps who have none for the quarter (hold `reading`)."""
        return [
            Review(rep_id, region, quarter, self._unapplied_red_lines(rep_id), meta)
            for rep_id in self.roster.active_in(region)
            if Review.create_id(rep_id, quarter) not in self.board.reviews
        ]

    def open_due_reviews(self, now: datetime) -> list[UUID]:
        """The scheduler's run: once the quarter's review window has come (the last
        `review_window_days` of it), open the review of every active rep of every region who
        has none yet. Running it again opens only what is missing (newcomers)."""
        quarter = Quarter.of(now)
        if now < quarter.ends_at - timedelta(days=self.policy.review_window_days):
            return []
        meta = Meta(actor_id=SCHEDULER_ACTOR, actor_role="system", at=now, correlation_id=str(quarter))
        with self.reading():
            opened = [
                review
                for region in self.roster.regions()
                for review in self._unopened_reviews(region, str(quarter), meta)
            ]
        if opened:
            self.save(*opened)
        return [review.id for review in opened]

    def open_review(self, rep_id: str, quarter: str, meta: Meta, *, caller_region: str | None = None) -> UUID:
        """Open one rep's review for a quarter (a newcomer, or one a region run missed)."""
        Quarter.parse(quarter)
        with self.reading():
            rep = self.roster.reps.get(rep_id)
            if rep is None:
                raise NotFound(f"no rep '{rep_id}' is known here", field="rep_id")
            may_open_reviews(meta, caller_region, rep.region)
            if not rep.active:
                raise RuleViolated(f"rep '{rep_id}' is not active", field="rep_id")
            red_lines = self._unapplied_red_lines(rep_id)
        review_id = Review.create_id(rep_id, quarter)
        if review_id in self.repository:
            raise Conflict(
                f"{rep_id} already has a {quarter} review", field="quarter", review_id=str(review_id)
            )
        review = Review(rep_id, rep.region, quarter, red_lines, meta)
        self.save(review)
        return review.id

    def self_assess(self, review_id: UUID, evidence: Sequence[ValueEvidence], meta: Meta) -> None:
        review = self._review(review_id)
        review.self_assess(evidence, meta, min_example_chars=self.policy.min_example_chars)
        self.save(review)

    def assess_values(
        self,
        review_id: UUID,
        evidence: Sequence[ValueEvidence],
        meta: Meta,
        *,
        caller_region: str | None = None,
    ) -> None:
        """The manager records the levels met for each value (通关), each with an example."""
        review = self._review(review_id)
        require_manager_of(meta, caller_region, review.region, "assess values")
        review.assess(evidence, meta, min_example_chars=self.policy.min_example_chars)
        self.save(review)

    def rate_performance(
        self, review_id: UUID, rating: int, comment: str, meta: Meta, *, caller_region: str | None = None
    ) -> QuarterResultsView:
        """The manager's rating; returns the results counted so far that it was given beside."""
        review = self._review(review_id)
        require_manager_of(meta, caller_region, review.region, "rate performance")
        conversions, visits = self._counts(review.rep_id, review.quarter)
        review.rate_performance(
            rating, comment, conversions, visits, meta, min_comment_chars=self.policy.min_comment_chars
        )
        self.save(review)
        return QuarterResultsView(review.rep_id, review.quarter, conversions, visits)

    def calibrate(
        self,
        review_id: UUID,
        adjustments: Sequence[ValueAdjustment],
        rating: int | None,
        reason: str,
        meta: Meta,
    ) -> None:
        review = self._review(review_id)
        require_role(meta, CALIBRATORS, "calibrate reviews")
        review.calibrate(adjustments, rating, reason, meta)
        self.save(review)

    def _previous_bands(self, rep_id: str, quarter: str) -> tuple[str, ...]:
        """Bands of the quarters just before, most recent first, while each was completed."""
        bands: list[str] = []
        q = Quarter.parse(quarter)
        for _ in range(max(self.policy.outcome.exit_after_c_bands - 1, 0)):
            q = q.previous()
            earlier = self._get_or_none(Review.create_id(rep_id, str(q)))
            if not isinstance(earlier, Review) or earlier.outcome is None:
                break
            bands.append(earlier.outcome.band)
        return tuple(bands)

    def complete_review(self, review_id: UUID, meta: Meta) -> Outcome:
        """Compute and record the outcome from the calibrated review and the quarter's results."""
        review = self._review(review_id)
        require_role(meta, CALIBRATORS, "complete reviews")
        conversions, visits = self._counts(review.rep_id, review.quarter)
        previous = self._previous_bands(review.rep_id, review.quarter)
        outcome = review.complete(conversions, visits, previous, self.policy.outcome, meta)
        self.save(review)
        return outcome

    def correct_review(
        self,
        review_id: UUID,
        adjustments: Sequence[ValueAdjustment],
        rating: int | None,
        reason: str,
        meta: Meta,
    ) -> Outcome:
        """A completed review is never edited: hr's correction is a new event with a new outcome."""
        review = self._review(review_id)
        require_role(meta, CALIBRATORS, "correct reviews")
        outcome = review.correct(adjustments, rating, reason, self.policy.outcome, meta)
        self.save(review)
        return outcome

    # --- red-line rules and cases by hand -----------------------------------------------

    def red_line_rules(self) -> list[RedLineRule]:
        rulebook = self._get_or_none(RedLineRulebook.create_id())
        rules = (
            rulebook.rules.values() if isinstance(rulebook, RedLineRulebook) else self.policy.red_line_seed
        )
        return sorted(rules, key=lambda r: r.code)

    def add_red_line_rule(self, rule: RedLineRule, meta: Meta) -> None:
        rulebook = self._rulebook(meta)
        rulebook.add_rule(rule, meta)
        self.save(rulebook)

    def retire_red_line_rule(self, code: str, reason: str, meta: Meta) -> None:
        rulebook = self._rulebook(meta)
        rulebook.retire_rule(code, reason, meta)
        self.save(rulebook)

    def open_red_line_case(
        self,
        rep_id: str,
        rule_code: str,
        evidence: Sequence[EvidenceLink],
        description: str,
        meta: Meta,
        *,
        region: str | None = None,
    ) -> UUID:
        """hr or qc open a case by hand, with evidence links; the rep's region is known from the
        roster (or given, for a rep not on it)."""
        require_role(meta, CASE_OPENERS, "open a red-line case by hand")
        with self.reading():
            known = self.roster.reps.get(rep_id)
        rep_region = known.region if known is not None else region
        if rep_region is None:
            raise NotFound(f"no rep '{rep_id}' is known here: give their region", field="region")
        rulebook = self._rulebook(meta)
        rule = rulebook.rule(rule_code)
        # One case per rep, rule, opener and moment: a retried request finds the same case.
        case_key = f"by_hand:{rep_id}:{rule_code}:{meta.actor_id}:{meta.at.isoformat()}"
        if RedLineCase.create_id(case_key) in self.repository:
            raise Conflict("this case was already opened", field="rep_id")
        case = RedLineCase.open_by_hand(case_key, rep_id, rep_region, rule, evidence, description, meta)
        self.save(rulebook, case)
        return case.id

    def decide_red_line_case(self, case_id: UUID, decision: str, reason: str, meta: Meta) -> list[UUID]:
        """A person confirms or dismisses a case. A confirmed case marks the rep's current review
        (every review in progress, and the one of this quarter even if completed); with none,
        it marks the rep's next review when that is opened. Returns the reviews marked."""
        case = self._case(case_id)
        case.decide(decision, reason, meta)
        marked: list[Review] = []
        if case.confirmed:
            with self.reading():
                in_progress = {v.review_id for v in self.board.of_rep(case.rep_id) if v.stage != COMPLETED}
            this_quarter = Review.create_id(case.rep_id, str(Quarter.of(meta.at)))
            for review_id in sorted({*in_progress, this_quarter}, key=str):
                review = self._get_or_none(review_id)
                if isinstance(review, Review) and review.mark_red_line(
                    str(case.id), case.rule_code, self.policy.outcome, meta
                ):
                    marked.append(review)
        self.save(case, *marked)
        return [review.id for review in marked]

    # --- queries --------------------------------------------------------------------------

    def review(self, review_id: UUID) -> ReviewView:
        with self.reading():
            view = self.board.reviews.get(review_id)
            if view is None:
                raise NotFound(f"no review {review_id}", field="review_id")
            return view.public()

    def self_assessment_evidence(self, review_id: UUID) -> list[ValueEvidence]:
        return list(self._review(review_id).self_evidence or ())

    def manager_evidence(self, review_id: UUID) -> list[ValueEvidence]:
        return list(self._review(review_id).manager_evidence or ())

    def rep_history(self, rep_id: str) -> RepHistory:
        """A rep's reviews over time, the trend of their overall score, and their red-line cases."""
        with self.reading():
            reviews = [view.public() for view in self.board.of_rep(rep_id)]
            cases = [case.public() for case in self.desk.select(rep_id=rep_id)]
        scores = [v.outcome.overall_score for v in reviews if v.outcome is not None]
        return RepHistory(rep_id, reviews, trend(scores, self.policy.trend_tolerance), cases)

    def region_reviews(self, region: str, quarter: str) -> list[ReviewView]:
        with self.reading():
            return [view.public() for view in self.board.in_region(region, quarter)]

    def region_distribution(self, region: str, quarter: str) -> RegionDistribution:
        """How a region's reviews of a quarter fall: stages, bands, talent categories."""
        views = self.region_reviews(region, quarter)
        outcomes = [v.outcome for v in views if v.outcome is not None]
        by_stage: dict[str, int] = {}
        for view in views:
            by_stage[view.stage] = by_stage.get(view.stage, 0) + 1
        by_band: dict[str, int] = {}
        by_category: dict[str, int] = {}
        for outcome in outcomes:
            by_band[outcome.band] = by_band.get(outcome.band, 0) + 1
            by_category[outcome.category] = by_category.get(outcome.category, 0) + 1
        return RegionDistribution(
            region=region,
            quarter=quarter,
            reviews=len(views),
            completed=len(outcomes),
            by_stage=by_stage,
            by_band=by_band,
            by_category=by_category,
            promotable=sum(o.promotable for o in outcomes),
            bonus_eligible=sum(o.bonus_eligible for o in outcomes),
            exit_warnings=sum(o.exit_warning for o in outcomes),
            red_lines=sum(bool(v.red_line_case_ids) for v in views),
        )

    def red_line_cases(
        self, *, status: str | None = None, region: str | None = None, rep_id: str | None = None
    ) -> list[CaseView]:
        with self.reading():
            return [case.public() for case in self.desk.select(status=status, region=region, rep_id=rep_id)]

    def red_line_case(self, case_id: UUID) -> CaseView:
        with self.reading():
            case = self.desk.cases.get(case_id)
            if case is None:
                raise NotFound(f"no red-line case {case_id}", field="case_id")
            return case.public()

    def quarter_results(self, rep_id: str, quarter: str) -> QuarterResultsView:
        Quarter.parse(quarter)
        conversions, visits = self._counts(rep_id, quarter)
        return QuarterResultsView(rep_id, quarter, conversions, visits)

    def rep_region(self, rep_id: str) -> str | None:
        """The region the roster puts a rep in (None for a rep not known here)."""
        with self.reading():
            rep = self.roster.reps.get(rep_id)
            return None if rep is None else rep.region

    def active_reps(self, region: str) -> list[str]:
        with self.reading():
            return self.roster.active_in(region)

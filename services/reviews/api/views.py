"""The reviews HTTP routes: thin calls into ReviewsApplication, with who may do what.

Identity and region come from the token, never the body: a rep acts as themself, a manager in
the region their token names; hr calibrates, completes, corrects and decides red-line cases;
hr and qc open cases by hand; hr, qc, ops and admin read everything.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from services.reviews.api.dependencies import Reviews
from services.reviews.api.schemas import (
    CalibrationCreate,
    CorrectionCreate,
    CreatedPublic,
    ManagerAssessmentCreate,
    PerformanceRatingCreate,
    QuarterResultsPublic,
    QuarterReviewsCreate,
    QuarterReviewsPublic,
    RedLineCaseCreate,
    RedLineCasePublic,
    RedLineDecisionCreate,
    RedLineDecisionPublic,
    RedLineRuleCreate,
    RedLineRulePublic,
    RegionDistributionPublic,
    RepHistoryPublic,
    ReviewCreate,
    ReviewEvidencePublic,
    ReviewPublic,
    RuleRetirementCreate,
    SelfAssessmentCreate,
    ValueEvidencePublic,
)
from services.reviews.domain.access import (
    CALIBRATORS,
    CASE_OPENERS,
    RULE_KEEPERS,
    WIDE_READERS,
    may_view_region,
    may_view_review,
)
from services.reviews.domain.history import trend
from services.reviews.domain.values import EvidenceLink, ValueAdjustment, ValueEvidence
from services.reviews.policy import RedLineRule
from services.reviews.read_models import CaseView, ReviewView
from shared.auth import Principal
from shared.domain import Forbidden
from shared.web import CommandMeta, CurrentPrincipal

QuarterQuery = Annotated[str, Query(pattern=r"^\d{4}Q[1-4]$", examples=["2026Q1"])]
OPENERS = ("manager", "hr", "admin")  # open reviews (a manager in their region only)

reviews_router = APIRouter(tags=["reviews"])
red_lines_router = APIRouter(tags=["red lines"])


# --- who may see what -----------------------------------------------------------------------


def _visible_review(principal: Principal, view: ReviewView) -> ReviewView:
    if not may_view_review(principal.role, principal.actor_id, principal.region, view.rep_id, view.region):
        raise Forbidden(f"role '{principal.role}' may not see this review", field="review_id")
    return view


def _visible_case(principal: Principal, case: CaseView) -> CaseView:
    if not may_view_review(principal.role, principal.actor_id, principal.region, case.rep_id, case.region):
        raise Forbidden(f"role '{principal.role}' may not see this red-line case", field="case_id")
    return case


def _require_region(principal: Principal, region: str) -> None:
    if not may_view_region(principal.role, principal.region, region):
        raise Forbidden(f"role '{principal.role}' may not see region '{region}'", field="region")


def _require_rep(principal: Principal, reviews: Reviews, rep_id: str) -> None:
    """Reps see themselves; a manager the reps the roster puts in their region; wide readers all."""
    if principal.role in WIDE_READERS:
        return
    if principal.role == "rep" and principal.actor_id == rep_id:
        return
    if principal.role == "manager" and reviews.rep_region(rep_id) == principal.region:
        return
    raise Forbidden(f"role '{principal.role}' may not see rep '{rep_id}'", field="rep_id")


def _review(reviews: Reviews, review_id: UUID) -> ReviewPublic:
    return ReviewPublic.model_validate(reviews.review(review_id))


# --- the review cycle -----------------------------------------------------------------------


@reviews_router.post("/reviews/quarters", status_code=201, response_model=QuarterReviewsPublic)
def open_quarter_reviews(
    body: QuarterReviewsCreate, reviews: Reviews, principal: CurrentPrincipal, meta: CommandMeta
) -> QuarterReviewsPublic:
    """Open the quarter's review of every active rep of a region (manager of it, hr, admin).
    Reps who already have theirs are skipped; the scheduler does the same near quarter end."""
    principal.require(*OPENERS)
    ids = reviews.open_quarter_reviews(body.region, body.quarter, meta, caller_region=principal.region)
    return QuarterReviewsPublic(region=body.region, quarter=body.quarter, review_ids=ids)


@reviews_router.post("/reviews", status_code=201, response_model=CreatedPublic)
def open_review(
    body: ReviewCreate, reviews: Reviews, principal: CurrentPrincipal, meta: CommandMeta
) -> CreatedPublic:
    """Open one rep's review (manager of the rep's region, hr, admin); 409 if it exists."""
    principal.require(*OPENERS)
    return CreatedPublic(
        id=reviews.open_review(body.rep_id, body.quarter, meta, caller_region=principal.region)
    )


@reviews_router.get("/reviews", response_model=list[ReviewPublic])
def region_reviews(
    region: Annotated[str, Query(min_length=1, max_length=64)],
    quarter: QuarterQuery,
    reviews: Reviews,
    principal: CurrentPrincipal,
) -> list[ReviewPublic]:
    """A region's reviews of a quarter (its manager; hr, qc, ops, admin)."""
    _require_region(principal, region)
    return [ReviewPublic.model_validate(view) for view in reviews.region_reviews(region, quarter)]


@reviews_router.get("/reviews/{review_id}", response_model=ReviewPublic)
def get_review(review_id: UUID, reviews: Reviews, principal: CurrentPrincipal) -> ReviewPublic:
    """One review: the rep's own, their region's manager, hr, qc, ops, admin."""
    return ReviewPublic.model_validate(_visible_review(principal, reviews.review(review_id)))


@reviews_router.get("/reviews/{review_id}/evidence", response_model=ReviewEvidencePublic)
def get_review_evidence(
    review_id: UUID, reviews: Reviews, principal: CurrentPrincipal
) -> ReviewEvidencePublic:
    """The written examples behind the self- and manager assessments."""
    _visible_review(principal, reviews.review(review_id))
    return ReviewEvidencePublic(
        review_id=review_id,
        self_assessment=[
            ValueEvidencePublic.model_validate(e) for e in reviews.self_assessment_evidence(review_id)
        ],
        manager_assessment=[
            ValueEvidencePublic.model_validate(e) for e in reviews.manager_evidence(review_id)
        ],
    )


@reviews_router.post("/reviews/{review_id}/self-assessment", response_model=ReviewPublic)
def self_assess(
    review_id: UUID,
    body: SelfAssessmentCreate,
    reviews: Reviews,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ReviewPublic:
    """The rep's self-assessment of their own review (until the manager assesses)."""
    principal.require("rep")
    _visible_review(principal, reviews.review(review_id))
    evidence = [ValueEvidence(e.value, e.level, e.example) for e in body.evidence]
    reviews.self_assess(review_id, evidence, meta)
    return _review(reviews, review_id)


@reviews_router.post("/reviews/{review_id}/manager-assessment", response_model=ReviewPublic)
def assess_values(
    review_id: UUID,
    body: ManagerAssessmentCreate,
    reviews: Reviews,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ReviewPublic:
    """The region's manager records the levels met of each value (通关), each with an example."""
    principal.require("manager")
    evidence = [ValueEvidence(e.value, e.level, e.example) for e in body.evidence]
    reviews.assess_values(review_id, evidence, meta, caller_region=principal.region)
    return _review(reviews, review_id)


@reviews_router.post("/reviews/{review_id}/performance-rating", response_model=ReviewPublic)
def rate_performance(
    review_id: UUID,
    body: PerformanceRatingCreate,
    reviews: Reviews,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ReviewPublic:
    """The region's manager rates performance, beside the quarter's counted results."""
    principal.require("manager")
    reviews.rate_performance(review_id, body.rating, body.comment, meta, caller_region=principal.region)
    return _review(reviews, review_id)


def _adjustments(body: CalibrationCreate) -> list[ValueAdjustment]:
    return [ValueAdjustment(a.value, a.score) for a in body.adjustments]


@reviews_router.post("/reviews/{review_id}/calibration", response_model=ReviewPublic)
def calibrate(
    review_id: UUID,
    body: CalibrationCreate,
    reviews: Reviews,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ReviewPublic:
    """hr calibrates: adjusted value scores and/or rating, with the reason."""
    principal.require(*CALIBRATORS)
    reviews.calibrate(review_id, _adjustments(body), body.rating, body.reason, meta)
    return _review(reviews, review_id)


@reviews_router.post("/reviews/{review_id}/completion", response_model=ReviewPublic)
def complete_review(
    review_id: UUID, reviews: Reviews, principal: CurrentPrincipal, meta: CommandMeta
) -> ReviewPublic:
    """hr completes a calibrated review: the outcome is computed and recorded."""
    principal.require(*CALIBRATORS)
    reviews.complete_review(review_id, meta)
    return _review(reviews, review_id)


@reviews_router.post("/reviews/{review_id}/corrections", response_model=ReviewPublic)
def correct_review(
    review_id: UUID,
    body: CorrectionCreate,
    reviews: Reviews,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> ReviewPublic:
    """hr corrects a completed review: a new event and a new outcome, never an edit."""
    principal.require(*CALIBRATORS)
    reviews.correct_review(review_id, _adjustments(body), body.rating, body.reason, meta)
    return _review(reviews, review_id)


# --- history --------------------------------------------------------------------------------


@reviews_router.get("/reps/{rep_id}/reviews", response_model=RepHistoryPublic)
def rep_history(rep_id: str, reviews: Reviews, principal: CurrentPrincipal) -> RepHistoryPublic:
    """A rep's reviews over time, their trend and red-line cases. A manager sees only what
    belongs to their region."""
    history = reviews.rep_history(rep_id)
    if principal.role == "manager":
        in_region = [v for v in history.reviews if v.region == principal.region]
        cases = [c for c in history.red_line_cases if c.region == principal.region]
        if not in_region and not cases:
            _require_rep(principal, reviews, rep_id)
        return RepHistoryPublic(
            rep_id=rep_id,
            reviews=[ReviewPublic.model_validate(v) for v in in_region],
            trend=trend(
                [v.outcome.overall_score for v in in_region if v.outcome is not None],
                reviews.policy.trend_tolerance,
            ),
            red_line_cases=[RedLineCasePublic.model_validate(c) for c in cases],
        )
    _require_rep(principal, reviews, rep_id)
    return RepHistoryPublic.model_validate(history)


@reviews_router.get("/reps/{rep_id}/results", response_model=QuarterResultsPublic)
def quarter_results(
    rep_id: str, quarter: QuarterQuery, reviews: Reviews, principal: CurrentPrincipal
) -> QuarterResultsPublic:
    """Leads converted and visits counted for a rep in a quarter (confirmed fabrications excluded)."""
    _require_rep(principal, reviews, rep_id)
    return QuarterResultsPublic.model_validate(reviews.quarter_results(rep_id, quarter))


@reviews_router.get("/regions/{region}/distribution", response_model=RegionDistributionPublic)
def region_distribution(
    region: str, quarter: QuarterQuery, reviews: Reviews, principal: CurrentPrincipal
) -> RegionDistributionPublic:
    """How a region's reviews of a quarter fall by stage, band and talent category."""
    _require_region(principal, region)
    return RegionDistributionPublic.model_validate(reviews.region_distribution(region, quarter))


# --- red-line rules -------------------------------------------------------------------------


def _rules(reviews: Reviews) -> list[RedLineRulePublic]:
    return [RedLineRulePublic.model_validate(rule) for rule in reviews.red_line_rules()]


@red_lines_router.get("/red-line-rules", response_model=list[RedLineRulePublic])
def red_line_rules(reviews: Reviews, _: CurrentPrincipal) -> list[RedLineRulePublic]:
    """The red lines (高压线) in force: everyone may read them."""
    return _rules(reviews)


@red_lines_router.post("/red-line-rules", status_code=201, response_model=RedLineRulePublic)
def add_red_line_rule(
    body: RedLineRuleCreate, reviews: Reviews, principal: CurrentPrincipal, meta: CommandMeta
) -> RedLineRulePublic:
    """hr or admin add a red line; 409 if one with that code is in force."""
    principal.require(*RULE_KEEPERS)
    rule = RedLineRule(body.code, body.name, body.name_zh, body.description)
    reviews.add_red_line_rule(rule, meta)
    return RedLineRulePublic.model_validate(rule)


@red_lines_router.post("/red-line-rules/{code}/retirement", response_model=list[RedLineRulePublic])
def retire_red_line_rule(
    code: str, body: RuleRetirementCreate, reviews: Reviews, principal: CurrentPrincipal, meta: CommandMeta
) -> list[RedLineRulePublic]:
    """hr or admin retire a red line (the list was cut from 17 to 6 once); returns those in force."""
    principal.require(*RULE_KEEPERS)
    reviews.retire_red_line_rule(code, body.reason, meta)
    return _rules(reviews)


# --- red-line cases -------------------------------------------------------------------------


@red_lines_router.get("/red-line-cases", response_model=list[RedLineCasePublic])
def red_line_cases(
    reviews: Reviews,
    principal: CurrentPrincipal,
    status: Literal["open", "confirmed", "dismissed"] | None = None,
    region: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    rep_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> list[RedLineCasePublic]:
    """Cases for hr, qc, ops and admin; a manager sees their region's, a rep their own."""
    if principal.role == "manager":
        if region is not None and region != principal.region:
            _require_region(principal, region)
        region = principal.region
    elif principal.role == "rep":
        if rep_id is not None and rep_id != principal.actor_id:
            _require_rep(principal, reviews, rep_id)
        rep_id = principal.actor_id
    elif principal.role not in WIDE_READERS:
        principal.require(*WIDE_READERS)
    cases = reviews.red_line_cases(status=status, region=region, rep_id=rep_id)
    return [RedLineCasePublic.model_validate(case) for case in cases]


@red_lines_router.get("/red-line-cases/{case_id}", response_model=RedLineCasePublic)
def red_line_case(case_id: UUID, reviews: Reviews, principal: CurrentPrincipal) -> RedLineCasePublic:
    return RedLineCasePublic.model_validate(_visible_case(principal, reviews.red_line_case(case_id)))


@red_lines_router.post("/red-line-cases", status_code=201, response_model=CreatedPublic)
def open_red_line_case(
    body: RedLineCaseCreate, reviews: Reviews, principal: CurrentPrincipal, meta: CommandMeta
) -> CreatedPublic:
    """hr or qc open a case by hand with evidence links; a person decides it later."""
    principal.require(*CASE_OPENERS)
    evidence = [EvidenceLink(e.kind, e.ref, e.note) for e in body.evidence]
    case_id = reviews.open_red_line_case(
        body.rep_id, body.rule_code, evidence, body.description, meta, region=body.region
    )
    return CreatedPublic(id=case_id)


@red_lines_router.post("/red-line-cases/{case_id}/decision", response_model=RedLineDecisionPublic)
def decide_red_line_case(
    case_id: UUID,
    body: RedLineDecisionCreate,
    reviews: Reviews,
    principal: CurrentPrincipal,
    meta: CommandMeta,
) -> RedLineDecisionPublic:
    """hr confirms or dismisses a case, with the reason. A confirmed case marks the rep's
    current review (non-promotable, no bonus) or, with none open, their next one."""
    principal.require(*CALIBRATORS)
    marked = reviews.decide_red_line_case(case_id, body.decision, body.reason, meta)
    return RedLineDecisionPublic(case_id=case_id, decision=body.decision, marked_review_ids=marked)


routers = (reviews_router, red_lines_router)

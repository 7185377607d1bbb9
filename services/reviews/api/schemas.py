"""What the reviews API reads (`XCreate`) and answers (`XPublic`); Field constraints make bad input a
422 that names the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.reviews.domain.red_line import RULE_CODE
from services.reviews.domain.values import EVIDENCE_KINDS, MAX_LEVEL, MAX_RATING, VALUES

ValueName = Literal["customer_first", "teamwork", "embrace_change", "integrity", "passion", "dedication"]
assert get_args(ValueName) == VALUES, "the API's value names must be the domain's six values"
EvidenceKind = Literal["event", "visit", "flag", "document", "url"]
assert get_args(EvidenceKind) == EVIDENCE_KINDS

QuarterText = Annotated[str, Field(pattern=r"^\d{4}Q[1-4]$", examples=["2026Q1"])]
Region = Annotated[str, Field(min_length=1, max_length=64, examples=["hangzhou"])]
RepId = Annotated[str, Field(min_length=1, max_length=64, examples=["rep-17"])]
Level = Annotated[int, Field(ge=1, le=MAX_LEVEL)]
Rating = Annotated[int, Field(ge=1, le=MAX_RATING, description="1 (far below) to 5 (far above)")]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
RuleCode = Annotated[str, Field(pattern=RULE_CODE.pattern, examples=["advance_payment"])]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- opening reviews -----------------------------------------------------------------------


class QuarterReviewsCreate(_In):
    """Open the quarter's review of every active rep of a region."""

    region: Region
    quarter: QuarterText


class ReviewCreate(_In):
    """Open one rep's review for a quarter (a newcomer, or one a region run missed)."""

    rep_id: RepId
    quarter: QuarterText


class CreatedPublic(BaseModel):
    id: UUID


class QuarterReviewsPublic(BaseModel):
    region: str
    quarter: str
    review_ids: list[UUID] = Field(description="The reviews opened now; reps who had one are skipped")


# --- assessing -----------------------------------------------------------------------------


class ValueEvidenceCreate(_In):
    """One level of one value met, backed by a written example of the behaviour (行为事例)."""

    value: ValueName
    level: Level
    example: str = Field(min_length=1, max_length=2000)


class SelfAssessmentCreate(_In):
    """The rep's own levels met; 通关: a level counts only when every lower one is met too."""

    evidence: list[ValueEvidenceCreate] = Field(max_length=len(VALUES) * MAX_LEVEL)


class ManagerAssessmentCreate(_In):
    """The manager's levels met for each value, each with an example."""

    evidence: list[ValueEvidenceCreate] = Field(min_length=1, max_length=len(VALUES) * MAX_LEVEL)


class PerformanceRatingCreate(_In):
    rating: Rating
    comment: str = Field(min_length=1, max_length=2000)


class ValueAdjustmentCreate(_In):
    value: ValueName
    score: int = Field(ge=0, le=MAX_LEVEL, description="Levels 1..score are taken as met")


class CalibrationCreate(_In):
    """hr's calibration: adjusted value scores and/or rating, with the reason."""

    adjustments: list[ValueAdjustmentCreate] = Field(default_factory=list, max_length=len(VALUES))
    rating: Rating | None = None
    reason: Reason


class CorrectionCreate(CalibrationCreate):
    """hr's correction of a completed review: a new event with a new outcome, never an edit."""


# --- reviews as the desks see them ----------------------------------------------------------


class OutcomePublic(_Out):
    value_scores: dict[str, int]
    values_score: float = Field(description="0..1")
    performance_score: float = Field(description="0..1")
    overall_score: float = Field(description="0..1, values and performance weighed 50/50 by default")
    values_level: str
    performance_level: str
    band: str = Field(description="A, B or C")
    category: str = Field(description="star, wild_dog, white_rabbit, bull, dog or red_line")
    values_pass: bool
    performance_pass: bool
    promotable: bool
    bonus_eligible: bool
    exit_warning: bool
    red_line: bool
    reasons: list[str]


class ReviewPublic(_Out):
    review_id: UUID
    rep_id: str
    region: str
    quarter: str
    stage: str = Field(
        description="open, self_assessed, manager_assessing, ready_for_calibration, calibrated or completed"
    )
    opened_at: datetime
    self_scores: dict[str, int] | None
    manager_scores: dict[str, int] | None
    manager_id: str | None
    rating: int | None
    calibrated: bool
    calibrated_scores: dict[str, int] | None
    calibrated_rating: int | None
    outcome: OutcomePublic | None
    completed_at: datetime | None
    red_line_case_ids: list[str]
    corrections: int


class ValueEvidencePublic(_Out):
    value: str
    level: int
    example: str


class ReviewEvidencePublic(BaseModel):
    review_id: UUID
    self_assessment: list[ValueEvidencePublic]
    manager_assessment: list[ValueEvidencePublic]


class QuarterResultsPublic(_Out):
    """A rep's results counted from the leads and visits topics (fabricated visits excluded)."""

    rep_id: str
    quarter: str
    conversions: int
    visits: int


# --- red lines ------------------------------------------------------------------------------


class RedLineRuleCreate(_In):
    code: RuleCode
    name: str = Field(min_length=1, max_length=200)
    name_zh: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)


class RedLineRulePublic(_Out):
    code: str
    name: str
    name_zh: str
    description: str


class RuleRetirementCreate(_In):
    reason: Reason


class EvidenceLinkCreate(_In):
    kind: EvidenceKind
    ref: str = Field(min_length=1, max_length=500, description="An event id, visit id, flag id, URL…")
    note: str = Field(default="", max_length=1000)


class RedLineCaseCreate(_In):
    """hr or qc open a case by hand; the rep's region comes from the roster, or is given here."""

    rep_id: RepId
    rule_code: RuleCode
    evidence: list[EvidenceLinkCreate] = Field(min_length=1, max_length=50)
    description: str = Field(min_length=1, max_length=4000)
    region: Region | None = None


class EvidenceLinkPublic(_Out):
    kind: str
    ref: str
    note: str


class RedLineCasePublic(_Out):
    case_id: UUID
    rep_id: str
    region: str
    rule_code: str
    rule_name: str
    source: str = Field(description="fabrication_confirmed (from the visits service) or by_hand")
    evidence: list[EvidenceLinkPublic]
    description: str
    visit_id: str | None
    opened_by: str
    opened_at: datetime
    status: str = Field(description="open, confirmed or dismissed")
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str


class RedLineDecisionCreate(_In):
    decision: Literal["confirmed", "dismissed"]
    reason: Reason


class RedLineDecisionPublic(BaseModel):
    case_id: UUID
    decision: str
    marked_review_ids: list[UUID] = Field(description="Reviews the confirmed case marked now")


# --- history --------------------------------------------------------------------------------


class RepHistoryPublic(_Out):
    rep_id: str
    reviews: list[ReviewPublic] = Field(description="By quarter, oldest first")
    trend: str = Field(description="improving, declining, steady or not_enough_history")
    red_line_cases: list[RedLineCasePublic]


class RegionDistributionPublic(_Out):
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

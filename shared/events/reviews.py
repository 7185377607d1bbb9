"""Public events of the reviews service (topic `<prefix>.reviews`)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from shared.events.base import IntegrationEvent


class ReviewsEvent(IntegrationEvent):
    service: ClassVar[str] = "reviews"


class ReviewOutcome(BaseModel):
    """A review's outcome: scores 0..1, band A/B/C, talent category and eligibility."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value_scores: dict[str, int]
    values_score: float
    performance_score: float
    overall_score: float
    values_level: str
    performance_level: str
    band: str
    category: str  # star 明星, wild_dog 野狗, white_rabbit 小白兔, bull 老黄牛, dog 狗, red_line 高压线
    values_pass: bool
    performance_pass: bool
    promotable: bool
    bonus_eligible: bool
    exit_warning: bool
    red_line: bool
    reasons: list[str]


class EvidenceRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str  # event, visit, flag, document, url
    ref: str
    note: str = ""


class ReviewOpened(ReviewsEvent):
    """A rep's review for a quarter was opened."""

    event_type: ClassVar[str] = "ReviewOpened"
    review_id: str
    rep_id: str
    region: str
    quarter: str
    opened_at: datetime
    red_line_case_ids: list[str]


class SelfAssessed(ReviewsEvent):
    """The rep scored themself on the six values (通关 scores, 0..5)."""

    event_type: ClassVar[str] = "SelfAssessed"
    review_id: str
    rep_id: str
    region: str
    quarter: str
    value_scores: dict[str, int]
    assessed_at: datetime


class ManagerAssessed(ReviewsEvent):
    """The manager recorded the levels met for each value, each backed by an example."""

    event_type: ClassVar[str] = "ManagerAssessed"
    review_id: str
    rep_id: str
    region: str
    quarter: str
    manager_id: str
    value_scores: dict[str, int]
    assessed_at: datetime


class PerformanceRated(ReviewsEvent):
    """The manager rated the rep's performance, beside the quarter's counted results."""

    event_type: ClassVar[str] = "PerformanceRated"
    review_id: str
    rep_id: str
    region: str
    quarter: str
    manager_id: str
    rating: int
    conversions: int
    visits: int
    rated_at: datetime


class ReviewCalibrated(ReviewsEvent):
    """hr calibrated the review: the value scores and rating that the outcome will use."""

    event_type: ClassVar[str] = "ReviewCalibrated"
    review_id: str
    rep_id: str
    region: str
    quarter: str
    value_scores: dict[str, int]
    rating: int
    reason: str
    calibrated_by: str
    calibrated_at: datetime


class ReviewCompleted(ReviewsEvent):
    """The review's outcome. A later correction or red-line mark comes as another event."""

    event_type: ClassVar[str] = "ReviewCompleted"
    review_id: str
    rep_id: str
    region: str
    quarter: str
    conversions: int
    visits: int
    outcome: ReviewOutcome
    completed_by: str
    completed_at: datetime


class ReviewCorrected(ReviewsEvent):
    """hr corrected a completed review; the outcome given here replaces the earlier one."""

    event_type: ClassVar[str] = "ReviewCorrected"
    review_id: str
    rep_id: str
    region: str
    quarter: str
    reason: str
    outcome: ReviewOutcome
    corrected_by: str
    corrected_at: datetime


class ReviewRedLineMarked(ReviewsEvent):
    """A confirmed red-line case marked the review: non-promotable, no bonus. When the review
    was already completed, `outcome` is its revised outcome."""

    event_type: ClassVar[str] = "ReviewRedLineMarked"
    review_id: str
    rep_id: str
    region: str
    quarter: str
    case_id: str
    rule_code: str
    outcome: ReviewOutcome | None = None
    marked_at: datetime


class RedLineCaseOpened(ReviewsEvent):
    """A suspected red-line breach, with its evidence, waiting for a person's decision."""

    event_type: ClassVar[str] = "RedLineCaseOpened"
    case_id: str
    rep_id: str
    region: str
    rule_code: str
    rule_name: str
    source: str  # fabrication_confirmed | by_hand
    visit_id: str | None = None
    evidence: list[EvidenceRef]
    description: str
    opened_by: str
    opened_at: datetime


class RedLineCaseDecided(ReviewsEvent):
    """A person confirmed or dismissed a red-line case, with the reason."""

    event_type: ClassVar[str] = "RedLineCaseDecided"
    case_id: str
    rep_id: str
    region: str
    rule_code: str
    decision: str  # confirmed | dismissed
    reason: str
    decided_by: str
    decided_at: datetime


EVENTS: tuple[type[ReviewsEvent], ...] = (
    ReviewOpened,
    SelfAssessed,
    ManagerAssessed,
    PerformanceRated,
    ReviewCalibrated,
    ReviewCompleted,
    ReviewCorrected,
    ReviewRedLineMarked,
    RedLineCaseOpened,
    RedLineCaseDecided,
)

"""In-memory views of the reviews store: the roster of reps, the review board and the red-line case desk."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from services.reviews.domain.outcome import Outcome
from services.reviews.domain.red_line import OPEN, RedLineCase
from services.reviews.domain.rep import Rep
from services.reviews.domain.review import (
    CALIBRATED,
    COMPLETED,
    MANAGER_ASSESSING,
    READY_FOR_CALIBRATION,
    SELF_ASSESSED,
    Review,
)
from services.reviews.domain.review import OPEN as REVIEW_OPEN
from services.reviews.domain.values import EvidenceLink, levels_by_value, value_scores
from shared.application import ReadModel


@dataclass(frozen=True)
class RepView:
    rep_id: str
    region: str
    active: bool


class Roster(ReadModel):
    """Which reps the service knows, in which region, and whether they are active."""

    def __init__(self) -> None:
        self.reps: dict[str, RepView] = {}
        self._rep_ids: dict[UUID, str] = {}

    def apply(self, domain_event: Any) -> None:
        if isinstance(domain_event, Rep.Registered):
            self._rep_ids[domain_event.originator_id] = domain_event.rep_id
            self.reps[domain_event.rep_id] = RepView(
                domain_event.rep_id, domain_event.region, domain_event.active
            )
        elif isinstance(domain_event, Rep.Changed):
            rep_id = self._rep_ids[domain_event.originator_id]
            self.reps[rep_id] = RepView(rep_id, domain_event.region, domain_event.active)

    def active_in(self, region: str) -> list[str]:
        return sorted(r.rep_id for r in self.reps.values() if r.active and r.region == region)

    def regions(self) -> list[str]:
        """Regions with at least one active rep."""
        return sorted({r.region for r in self.reps.values() if r.active})


@dataclass
class ReviewView:
    """A review as the desks see it. Evidence texts stay in the store; scores are shown."""

    review_id: UUID
    rep_id: str
    region: str
    quarter: str
    opened_at: datetime
    self_scores: dict[str, int] | None = None
    manager_scores: dict[str, int] | None = None
    manager_id: str | None = None
    rating: int | None = None
    calibrated: bool = False
    calibrated_scores: dict[str, int] | None = None
    calibrated_rating: int | None = None
    outcome: Outcome | None = None
    completed_at: datetime | None = None
    red_line_case_ids: list[str] = field(default_factory=list)
    corrections: int = 0

    @property
    def stage(self) -> str:
        if self.outcome is not None:
            return COMPLETED
        if self.calibrated:
            return CALIBRATED
        if self.manager_scores is not None and self.rating is not None:
            return READY_FOR_CALIBRATION
        if self.manager_scores is not None or self.rating is not None:
            return MANAGER_ASSESSING
        if self.self_scores is not None:
            return SELF_ASSESSED
        return REVIEW_OPEN

    def public(self) -> ReviewView:
        """A copy callers may keep without seeing later changes."""
        return ReviewView(**{**self.__dict__, "red_line_case_ids": list(self.red_line_case_ids)})


class ReviewBoard(ReadModel):
    """Every review, by id, by rep and by region and quarter; which cases marked which reviews."""

    def __init__(self) -> None:
        self.reviews: dict[UUID, ReviewView] = {}
        self.by_rep: dict[str, list[UUID]] = {}
        self.by_region_quarter: dict[tuple[str, str], list[UUID]] = {}
        self.marked_by_case: dict[str, set[UUID]] = {}

    def apply(self, domain_event: Any) -> None:
        if isinstance(domain_event, Review.Opened):
            view = ReviewView(
                review_id=domain_event.originator_id,
                rep_id=domain_event.rep_id,
                region=domain_event.region,
                quarter=domain_event.quarter,
                opened_at=domain_event.meta.at,
                red_line_case_ids=list(domain_event.red_line_case_ids),
            )
            self.reviews[view.review_id] = view
            self.by_rep.setdefault(view.rep_id, []).append(view.review_id)
            self.by_region_quarter.setdefault((view.region, view.quarter), []).append(view.review_id)
            for case_id in view.red_line_case_ids:
                self.marked_by_case.setdefault(case_id, set()).add(view.review_id)
            return
        if not isinstance(domain_event, Review.Event) or domain_event.originator_id not in self.reviews:
            return
        view = self.reviews[domain_event.originator_id]
        if isinstance(domain_event, Review.SelfAssessed):
            view.self_scores = value_scores(levels_by_value(domain_event.evidence))
        elif isinstance(domain_event, Review.ManagerAssessed):
            view.manager_scores = value_scores(levels_by_value(domain_event.evidence))
            view.manager_id = domain_event.meta.actor_id
        elif isinstance(domain_event, Review.PerformanceRated):
            view.rating = domain_event.rating
        elif isinstance(domain_event, Review.Calibrated):
            view.calibrated = True
            view.calibrated_scores = dict(domain_event.value_scores)
            view.calibrated_rating = domain_event.calibrated_rating
        elif isinstance(domain_event, Review.Completed):
            view.outcome = domain_event.outcome
            view.completed_at = domain_event.meta.at
        elif isinstance(domain_event, Review.Corrected):
            view.outcome = domain_event.outcome
            view.corrections += 1
        elif isinstance(domain_event, Review.RedLineMarked):
            view.red_line_case_ids.append(domain_event.case_id)
            self.marked_by_case.setdefault(domain_event.case_id, set()).add(view.review_id)
            if domain_event.outcome is not None:
                view.outcome = domain_event.outcome

    def of_rep(self, rep_id: str) -> list[ReviewView]:
        return sorted((self.reviews[i] for i in self.by_rep.get(rep_id, ())), key=lambda v: v.quarter)

    def in_region(self, region: str, quarter: str) -> list[ReviewView]:
        ids = self.by_region_quarter.get((region, quarter), ())
        return sorted((self.reviews[i] for i in ids), key=lambda v: v.rep_id)


@dataclass
class CaseView:
    case_id: UUID
    rep_id: str
    region: str
    rule_code: str
    rule_name: str
    source: str
    evidence: list[EvidenceLink]
    description: str
    visit_id: str | None
    opened_by: str
    opened_at: datetime
    status: str = OPEN
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str = ""

    def public(self) -> CaseView:
        return CaseView(**{**self.__dict__, "evidence": list(self.evidence)})


class CaseDesk(ReadModel):
    """Red-line cases for hr and qc: open ones to decide, and every rep's record."""

    def __init__(self) -> None:
        self.cases: dict[UUID, CaseView] = {}

    def apply(self, domain_event: Any) -> None:
        if isinstance(domain_event, RedLineCase.Opened):
            self.cases[domain_event.originator_id] = CaseView(
                case_id=domain_event.originator_id,
                rep_id=domain_event.rep_id,
                region=domain_event.region,
                rule_code=domain_event.rule_code,
                rule_name=domain_event.rule_name,
                source=domain_event.source,
                evidence=list(domain_event.evidence),
                description=domain_event.description,
                visit_id=domain_event.visit_id,
                opened_by=domain_event.meta.actor_id,
                opened_at=domain_event.meta.at,
            )
        elif isinstance(domain_event, RedLineCase.Decided):
            view = self.cases[domain_event.originator_id]
            view.status = domain_event.decision
            view.decided_by = domain_event.meta.actor_id
            view.decided_at = domain_event.meta.at
            view.decision_reason = domain_event.reason

    def select(
        self, *, status: str | None = None, region: str | None = None, rep_id: str | None = None
    ) -> list[CaseView]:
        found = [
            case
            for case in self.cases.values()
            if (status is None or case.status == status)
            and (region is None or case.region == region)
            and (rep_id is None or case.rep_id == rep_id)
        ]
        return sorted(found, key=lambda c: (c.opened_at, str(c.case_id)))

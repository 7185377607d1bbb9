"""The outcome of a review, computed by one pure function: scores, band, talent category, eligibility."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.reviews.domain.values import MAX_LEVEL, MAX_RATING, VALUE_NAMES_ZH, VALUES, value_scores
from services.reviews.policy import OutcomePolicy

BANDS = ("A", "B", "C")

# Talent categories (人才分类). Rows: values; columns: results.
#                  weak results    middle results   strong results
#   weak values    dog             dog              wild_dog
#   middle values  white_rabbit    bull             bull
#   strong values  white_rabbit    bull             star
STAR = "star"
"""明星: strong values and strong results — promote, reward."""
WILD_DOG = "wild_dog"
"""野狗: strong results with weak values — must change or leave; never promoted."""
WHITE_RABBIT = "white_rabbit"
"""小白兔: good values without results — coach; good values alone are not enough."""
BULL = "bull"
"""老黄牛 (bull): solid values and results, neither weak — the steady core of the team."""
DOG = "dog"
"""狗: weak values and no strong results — out."""
RED_LINE = "red_line"
"""高压线: a confirmed red-line breach overrides everything else."""
CATEGORIES = (STAR, WILD_DOG, WHITE_RABBIT, BULL, DOG, RED_LINE)

WEAK, MIDDLE, STRONG = "weak", "middle", "strong"


@dataclass(frozen=True)
class OutcomeInputs:
    """What the outcome is computed from; all of it is stored with the outcome."""

    value_levels: Mapping[str, frozenset[int]]  # levels met per value, after calibration
    conversions: int  # leads converted in the quarter
    visits: int  # visits logged in the quarter
    rating: int  # the manager's (or calibrated) performance rating, 1..5
    red_line: bool = False  # a confirmed red-line case marks this review
    previous_bands: tuple[str, ...] = ()  # bands of the quarters before, most recent first


@dataclass(frozen=True)
class Outcome:
    value_scores: Mapping[str, int]
    values_score: float
    performance_score: float
    overall_score: float
    values_level: str
    performance_level: str
    band: str
    category: str
    values_pass: bool
    performance_pass: bool
    promotable: bool
    bonus_eligible: bool
    exit_warning: bool
    red_line: bool
    reasons: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "value_scores": dict(self.value_scores),
            "values_score": self.values_score,
            "performance_score": self.performance_score,
            "overall_score": self.overall_score,
            "values_level": self.values_level,
            "performance_level": self.performance_level,
            "band": self.band,
            "category": self.category,
            "values_pass": self.values_pass,
            "performance_pass": self.performance_pass,
            "promotable": self.promotable,
            "bonus_eligible": self.bonus_eligible,
            "exit_warning": self.exit_warning,
            "red_line": self.red_line,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(**{**data, "value_scores": dict(data["value_scores"]), "reasons": tuple(data["reasons"])})


def _ratio(count: int, target: int) -> float:
    return min(max(count, 0) / target, 1.0)


def performance_score(conversions: int, visits: int, rating: int, policy: OutcomePolicy) -> float:
    """Results (conversions and visits against their targets) blended with the manager's rating."""
    results = policy.conversions_share * _ratio(conversions, policy.conversions_target) + (
        1 - policy.conversions_share
    ) * _ratio(visits, policy.visits_target)
    return round(policy.results_weight * results + (1 - policy.results_weight) * rating / MAX_RATING, 4)


def _category(values_level: str, performance_level: str) -> str:
    if values_level == WEAK:
        return WILD_DOG if performance_level == STRONG else DOG
    if performance_level == WEAK:
        return WHITE_RABBIT
    if values_level == STRONG and performance_level == STRONG:
        return STAR
    return BULL


def _band(overall: float, policy: OutcomePolicy) -> str:
    if overall >= policy.band_a_min:
        return "A"
    if overall >= policy.band_b_min:
        return "B"
    return "C"


def compute_outcome(inputs: OutcomeInputs, policy: OutcomePolicy) -> Outcome:
    """Values and performance, each normalised to 0..1, weighed (50/50 by default) into a band;
    the talent category from where each half falls; promotion and bonus only when both halves
    pass; a confirmed red line overrides everything; consecutive C bands raise an exit warning."""
    scores = value_scores(inputs.value_levels)
    values = round(sum(scores.values()) / (MAX_LEVEL * len(VALUES)), 4)
    performance = performance_score(inputs.conversions, inputs.visits, inputs.rating, policy)
    overall = round(policy.values_weight * values + (1 - policy.values_weight) * performance, 4)
    reasons: list[str] = []

    below_floor = [v for v in VALUES if scores[v] < policy.min_each_value]
    if values < policy.values_pass or below_floor:
        values_level = WEAK
        if values < policy.values_pass:
            reasons.append(f"values {values:.2f} below the pass mark {policy.values_pass:.2f}")
        for value in below_floor:
            reasons.append(
                f"{value} ({VALUE_NAMES_ZH[value]}) scored {scores[value]}, "
                f"every value needs at least {policy.min_each_value}"
            )
    else:
        values_level = STRONG if values >= policy.values_strong else MIDDLE
    if performance < policy.performance_pass:
        performance_level = WEAK
        reasons.append(f"performance {performance:.2f} below the pass mark {policy.performance_pass:.2f}")
    else:
        performance_level = STRONG if performance >= policy.performance_strong else MIDDLE

    values_pass = values_level != WEAK
    performance_pass = performance_level != WEAK
    if inputs.red_line:
        reasons.insert(0, "a confirmed red-line (高压线) breach overrides the review")
        return Outcome(
            value_scores=scores,
            values_score=values,
            performance_score=performance,
            overall_score=overall,
            values_level=values_level,
            performance_level=performance_level,
            band="C",
            category=RED_LINE,
            values_pass=values_pass,
            performance_pass=performance_pass,
            promotable=False,
            bonus_eligible=False,
            exit_warning=True,
            red_line=True,
            reasons=tuple(reasons),
        )

    band = _band(overall, policy)
    both_pass = values_pass and performance_pass
    c_streak = 0
    for previous in inputs.previous_bands:
        if previous != "C":
            break
        c_streak += 1
    exit_warning = band == "C" and c_streak + 1 >= policy.exit_after_c_bands
    if exit_warning:
        reasons.append(f"{c_streak + 1} consecutive C bands")
    return Outcome(
        value_scores=scores,
        values_score=values,
        performance_score=performance,
        overall_score=overall,
        values_level=values_level,
        performance_level=performance_level,
        band=band,
        category=_category(values_level, performance_level),
        values_pass=values_pass,
        performance_pass=performance_pass,
        promotable=both_pass and band in policy.promotion_bands,
        bonus_eligible=both_pass and band in policy.bonus_bands,
        exit_warning=exit_warning,
        red_line=False,
        reasons=tuple(reasons),
    )

"""Settings of the reviews service as plain data: outcome thresholds, targets, the red-line seed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RedLineRule:
    """One red line (高压线): breaching it ends employment. The list is data, edited by hr."""

    code: str
    name: str
    name_zh: str
    description: str = ""


# The rules the company started with (cut back to six in 2011); hr edits the list at run time.
SEED_RED_LINE_RULES: tuple[RedLineRule, ...] = (
    RedLineRule("fabricated_visit", "Fabricated visit", "虚假拜访", "A visit logged that did not happen"),
    RedLineRule("advance_payment", "Advance payment", "垫款", "Paying a customer's fee on their behalf"),
    RedLineRule("exam_cheating", "Exam cheating", "考试作弊", "Cheating in a company exam"),
    RedLineRule("kickback", "Kickback", "回扣", "Giving or taking a kickback on a sale"),
    RedLineRule("order_diversion", "Order diversion", "飞单", "Taking an order outside the company"),
    RedLineRule("false_promise", "False promise", "虚假承诺", "Promising what the product does not do"),
)


@dataclass(frozen=True)
class OutcomePolicy:
    """Thresholds of the outcome function. Scores are normalised to 0..1."""

    values_weight: float = 0.5  # the rest is performance: 50/50 by default
    values_pass: float = 0.5  # below: values are weak, the values half fails
    values_strong: float = 0.7
    min_each_value: int = 1  # a value scored below this fails the values half on its own
    performance_pass: float = 0.5
    performance_strong: float = 0.7
    band_a_min: float = 0.8
    band_b_min: float = 0.6
    conversions_target: int = 12  # leads converted in a quarter that count as full results
    visits_target: int = 180  # visits logged in a quarter that count as full activity
    results_weight: float = 0.6  # share of the results (counts) in performance; the rest is the rating
    conversions_share: float = 0.7  # share of conversions within the results; the rest is visits
    promotion_bands: tuple[str, ...] = ("A",)
    bonus_bands: tuple[str, ...] = ("A", "B")
    exit_after_c_bands: int = 2  # this many consecutive C bands raise an exit warning

    def __post_init__(self) -> None:
        for name in (
            "values_weight",
            "values_pass",
            "values_strong",
            "performance_pass",
            "performance_strong",
            "band_a_min",
            "band_b_min",
            "results_weight",
            "conversions_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.values_pass > self.values_strong:
            raise ValueError("values_pass must not exceed values_strong")
        if self.performance_pass > self.performance_strong:
            raise ValueError("performance_pass must not exceed performance_strong")
        if self.band_b_min > self.band_a_min:
            raise ValueError("band_b_min must not exceed band_a_min")
        if self.conversions_target < 1 or self.visits_target < 1:
            raise ValueError("targets must be at least 1")
        if self.exit_after_c_bands < 1:
            raise ValueError("exit_after_c_bands must be at least 1")
        if not 0 <= self.min_each_value <= 5:
            raise ValueError("min_each_value must be between 0 and 5")


@dataclass(frozen=True)
class ReviewsPolicy:
    outcome: OutcomePolicy = field(default_factory=OutcomePolicy)
    min_example_chars: int = 10  # a behaviour example shorter than this says nothing
    min_comment_chars: int = 10  # the same for the manager's comment on a performance rating
    trend_tolerance: float = 0.05  # a change of overall score within this is "steady"
    # The scheduler opens every active rep's review this many days before the quarter ends.
    review_window_days: int = 14
    red_line_seed: tuple[RedLineRule, ...] = SEED_RED_LINE_RULES

    def __post_init__(self) -> None:
        if self.min_example_chars < 1 or self.min_comment_chars < 1:
            raise ValueError("a written example or comment needs at least 1 character")
        if not 0 <= self.review_window_days <= 92:
            raise ValueError("review_window_days must be between 0 and 92")
        if self.trend_tolerance < 0:
            raise ValueError("trend_tolerance must not be negative")

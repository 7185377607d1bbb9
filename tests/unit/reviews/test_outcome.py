"""The outcome function, table by table: category boundaries, 通关, bands, eligibility, red line, exits."""

from __future__ import annotations

import pytest

from services.reviews.domain.outcome import (
    BULL,
    DOG,
    RED_LINE,
    STAR,
    WHITE_RABBIT,
    WILD_DOG,
    OutcomeInputs,
    compute_outcome,
    performance_score,
)
from services.reviews.domain.values import VALUES, tongguan_score
from services.reviews.policy import OutcomePolicy

# Performance here is conversions / 10 alone, so a boundary is one conversion away.
POLICY = OutcomePolicy(results_weight=1.0, conversions_share=1.0, conversions_target=10)

# Six value scores adding up to a total, every value at least 1.
SPREADS = {
    14: (3, 3, 2, 2, 2, 2),  # 0.4667: weak
    15: (3, 3, 3, 2, 2, 2),  # 0.5: just passes
    18: (3, 3, 3, 3, 3, 3),  # 0.6
    20: (4, 4, 3, 3, 3, 3),  # 0.6667: just under strong
    21: (4, 4, 4, 3, 3, 3),  # 0.7: strong
    24: (4, 4, 4, 4, 4, 4),  # 0.8
    30: (5, 5, 5, 5, 5, 5),
}


def levels(*scores: int) -> dict[str, frozenset[int]]:
    return {value: frozenset(range(1, score + 1)) for value, score in zip(VALUES, scores, strict=True)}


def inputs(values_total: int, conversions: int, **extra: object) -> OutcomeInputs:
    return OutcomeInputs(
        value_levels=levels(*SPREADS[values_total]),
        conversions=conversions,
        visits=0,
        rating=1,
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("values_total", "conversions", "category"),
    [
        (21, 7, STAR),  # both just strong
        (20, 7, BULL),  # values just under strong
        (21, 6, BULL),  # results just under strong
        (14, 7, WILD_DOG),  # strong results, values just under the pass mark: 野狗
        (15, 7, BULL),  # values just pass
        (14, 10, WILD_DOG),
        (14, 6, DOG),  # weak values, middling results
        (14, 4, DOG),  # weak both
        (21, 4, WHITE_RABBIT),  # strong values, results just under the pass mark: 小白兔
        (21, 5, BULL),  # results just pass
        (15, 4, WHITE_RABBIT),  # passing values without results
        (30, 0, WHITE_RABBIT),
        (15, 5, BULL),  # both just pass
    ],
)
def test_the_talent_category_follows_where_each_half_falls(
    values_total: int, conversions: int, category: str
) -> None:
    assert compute_outcome(inputs(values_total, conversions), POLICY).category == category


@pytest.mark.parametrize(
    ("values_total", "conversions", "overall", "band"),
    [
        (24, 8, 0.8, "A"),  # just A
        (24, 7, 0.75, "B"),  # just under A
        (18, 6, 0.6, "B"),  # just B
        (18, 5, 0.55, "C"),  # just under B
    ],
)
def test_values_and_performance_weigh_half_each_into_the_band(
    values_total: int, conversions: int, overall: float, band: str
) -> None:
    outcome = compute_outcome(inputs(values_total, conversions), POLICY)
    assert outcome.overall_score == overall
    assert outcome.band == band


@pytest.mark.parametrize(
    ("values_total", "conversions", "promotable", "bonus"),
    [
        (24, 8, True, True),  # star in band A
        (21, 7, False, True),  # star in band B: bonus, no promotion
        (14, 10, False, False),  # 野狗 in band B: strong results never buy a bonus with weak values
        (30, 4, False, False),  # 小白兔 in band B: good values alone are not enough
        (18, 5, False, False),  # both pass but band C
    ],
)
def test_promotion_and_bonus_need_both_halves_to_pass(
    values_total: int, conversions: int, promotable: bool, bonus: bool
) -> None:
    outcome = compute_outcome(inputs(values_total, conversions), POLICY)
    assert (outcome.promotable, outcome.bonus_eligible) == (promotable, bonus)


def test_one_value_with_no_level_met_fails_the_values_half_whatever_the_others() -> None:
    outcome = compute_outcome(
        OutcomeInputs(value_levels=levels(5, 5, 5, 0, 5, 5), conversions=10, visits=0, rating=1), POLICY
    )
    assert outcome.values_score == round(25 / 30, 4)
    assert outcome.values_pass is False
    assert outcome.category == WILD_DOG
    assert outcome.promotable is False and outcome.bonus_eligible is False
    assert any("integrity" in reason for reason in outcome.reasons)


@pytest.mark.parametrize(
    ("met", "score"),
    [
        ({1, 2, 3}, 3),
        ({1, 2, 4}, 2),  # the 4 is not earned without the 3
        ({2, 3, 4, 5}, 0),  # nothing counts without level 1
        ({1}, 1),
        (set(), 0),
        ({1, 2, 3, 4, 5}, 5),
    ],
)
def test_tongguan_a_level_counts_only_when_every_lower_level_is_met(met: set[int], score: int) -> None:
    assert tongguan_score(met) == score


def test_the_outcome_scores_values_by_the_tongguan_rule() -> None:
    gap = {value: frozenset({1, 2, 3, 5}) for value in VALUES}  # 5 without 4: scores 3
    outcome = compute_outcome(OutcomeInputs(value_levels=gap, conversions=6, visits=0, rating=1), POLICY)
    assert set(outcome.value_scores.values()) == {3}
    assert outcome.values_score == 0.6
    assert outcome.band == "B"


def test_a_confirmed_red_line_overrides_a_star_review() -> None:
    outcome = compute_outcome(inputs(30, 10, red_line=True), POLICY)
    assert outcome.category == RED_LINE
    assert outcome.band == "C"
    assert outcome.promotable is False and outcome.bonus_eligible is False
    assert outcome.exit_warning is True and outcome.red_line is True
    assert outcome.overall_score == 1.0  # the scores stay on record
    assert "red-line" in outcome.reasons[0]


@pytest.mark.parametrize(
    ("values_total", "conversions", "previous", "exit_after", "warning"),
    [
        (18, 5, ("C",), 2, True),  # second C in a row
        (18, 5, (), 2, False),  # first review
        (18, 5, ("B",), 2, False),
        (18, 5, ("B", "C"), 2, False),  # not consecutive
        (18, 6, ("C",), 2, False),  # this quarter is B
        (18, 5, ("C",), 3, False),  # the policy asks for three
        (18, 5, ("C", "C"), 3, True),
        (18, 5, (), 1, True),
    ],
)
def test_consecutive_c_bands_raise_an_exit_warning(
    values_total: int, conversions: int, previous: tuple[str, ...], exit_after: int, warning: bool
) -> None:
    policy = OutcomePolicy(
        results_weight=1.0, conversions_share=1.0, conversions_target=10, exit_after_c_bands=exit_after
    )
    outcome = compute_outcome(inputs(values_total, conversions, previous_bands=previous), policy)
    assert outcome.exit_warning is warning


@pytest.mark.parametrize(
    ("conversions", "visits", "rating", "score"),
    [
        (12, 180, 5, 1.0),
        (24, 400, 5, 1.0),  # results beyond target count as full, no more
        (6, 90, 3, 0.54),  # 0.6 × (0.7 × 0.5 + 0.3 × 0.5) + 0.4 × 3/5
        (0, 0, 1, 0.08),  # the rating alone
    ],
)
def test_performance_blends_results_against_targets_with_the_managers_rating(
    conversions: int, visits: int, rating: int, score: float
) -> None:
    assert performance_score(conversions, visits, rating, OutcomePolicy()) == score


def test_a_policy_with_thresholds_out_of_order_is_refused() -> None:
    with pytest.raises(ValueError, match="values_pass"):
        OutcomePolicy(values_pass=0.8, values_strong=0.7)
    with pytest.raises(ValueError, match="band_b_min"):
        OutcomePolicy(band_a_min=0.5, band_b_min=0.6)


def test_a_quarter_of_a_year_no_calendar_can_hold_is_refused_naming_the_field() -> None:
    from services.reviews.domain.values import Quarter
    from shared.domain import RuleViolated

    with pytest.raises(RuleViolated, match="between 1970 and 2200") as refused:
        Quarter.parse("0000Q1")
    assert refused.value.field == "quarter"
    assert str(Quarter.parse("2026Q3")) == "2026Q3"

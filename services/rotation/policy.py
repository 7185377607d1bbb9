"""The rotation service's settings: tenure thresholds, the no-return window and the cost weights."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RotationPolicy:
    """Plain settings the platform fills from its typed settings; rules read them, never constants."""

    # Tenure, in calendar months from the start of the current posting.
    due_after_months: int = 6
    min_tenure_months: int = 3  # below this nobody is moved, not even to make a plan work
    max_tenure_months: int = 12  # past this the region is flagged as a risk
    # A manager may not go back to a region held in their last N postings (the current one counts).
    no_return_postings: int = 3
    # Managers past the minimum but not yet due may be drawn into a plan to make it work.
    draw_in_early_movers: bool = True
    # Cost of a move, in points: distance from the home base, distance moved, household moved.
    home_km_cost: float = 1.0
    move_km_cost: float = 0.5
    family_km_cost_per_dependant: float = 0.25
    early_move_cost_per_day: float = 10.0  # moving someone before they are due is a cost
    notice_days: int = 30  # default time from planning to the moves
    max_deferral_days: int = 183
    decline_hold_days: int = 90  # after declining, a manager is left out of plans this long

    def __post_init__(self) -> None:
        if not 0 <= self.min_tenure_months <= self.due_after_months <= self.max_tenure_months:
            raise ValueError("tenure settings need 0 <= min_tenure <= due_after <= max_tenure (months)")
        if self.no_return_postings < 0:
            raise ValueError("no_return_postings cannot be negative")
        weights = (
            self.home_km_cost,
            self.move_km_cost,
            self.family_km_cost_per_dependant,
            self.early_move_cost_per_day,
        )
        if any(weight < 0 for weight in weights):
            raise ValueError("cost weights cannot be negative")
        if self.notice_days < 0 or self.max_deferral_days < 1 or self.decline_hold_days < 0:
            raise ValueError("notice_days, max_deferral_days and decline_hold_days must be positive")

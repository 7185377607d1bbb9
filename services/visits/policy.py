"""The visits service's settings: validation limits and every detection rule's switch and threshold."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from services.visits.domain.values import RULES


@dataclass(frozen=True)
class VisitsPolicy:
    """Thresholds are settings, not code: the platform fills this from its typed settings.

    Each threshold is exclusive: a value exactly at the limit is allowed, only beyond it counts.
    """

    # --- validation of a logged visit ---
    # The phone's clock and the server's may differ a little; beyond this a time is "in the future".
    future_tolerance: timedelta = timedelta(minutes=2)
    # Older visits cannot be logged at all (ask a manager): the record would prove nothing.
    max_backdating: timedelta = timedelta(days=90)
    notes_max_chars: int = 4000

    # --- which rules run ---
    disabled_rules: frozenset[str] = field(default_factory=frozenset)

    # --- late entry (破窗理论: small breaches are caught early) ---
    late_entry_minor_after: timedelta = timedelta(hours=24)  # a minor breach, for the weekly summary
    late_entry_flag_after: timedelta = timedelta(hours=72)  # so late that it is flagged

    # --- evening bulk entry ---
    bulk_entry_window: timedelta = timedelta(minutes=30)  # recorded within this of one another
    bulk_entry_min_visits: int = 3
    bulk_entry_min_claimed_span: timedelta = timedelta(hours=3)  # yet claimed spread over this

    # --- impossible travel and overlap ---
    max_travel_speed_kmh: float = 120.0
    travel_min_distance_m: float = 1000.0  # nearer than this, GPS noise: never judged
    assumed_visit_duration: timedelta = timedelta(minutes=15)  # when the rep gave no leaving time

    # --- where and with what evidence ---
    far_from_customer_m: float = 500.0
    require_checkin_position: bool = True
    require_photo: bool = True
    max_checkin_accuracy_m: float = 200.0  # a fix less precise than this proves nothing

    # --- duplicates ---
    duplicate_within: timedelta = timedelta(hours=2)  # same lead, claimed times this close

    # --- how far around a visit the rules look at logging time ---
    history_window: timedelta = timedelta(days=3)

    def __post_init__(self) -> None:
        unknown = set(self.disabled_rules) - set(RULES)
        if unknown:
            raise ValueError(f"unknown rules {sorted(unknown)}; known: {list(RULES)}")
        if self.late_entry_flag_after < self.late_entry_minor_after:
            raise ValueError("late_entry_flag_after must not be shorter than late_entry_minor_after")
        if self.bulk_entry_min_visits < 2:
            raise ValueError("bulk_entry_min_visits must be at least 2")
        if self.max_travel_speed_kmh <= 0 or self.far_from_customer_m <= 0:
            raise ValueError("speed and distance limits must be positive")

    def enabled(self, rule: str) -> bool:
        return rule not in self.disabled_rules

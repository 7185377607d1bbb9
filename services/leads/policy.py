"""The leads service's settings: quota band, caps, follow-up windows and fairness thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class LeadsPolicy:
    """Plain settings the platform fills from its typed settings; rules read them, never constants."""

    # A rep's daily quota must lie in this band (每日 30–50 条).
    quota_min: int = 30
    quota_max: int = 50
    default_daily_quota: int = 40
    default_private_pool_cap: int = 20
    max_private_pool_cap: int = 200
    # An assigned lead must be followed up within this window of its assignment or last follow-up.
    follow_up_hours: float = 48.0
    # FollowUpDue is sent this long before the deadline.
    warn_before_hours: float = 12.0
    # A private lead with no progress for this long goes back to the pool.
    private_no_progress_days: float = 30.0
    private_warn_before_days: float = 3.0
    # A rep who lost a lead (reclaimed or released) cannot be given it again for this long.
    former_owner_lock_days: float = 7.0
    # Reps who joined within this many days of a distribution's day count as newcomers.
    newcomer_days: int = 90
    # Which calendar day an assignment falls on, for the daily quota.
    business_timezone: str = "Asia/Shanghai"
    # The scheduled daily distribution runs once a business day, from this local hour on.
    daily_distribution_hour: int = 8
    # Events written per transaction by bulk commands (distribution, sweeps, bulk registration).
    save_batch_size: int = 5000

    def __post_init__(self) -> None:
        if not 0 < self.quota_min <= self.default_daily_quota <= self.quota_max:
            raise ValueError("quota settings need 0 < quota_min <= default_daily_quota <= quota_max")
        if not 0 <= self.default_private_pool_cap <= self.max_private_pool_cap:
            raise ValueError("private pool settings need 0 <= default cap <= max cap")
        if self.follow_up_hours <= 0 or self.private_no_progress_days <= 0:
            raise ValueError("follow-up and no-progress windows must be positive")
        if not 0 <= self.warn_before_hours < self.follow_up_hours:
            raise ValueError("warn_before_hours must be shorter than the follow-up window")
        if not 0 <= self.private_warn_before_days < self.private_no_progress_days:
            raise ValueError("private_warn_before_days must be shorter than the no-progress limit")
        if self.former_owner_lock_days < 0 or self.newcomer_days < 0:
            raise ValueError("lock and newcomer windows cannot be negative")
        if not 0 <= self.daily_distribution_hour <= 23:
            raise ValueError("daily_distribution_hour must be an hour of the day (0-23)")
        if self.save_batch_size < 1:
            raise ValueError("save_batch_size must be at least 1")
        try:
            ZoneInfo(self.business_timezone)  # refuse an unknown zone at start-up, not mid-run
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown business_timezone {self.business_timezone!r}") from error

    @property
    def follow_up_window(self) -> timedelta:
        return timedelta(hours=self.follow_up_hours)

    @property
    def warn_before(self) -> timedelta:
        return timedelta(hours=self.warn_before_hours)

    @property
    def no_progress_window(self) -> timedelta:
        return timedelta(days=self.private_no_progress_days)

    @property
    def private_warn_before(self) -> timedelta:
        return timedelta(days=self.private_warn_before_days)

    @property
    def former_owner_lock(self) -> timedelta:
        return timedelta(days=self.former_owner_lock_days)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.business_timezone)

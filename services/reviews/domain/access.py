"""Who may do what in reviews: reps see their own, managers act in their region, hr calibrates and decides."""

from __future__ import annotations

from shared.domain import Forbidden, Meta

CALIBRATORS = ("hr",)  # calibrate, complete and correct reviews; decide red-line cases
CASE_OPENERS = ("hr", "qc")  # open a red-line case by hand
RULE_KEEPERS = ("hr", "admin")  # edit the red-line rule list
WIDE_READERS = ("hr", "qc", "ops", "admin")  # see every review and case


def require_role(meta: Meta, roles: tuple[str, ...], doing: str) -> None:
    if meta.actor_role not in roles:
        raise Forbidden(f"only {' or '.join(roles)} may {doing} (you are '{meta.actor_role}')")


def require_manager_of(meta: Meta, caller_region: str | None, region: str, doing: str) -> None:
    """A manager acts only in the region their token names."""
    if meta.actor_role != "manager":
        raise Forbidden(f"only the region's manager may {doing} (you are '{meta.actor_role}')")
    if caller_region != region:
        raise Forbidden(f"you manage '{caller_region}', not '{region}': you may not {doing} there")


def may_open_reviews(meta: Meta, caller_region: str | None, region: str) -> None:
    if meta.actor_role in ("hr", "admin"):
        return
    require_manager_of(meta, caller_region, region, "open reviews")


def may_view_review(role: str, actor_id: str, caller_region: str | None, rep_id: str, region: str) -> bool:
    """Reps see their own reviews, managers their region's, hr, qc, ops and admin all."""
    if role in WIDE_READERS:
        return True
    if role == "manager":
        return caller_region == region
    if role == "rep":
        return actor_id == rep_id
    return False


def may_view_region(role: str, caller_region: str | None, region: str) -> bool:
    return role in WIDE_READERS or (role == "manager" and caller_region == region)

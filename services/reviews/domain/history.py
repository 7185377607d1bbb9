"""Pure reading of a rep's reviews over time: the trend of their overall score."""

from __future__ import annotations

from collections.abc import Sequence

IMPROVING, DECLINING, STEADY, TOO_SHORT = "improving", "declining", "steady", "not_enough_history"


def trend(overall_scores: Sequence[float], tolerance: float) -> str:
    """Compare the last completed quarter with the one before; moves within `tolerance` are steady."""
    if len(overall_scores) < 2:
        return TOO_SHORT
    delta = overall_scores[-1] - overall_scores[-2]
    if delta > tolerance:
        return IMPROVING
    if delta < -tolerance:
        return DECLINING
    return STEADY

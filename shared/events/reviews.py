"""Public events of the reviews service (topic `<prefix>.reviews`)."""

from __future__ import annotations

from typing import ClassVar

from shared.events.base import IntegrationEvent


class ReviewsEvent(IntegrationEvent):
    service: ClassVar[str] = "reviews"


EVENTS: tuple[type[ReviewsEvent], ...] = ()

"""The broker is killed (kill -9) during a steady load of visits and started again: every visit
the visits service accepted reaches the reviews service once in effect: none lost, none counted
twice. Runs on a broker of its own, so killing it disturbs no other test."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from services.reviews.bootstrap import spec as reviews_spec
from shared.clock import MovableClock
from tests.conftest import Broker
from tests.integration.reviews.support import reviews_settings
from tests.integration.visits.support import (
    LeadsTopicWriter,
    consumed,
    lead_id,
    running_visits,
    visits_settings,
)
from tests.support.kafka_helpers import eventually
from tests.support.services import SIMULATION_START, running_service

HANGZHOU = (30.2741, 120.1551)
LEADS = [lead_id(f"kill-{n}") for n in range(4)]


@pytest.mark.slow
async def test_visits_accepted_while_the_broker_was_dead_are_each_counted_once_by_reviews(
    fault_broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    clock = MovableClock(SIMULATION_START + timedelta(hours=10))
    visits_conf = visits_settings(fault_broker.bootstrap, topic_prefix, tmp_path / "visits")
    reviews_conf = reviews_settings(
        kafka=fault_broker.bootstrap, topic_prefix=topic_prefix, data_dir=tmp_path / "reviews"
    )
    async with (
        running_visits(visits_conf, clock) as visits,
        running_service(reviews_spec(), reviews_conf, clock) as reviews,
        LeadsTopicWriter(fault_broker.bootstrap, topic_prefix) as leads,
    ):
        for lead in LEADS:
            await leads.registered(lead, "hangzhou", HANGZHOU, SIMULATION_START)
            await leads.assigned(lead, "rep-a", "hangzhou", SIMULATION_START)
        await consumed(visits.application, f"{topic_prefix}.visits", leads)

        rep = visits.token("rep-a", "rep", region="hangzhou")
        accepted: list[str] = []

        async def log_visits(count: int) -> None:
            for _ in range(count):
                n = len(accepted)
                body = {
                    "lead_id": LEADS[n % len(LEADS)],
                    "visited_at": (clock.now() - timedelta(minutes=300 - 5 * n)).isoformat(),
                    "position": {"lat": HANGZHOU[0], "lon": HANGZHOU[1]},
                    "checkin": {
                        "position": {"lat": HANGZHOU[0], "lon": HANGZHOU[1], "accuracy_m": 10},
                        "photo_hash": "ab" * 32,
                    },
                }
                response = await visits.client.post("/visits", json=body, headers=rep)
                assert response.status_code == 201, response.text
                accepted.append(response.json()["id"])

        def counted() -> int:
            return int(reviews.application.quarter_results("rep-a", "2026Q1").visits)

        await log_visits(12)
        await eventually(lambda: counted() >= 1, what="visits flowing to reviews before the kill")
        await asyncio.to_thread(
            fault_broker.run, "kill"
        )  # kill -9: the broker gets no chance to flush or hand over
        await log_visits(12)  # the store is the only write on the request path: still accepted
        await asyncio.to_thread(fault_broker.run, "up")
        await log_visits(12)

        await eventually(lambda: counted() >= len(accepted), timeout=120, what="every accepted visit counted")
        relay = visits.context.relay
        await eventually(
            lambda: relay.published_position() >= (visits.application.recorder.max_notification_id() or 0),
            timeout=60,
            what="the visits relay caught up",
        )
        reviews_consumer = reviews.context.consumers[0]
        await eventually(lambda: reviews_consumer.connected, what="reviews consuming")
        assert len(accepted) == 36
        assert counted() == 36  # each accepted visit once: none lost, none twice

"""`ironarmy simulate` through the gateway of the whole system: every planted fabrication is
flagged, the lazy rep's leads are reclaimed and dealt to colleagues, the reviews come out as
planted, and the rotation is carried out on its date."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from typer.testing import CliRunner

from shared.cli import app
from shared.cli.processes import System
from shared.cli.simulate import (
    PATTERNS,
    SimulationOptions,
    Summary,
    add_months,
    first_business_day,
    simulate,
)
from shared.events.base import SERVICES


@pytest.fixture(scope="module")
async def summary(system: System) -> Summary:
    options = SimulationOptions(
        base_url=f"http://127.0.0.1:{system.gateway_port}",
        reps=6,
        days=4,
        seed=11,
        kafka_bootstrap_servers=system.env["IRONARMY_KAFKA_BOOTSTRAP_SERVERS"],
        topic_prefix=system.env["IRONARMY_TOPIC_PREFIX"],
    )
    return await simulate(options)


def rep_of(summary: Summary, role: str) -> str:
    return next(rep for rep, r in summary.roles.items() if r == role)


async def test_every_planted_fabrication_is_flagged_and_no_honest_rep_is(summary: Summary) -> None:
    planted = {p.pattern: p for p in summary.planted}
    assert set(planted) == set(PATTERNS)
    not_flagged = [p.pattern for p in summary.planted if not p.flagged]
    assert not_flagged == [], f"planted but not flagged: {not_flagged}"
    assert len(planted["bulk_entry"].visit_ids) == 3  # typed in minutes apart in the evening
    assert all(summary.flags_by_rule.get(pattern, 0) >= 1 for pattern in PATTERNS)
    assert summary.honest_rep_flags == 0
    # qc confirmed them: each fabrication opened a red-line case, and hr confirmed every one.
    fabrications = sum(len(p.visit_ids) for p in summary.planted if p.decision == "fabrication")
    assert summary.red_line_cases == {"confirmed": fabrications}
    assert summary.flags_by_status.get("open", 0) == 0


async def test_the_lazy_reps_leads_are_reclaimed_and_dealt_to_colleagues(summary: Summary) -> None:
    lazy = summary.lazy
    assert lazy.rep_id == rep_of(summary, "lazy")
    assert lazy.first_day_leads >= 10
    # Not followed up within 48 hours: every first-day lead was taken back, and the next
    # morning's distribution gave each to a colleague, never back to the lazy rep.
    assert lazy.reclaimed >= lazy.first_day_leads
    assert lazy.first_day_reassigned == lazy.first_day_leads
    assert lazy.reassigned_to and lazy.rep_id not in lazy.reassigned_to
    assert summary.reclaims_by_reason.get("follow_up_overdue", 0) >= lazy.reclaimed
    assert summary.reassignments >= lazy.first_day_reassigned
    assert summary.leads_events["LeadReclaimed"] >= lazy.reclaimed


async def test_the_private_pool_swaps_at_its_cap(summary: Summary) -> None:
    pool = summary.private_pool
    assert len(pool.kept) == pool.cap + 1
    assert pool.returned_lead_id == pool.kept[0] and pool.swapped_for == pool.kept[-1]
    assert summary.leads_events["LeadKeptPrivate"] >= pool.cap + 1


async def test_the_reviews_come_out_as_planted(summary: Summary) -> None:
    outcomes = {r.role: r for r in summary.reviews}
    assert [r.rep_id for r in summary.reviews if r.category != r.planted_category] == []
    assert outcomes["star"].category == "star" and outcomes["star"].band == "A"
    assert outcomes["star"].promotable
    assert outcomes["wild_dog"].category == "wild_dog" and not outcomes["wild_dog"].promotable
    assert outcomes["white_rabbit"].category == "white_rabbit"
    assert outcomes["fabricator"].category == "red_line" and outcomes["fabricator"].band == "C"
    assert outcomes["lazy"].category == "dog"
    assert outcomes["keeper"].category == "bull"
    assert sum(summary.reviews_by_category.values()) == len(summary.roles)
    # Results were counted from the topics: the star's conversions and honest visits count.
    assert outcomes["star"].conversions == 10 and outcomes["star"].visits > 0


async def test_the_rotation_is_carried_out_and_the_leads_service_follows(summary: Summary) -> None:
    rotation = summary.rotation
    ours = set(summary.regions)
    moved = {m["manager_id"] for m in rotation.moves}
    assert set(summary.managers.values()) <= moved
    assert all(m["from_region"] != m["to_region"] for m in rotation.moves)
    assert rotation.carried_out and rotation.leads_learned
    assert {m["to_region"] for m in rotation.moves if m["manager_id"] in summary.managers.values()} == ours


async def test_the_summary_counts_what_this_run_put_on_every_topic(summary: Summary) -> None:
    assert all(count > 0 for count in summary.events_per_topic.values()), summary.events_per_topic
    assert sorted(t.rsplit(".", 1)[1] for t in summary.events_per_topic) == sorted(SERVICES)
    leads_topic = next(t for t in summary.events_per_topic if t.endswith(".leads"))
    assert summary.events_per_topic[leads_topic] >= sum(summary.leads_events.values())
    assert summary.distributions >= 4  # one daily run per simulated day
    assert summary.visits_logged > 0 and summary.follow_up_calls > 0 and summary.conversions >= 20
    assert '"honest_rep_flags": 0' in summary.as_json()


def test_the_simulated_days_never_straddle_a_quarter() -> None:
    # From the evening of 2026-03-29 (Shanghai), five days would end in April: start on 1 April.
    assert first_business_day(datetime(2026, 3, 29, 12, tzinfo=UTC), 5) == date(2026, 4, 1)
    assert first_business_day(datetime(2026, 3, 2, 8, tzinfo=UTC), 5) == date(2026, 3, 3)
    # Six months on from 31 August is the last day of February.
    assert add_months(datetime(2026, 8, 31, 12, tzinfo=UTC), 6) == datetime(2027, 2, 28, 12, tzinfo=UTC)


def test_the_command_refuses_too_small_an_organisation() -> None:
    result = CliRunner().invoke(app, ["simulate", "--reps", "3"])
    assert result.exit_code == 2
    assert "at least 6" in result.output

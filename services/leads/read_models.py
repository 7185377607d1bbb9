"""The leads service's in-memory read model: every aggregate as stored, indexed for queries and
for distribution (so a run reads the pool from memory, not 400,000 loads from the store)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from services.leads.domain.distribution_run import DistributionRun
from services.leads.domain.lead import Lead, Ownership
from services.leads.domain.region_management import RegionManagement
from services.leads.domain.rep import Rep
from services.leads.domain.values import LEAD_STATUSES, OWNED, POOL
from shared.application import ReadModel


class LeadsBook(ReadModel):
    """Replicas of every lead, rep, region and run, replayed from the store's events.

    The replicas are never changed by commands: a command that works from them takes a
    `clone()`, and optimistic concurrency on save refuses a clone that was stale.
    """

    def __init__(self) -> None:
        self.leads: dict[UUID, Lead] = {}
        self.reps: dict[str, Rep] = {}
        self.regions: dict[str, RegionManagement] = {}
        self.last_run: dict[str | None, DistributionRun] = {}
        self.pool: dict[str, set[UUID]] = defaultdict(set)  # region → leads in the pool
        self.owned: dict[str, set[UUID]] = defaultdict(set)  # rep → assigned and private leads
        self.assigned_on: Counter[tuple[str, date]] = Counter()  # (rep, day) → leads given
        self.status_counts: dict[str, Counter[str]] = defaultdict(Counter)  # region → status → n
        self.reps_by_region: dict[str, set[str]] = defaultdict(set)
        self._regions_by_id: dict[UUID, RegionManagement] = {}
        self._reps_by_id: dict[UUID, Rep] = {}

    def apply(self, domain_event: Any) -> None:
        if isinstance(domain_event, Lead.Event):
            self._apply_lead(domain_event)
        elif isinstance(domain_event, Rep.Event):
            self._apply_rep(domain_event)
        elif isinstance(domain_event, RegionManagement.Event):
            region_id = domain_event.originator_id
            current = self._regions_by_id.get(region_id)
            replica = domain_event.mutate(current)
            assert isinstance(replica, RegionManagement)
            self._regions_by_id[region_id] = replica
            self.regions[replica.region] = replica
        elif isinstance(domain_event, DistributionRun.Event):
            run = domain_event.mutate(None)
            assert isinstance(run, DistributionRun)
            self.last_run[run.region] = run

    def _apply_lead(self, domain_event: Lead.Event) -> None:
        before = self.leads.get(domain_event.originator_id)
        if before is not None:
            self._unindex(before)
        lead = domain_event.mutate(before)
        assert isinstance(lead, Lead)
        if lead is not before:  # a new lead; the others change in place
            self.leads[lead.id] = lead
        self._index(lead)
        if type(domain_event) is Lead.Assigned:
            self.assigned_on[(domain_event.rep_id, domain_event.day)] += 1

    def _unindex(self, lead: Lead) -> None:
        self.status_counts[lead.region][lead.status] -= 1
        if lead.status == POOL:
            self.pool[lead.region].discard(lead.id)
        elif lead.status in OWNED and lead.owner_id is not None:
            self.owned[lead.owner_id].discard(lead.id)

    def _index(self, lead: Lead) -> None:
        self.status_counts[lead.region][lead.status] += 1
        if lead.status == POOL:
            self.pool[lead.region].add(lead.id)
        elif lead.status in OWNED and lead.owner_id is not None:
            self.owned[lead.owner_id].add(lead.id)

    def _apply_rep(self, domain_event: Rep.Event) -> None:
        rep = domain_event.mutate(self._reps_by_id.get(domain_event.originator_id))
        assert isinstance(rep, Rep)
        self._reps_by_id[rep.id] = rep
        self.reps[rep.rep_id] = rep
        self.reps_by_region[rep.region].add(rep.rep_id)

    # --- reads -----------------------------------------------------------------------------

    def managed_regions(self, manager_id: str, at: datetime) -> frozenset[str]:
        return frozenset(
            region for region, management in self.regions.items() if management.manager_at(at) == manager_id
        )

    def owned_leads(self, rep_id: str) -> list[Lead]:
        return [self.leads[lead_id] for lead_id in self.owned.get(rep_id, ())]


# --- what queries return (plain values, never aggregates) ------------------------------------


@dataclass(frozen=True)
class LeadCard:
    lead_id: str
    company_name: str
    region: str
    score: float
    status: str
    owner_since: datetime | None
    deadline: datetime | None  # follow-up deadline (assigned) or no-progress deadline (private)
    warned: bool
    follow_ups: int


@dataclass(frozen=True)
class LeadDetail:
    lead_id: str
    company_name: str
    company_key: str
    region: str
    address_line: str
    city: str
    lat: float
    lon: float
    score: float
    source: str
    status: str
    owner_id: str | None
    deadline: datetime | None
    registered_at: datetime
    follow_ups: int
    last_follow_up_at: datetime | None
    outcome_reason: str | None
    owners: tuple[Ownership, ...]  # the full owner history, oldest first


@dataclass(frozen=True)
class RepView:
    rep_id: str
    name: str
    region: str
    role: str
    joined_on: date
    active: bool
    daily_quota: int
    private_pool_cap: int
    private_leads: int


@dataclass(frozen=True)
class Workbench:
    """What a rep sees in the morning."""

    rep_id: str
    region: str
    active: bool
    day: date
    daily_quota: int
    assigned_today: int
    quota_left_today: int
    assigned: tuple[LeadCard, ...]  # soonest deadline first
    private_pool: tuple[LeadCard, ...]
    private_pool_cap: int


@dataclass(frozen=True)
class RegionPool:
    region: str
    counts: dict[str, int]  # status → leads

    @property
    def in_pool(self) -> int:
        return self.counts.get(POOL, 0)


@dataclass(frozen=True)
class RepLoad:
    rep_id: str
    name: str
    active: bool
    daily_quota: int
    assigned_today: int
    assigned: int
    private: int
    private_pool_cap: int
    overdue: int


@dataclass(frozen=True)
class RunSummary:
    distribution_id: str
    day: date
    region: str | None
    reps: int
    leads_available: int
    assigned: int
    spread: dict[str, float]
    completed_at: datetime


@dataclass(frozen=True)
class RegionView:
    """A manager's view of their region."""

    region: str
    manager_id: str | None
    day: date
    counts: dict[str, int]
    reps: tuple[RepLoad, ...]
    top_pool_leads: tuple[LeadCard, ...]
    last_distribution: RunSummary | None


def lead_card(lead: Lead) -> LeadCard:
    return LeadCard(
        lead_id=str(lead.id),
        company_name=lead.company_name,
        region=lead.region,
        score=lead.score,
        status=lead.status,
        owner_since=lead.owner_since,
        deadline=lead.deadline,
        warned=lead.warned_for is not None and lead.warned_for == lead.deadline,
        follow_ups=lead.follow_ups,
    )


def rep_view(rep: Rep) -> RepView:
    return RepView(
        rep_id=rep.rep_id,
        name=rep.name,
        region=rep.region,
        role=rep.role,
        joined_on=rep.joined_on,
        active=rep.active,
        daily_quota=rep.daily_quota,
        private_pool_cap=rep.private_pool_cap,
        private_leads=len(rep.private_leads),
    )


def lead_detail(lead: Lead) -> LeadDetail:
    return LeadDetail(
        lead_id=str(lead.id),
        company_name=lead.company_name,
        company_key=lead.company_key,
        region=lead.region,
        address_line=lead.address.line,
        city=lead.address.city,
        lat=lead.address.lat,
        lon=lead.address.lon,
        score=lead.score,
        source=lead.source,
        status=lead.status,
        owner_id=lead.owner_id,
        deadline=lead.deadline,
        registered_at=lead.registered_at,
        follow_ups=lead.follow_ups,
        last_follow_up_at=lead.last_follow_up_at,
        outcome_reason=lead.outcome_reason,
        owners=lead.owners,
    )


def run_summary(run: DistributionRun) -> RunSummary:
    return RunSummary(
        distribution_id=str(run.id),
        day=run.day,
        region=run.region,
        reps=run.reps,
        leads_available=run.leads_available,
        assigned=run.assigned,
        spread=dict(run.spread),
        completed_at=run.completed_at,
    )


def region_counts(counter: Counter[str]) -> dict[str, int]:
    return {status: counter.get(status, 0) for status in LEAD_STATUSES}

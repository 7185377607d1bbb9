"""The leads service's application: reps, the pool, daily distribution, follow-up and reclaim,
the private pool, outcomes, and the queries the apps read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Transcoding

from services.leads.domain import access
from services.leads.domain.access import Target, may_act, require_may_act
from services.leads.domain.allocation import PoolLead, RepSlot, Spread, allocate, spread
from services.leads.domain.distribution_run import DistributionRun
from services.leads.domain.lead import Lead
from services.leads.domain.region_management import RegionManagement
from services.leads.domain.rep import Rep
from services.leads.domain.values import (
    ASSIGNED,
    FOLLOW_UP_OVERDUE,
    NO_PROGRESS,
    PRIVATE,
    REP_DEACTIVATED,
    SWAPPED,
    Address,
    NewLead,
    company_key,
    day_of,
    former_owner_locked,
    is_newcomer,
    require_aware,
)
from services.leads.policy import LeadsPolicy
from services.leads.read_models import (
    LeadCard,
    LeadDetail,
    LeadsBook,
    RegionPool,
    RegionView,
    RepLoad,
    RepView,
    Workbench,
    lead_card,
    lead_detail,
    region_counts,
    rep_view,
    run_summary,
)
from shared.application import (
    ConcurrentChange,
    DataclassAsDict,
    Delivery,
    ReadModel,
    ServiceApplication,
    in_store_order,
)
from shared.domain import Conflict, DomainError, Meta, NotFound, RuleViolated
from shared.events.base import Envelope

SCHEDULER_ID = "scheduler"  # the actor of what the clock does


# --- what this service reads of other services' events (fields used, not the whole model) ----


class VisitLoggedEvent(Protocol):
    @property
    def visit_id(self) -> str: ...
    @property
    def rep_id(self) -> str: ...
    @property
    def lead_id(self) -> str: ...
    @property
    def visited_at(self) -> datetime: ...


class ManagerAppointedEvent(Protocol):
    @property
    def manager_id(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def appointed_at(self) -> datetime: ...


class ManagerRotatedEvent(Protocol):
    @property
    def manager_id(self) -> str: ...
    @property
    def from_region(self) -> str | None: ...
    @property
    def to_region(self) -> str: ...
    @property
    def effective_at(self) -> datetime: ...


# --- what commands return -----------------------------------------------------------------


@dataclass(frozen=True)
class Duplicate:
    index: int
    company_name: str
    existing_lead_id: str


@dataclass(frozen=True)
class Refusal:
    index: int
    field: str | None
    message: str


@dataclass(frozen=True)
class BulkRegistration:
    registered: tuple[str, ...]
    duplicates: tuple[Duplicate, ...]
    refused: tuple[Refusal, ...]


@dataclass(frozen=True)
class DistributionReport:
    distribution_id: str
    day: date
    region: str | None
    reps: int
    leads_available: int
    quota_asked: int
    assigned: int
    per_rep: dict[str, int]
    spread: Spread


class LeadsApplication(ServiceApplication):
    extra_transcodings: ClassVar[Sequence[Transcoding]] = (DataclassAsDict(Address, "leads.address"),)

    book: LeadsBook

    def __init__(self, env: Any = None, policy: LeadsPolicy | None = None) -> None:
        self.policy = policy or LeadsPolicy()
        super().__init__(env)

    def construct_read_models(self) -> Sequence[ReadModel]:
        self.book = LeadsBook()
        return (self.book,)

    # --- helpers ------------------------------------------------------------------------------

    def _load(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _lead(self, lead_id: str, field: str = "lead_id") -> Lead:
        try:
            uuid = UUID(str(lead_id))
        except ValueError:
            raise NotFound(f"lead {lead_id} not found", field=field) from None
        lead = self._load(uuid)
        if not isinstance(lead, Lead):
            raise NotFound(f"lead {lead_id} not found", field=field)
        return lead

    def _rep(self, rep_id: str) -> Rep:
        rep = self._load(Rep.create_id(rep_id))
        if not isinstance(rep, Rep):
            raise NotFound(f"rep {rep_id} not found", field="rep_id")
        return rep

    def _authorise(self, meta: Meta, action: str, target: Target) -> None:
        managed: frozenset[str] = frozenset()
        if meta.actor_role == "manager":
            managed = self.managed_regions(meta.actor_id, meta.at)
        require_may_act(meta, action, target, managed)

    def _save(self, *aggregates: Aggregate | None) -> None:
        try:
            self.save(*aggregates)
        except ConcurrentChange:
            raise  # already says which aggregate and its current version
        except IntegrityError:
            raise Conflict("someone else changed this meanwhile: read it again and retry") from None

    def _meta_for_clock(self, now: datetime, meta: Meta | None) -> Meta:
        require_aware(now, "now")
        return meta or Meta(actor_id=SCHEDULER_ID, actor_role="system", at=now)

    def may(self, meta: Meta, action: str, region: str | None, owner_id: str | None = None) -> bool:
        """The API's check: may this actor do this action in this region (on this rep's lead)?"""
        managed: frozenset[str] = frozenset()
        if meta.actor_role == "manager":
            managed = self.managed_regions(meta.actor_id, meta.at)
        return may_act(meta.actor_id, meta.actor_role, action, Target(region, owner_id), managed)

    # --- reps ---------------------------------------------------------------------------------

    def register_rep(
        self,
        rep_id: str,
        name: str,
        region: str,
        joined_on: date,
        meta: Meta,
        role: str = "rep",
        daily_quota: int | None = None,
        private_pool_cap: int | None = None,
    ) -> UUID:
        self._authorise(meta, access.REGISTER_REP, Target(region))
        if self._load(Rep.create_id(rep_id)) is not None:
            raise Conflict(f"rep {rep_id} is already registered", field="rep_id")
        p = self.policy
        rep = Rep(
            rep_id=rep_id,
            name=name,
            region=region,
            role=role,
            joined_on=joined_on,
            daily_quota=p.default_daily_quota if daily_quota is None else daily_quota,
            private_pool_cap=p.default_private_pool_cap if private_pool_cap is None else private_pool_cap,
            quota_min=p.quota_min,
            quota_max=p.quota_max,
            max_private_pool_cap=p.max_private_pool_cap,
            meta=meta,
        )
        self._save(rep)
        return rep.id

    def set_daily_quota(self, rep_id: str, daily_quota: int, meta: Meta) -> None:
        rep = self._rep(rep_id)
        self._authorise(meta, access.MANAGE_REP, Target(rep.region, rep_id))
        rep.set_daily_quota(daily_quota, self.policy.quota_min, self.policy.quota_max, meta)
        self._save(rep)

    def set_private_pool_cap(self, rep_id: str, private_pool_cap: int, meta: Meta) -> None:
        rep = self._rep(rep_id)
        self._authorise(meta, access.MANAGE_REP, Target(rep.region, rep_id))
        rep.set_private_pool_cap(private_pool_cap, self.policy.max_private_pool_cap, meta)
        self._save(rep)

    def deactivate_rep(self, rep_id: str, reason: str, meta: Meta) -> list[str]:
        """The rep gets nothing more, and every lead they hold goes back to the pool, at once.

        Returns the ids of the leads given back.
        """
        rep = self._rep(rep_id)
        self._authorise(meta, access.MANAGE_REP, Target(rep.region, rep_id))
        rep.deactivate(reason, meta)
        with self.reading():
            held = sorted(self.book.owned.get(rep_id, ()), key=str)
        leads = [self._lead(str(lead_id)) for lead_id in held]
        for lead in leads:
            lead.reclaim(REP_DEACTIVATED, meta)
        self._save(rep, *leads)
        return [str(lead.id) for lead in leads]

    def reactivate_rep(self, rep_id: str, meta: Meta) -> None:
        rep = self._rep(rep_id)
        self._authorise(meta, access.MANAGE_REP, Target(rep.region, rep_id))
        rep.reactivate(meta)
        self._save(rep)

    # --- the lead pool ------------------------------------------------------------------------

    def _new_lead(self, new: NewLead, meta: Meta) -> Lead:
        key = company_key(new.company_name, new.company_code)
        return Lead(
            company_key=key,
            company_name=new.company_name,
            region=new.region,
            address=new.address,
            score=new.score,
            source=new.source,
            meta=meta,
        )

    def _existing(self, lead_id: UUID) -> bool:
        with self.reading():
            if lead_id in self.book.leads:
                return True
        return self._load(lead_id) is not None

    def register_lead(self, new: NewLead, meta: Meta) -> UUID:
        """A lead joins the pool. The same company twice is refused, naming the lead it already is."""
        self._authorise(meta, access.REGISTER_LEAD, Target(new.region))
        lead_id = Lead.create_id(company_key(new.company_name, new.company_code))
        duplicate = Conflict(
            f"{new.company_name} is already a lead ({lead_id})",
            field="company_name",
            existing_lead_id=str(lead_id),
        )
        if self._existing(lead_id):
            raise duplicate
        lead = self._new_lead(new, meta)
        try:
            self.save(lead)
        except IntegrityError:
            raise duplicate from None  # registered by someone else a moment ago
        return lead.id

    def register_leads(self, leads: Sequence[NewLead], meta: Meta) -> BulkRegistration:
        """A bulk import: valid new leads are saved in batches; duplicates and refusals are reported
        by their position in the import, and do not stop the rest."""
        for region in sorted({new.region for new in leads}):
            self._authorise(meta, access.REGISTER_LEAD, Target(region))
        created: list[Lead] = []
        duplicates: list[Duplicate] = []
        refused: list[Refusal] = []
        seen: dict[UUID, int] = {}
        with self.reading():
            known = self.book.leads
            for index, new in enumerate(leads):
                try:
                    lead_id = Lead.create_id(company_key(new.company_name, new.company_code))
                    if lead_id in known or lead_id in seen:
                        duplicates.append(Duplicate(index, new.company_name, str(lead_id)))
                        continue
                    lead = self._new_lead(new, meta)
                except DomainError as error:
                    refused.append(Refusal(index, error.field, error.message))
                    continue
                seen[lead_id] = index
                created.append(lead)
        saved: list[str] = []
        size = self.policy.save_batch_size
        for start in range(0, len(created), size):
            chunk = created[start : start + size]
            try:
                self.save(*chunk)
                saved.extend(str(lead.id) for lead in chunk)
            except IntegrityError:
                # Someone registered one of these meanwhile: save this chunk one by one.
                for lead in chunk:
                    try:
                        self.save(lead)
                        saved.append(str(lead.id))
                    except IntegrityError:
                        index = seen[lead.id]
                        duplicates.append(Duplicate(index, lead.company_name, str(lead.id)))
        return BulkRegistration(tuple(saved), tuple(duplicates), tuple(refused))

    # --- assignment and daily distribution ------------------------------------------------------

    def _quota_left(self, rep: Rep, day: date) -> int:
        return max(0, rep.daily_quota - self.book.assigned_on[(rep.rep_id, day)])

    def assign_lead(self, lead_id: str, rep_id: str, meta: Meta) -> None:
        """A manager hands one pool lead to one rep of its region; it counts against today's quota."""
        lead = self._lead(lead_id)
        self._authorise(meta, access.ASSIGN, Target(lead.region))
        rep = self._rep(rep_id)
        day = day_of(meta.at, self.policy.zone)
        if not rep.active:
            raise RuleViolated(f"{rep_id} is inactive and gets no leads", field="rep_id")
        if rep.joined_on > day:
            raise RuleViolated(f"{rep_id} joins on {rep.joined_on} and gets no leads before", field="rep_id")
        if rep.region != lead.region:
            raise RuleViolated(
                f"{rep_id} works in {rep.region}; the lead is in {lead.region}", field="rep_id"
            )
        with self.reading():
            left = self._quota_left(rep, day)
        if left <= 0:
            raise RuleViolated(f"{rep_id} has had today's quota of {rep.daily_quota} leads", field="rep_id")
        lead.assign(
            rep_id,
            day=day,
            follow_up_window=self.policy.follow_up_window,
            former_owner_lock=self.policy.former_owner_lock,
            distribution_id=None,
            meta=meta,
        )
        self._save(lead)

    def distribute(self, day: date, meta: Meta, region: str | None = None) -> DistributionReport:
        """Give every active rep (of a region, or all) leads from the pool up to today's quota left:
        best first, region-matched, fairly, never back to a rep who lost the lead recently.

        Reads the pool from the read model, allocates over plain data, then saves the assignments
        in a few large transactions. A run stopped half-way is simply run again: quotas count what
        was already given that day, so it continues where it stopped.
        """
        self._authorise(meta, access.DISTRIBUTE, Target(region))
        p = self.policy
        run_key = meta.correlation_id or meta.at.isoformat()
        distribution_id = DistributionRun.create_id(day, region, run_key)
        if self._load(distribution_id) is not None:
            raise Conflict("this distribution run has already been made", field="correlation_id")
        with self.reading():
            book = self.book
            regions = [region] if region is not None else sorted(book.reps_by_region)
            slots = [
                RepSlot(
                    rep_id=rep.rep_id,
                    region=rep.region,
                    quota_left=self._quota_left(rep, day),
                    newcomer=is_newcomer(rep.joined_on, day, p.newcomer_days),
                )
                for r in regions
                for rep in (book.reps[rep_id] for rep_id in sorted(book.reps_by_region.get(r, ())))
                if rep.active and rep.region == r and rep.joined_on <= day and self._quota_left(rep, day) > 0
            ]
            pool = [
                PoolLead(
                    lead_id=lead.id,
                    region=lead.region,
                    score=lead.score,
                    registered_at=lead.registered_at,
                    locked_for=self._locked_for(lead, meta.at) if lead.lost_by else frozenset(),
                )
                for r in regions
                for lead in (book.leads[lead_id] for lead_id in book.pool.get(r, ()))
            ]
            allocation = allocate(slots, pool)

        fairness = spread(slots, allocation.per_rep)
        run = DistributionRun(
            day=day,
            region=region,
            run_key=run_key,
            reps=len(slots),
            leads_available=allocation.leads_available,
            quota_asked=allocation.quota_asked,
            assigned=len(allocation.assignments),
            spread={
                "min": fairness.min,
                "max": fairness.max,
                "mean": fairness.mean,
                "newcomer_mean": fairness.newcomer_mean,
                "veteran_mean": fairness.veteran_mean,
            },
            meta=meta,
        )
        try:
            self._save_assignments(allocation.assignments, run, day, str(distribution_id), meta)
        except Conflict:
            raise Conflict(
                "the pool changed while distributing; run the distribution again to continue",
                field="day",
            ) from None
        return DistributionReport(
            distribution_id=str(distribution_id),
            day=day,
            region=region,
            reps=len(slots),
            leads_available=allocation.leads_available,
            quota_asked=allocation.quota_asked,
            assigned=len(allocation.assignments),
            per_rep=allocation.per_rep,
            spread=fairness,
        )

    def _locked_for(self, lead: Lead, at: datetime) -> frozenset[str]:
        """The reps who lost this lead too recently to be given it again at `at`."""
        lock = self.policy.former_owner_lock
        return frozenset(
            rep_id for rep_id, lost_at in lead.lost_by.items() if former_owner_locked(lost_at, at, lock)
        )

    def _save_assignments(
        self,
        pairs: Sequence[tuple[UUID, str]],
        run: DistributionRun,
        day: date,
        distribution_id: str,
        meta: Meta,
    ) -> None:
        """Assign the allocated leads and save them a batch (`save_batch_size`) per transaction,
        the run's record with the last batch. Each batch is cloned from the replicas, assigned,
        saved and let go: a run of 400,000 assignments never holds more than one batch. The leads
        are saved in the store's order (`in_store_order`): which lead goes to whom is decided,
        and a run stopped half-way is run again all the same."""
        pairs = in_store_order(pairs, lambda pair: pair[0])
        size = self.policy.save_batch_size
        window, lock = self.policy.follow_up_window, self.policy.former_owner_lock
        for start in range(0, len(pairs), size):
            with self._read_lock:
                replicas = self.book.leads
                batch = [
                    (replicas[lead_id].clone(), rep_id) for lead_id, rep_id in pairs[start : start + size]
                ]
            for lead, rep_id in batch:
                lead.assign(
                    rep_id,
                    day=day,
                    follow_up_window=window,
                    former_owner_lock=lock,
                    distribution_id=distribution_id,
                    meta=meta,
                )
            last = start + size >= len(pairs)
            self._save(*(lead for lead, _ in batch), *((run,) if last else ()))
        if not pairs:
            self._save(run)

    def distribute_daily(self, now: datetime) -> DistributionReport | None:
        """The scheduled run: once per business day (the policy's timezone), for every region, from
        the policy's hour on. None when it is too early or today's run has been made already."""
        local = require_aware(now, "now").astimezone(self.policy.zone)
        if local.hour < self.policy.daily_distribution_hour:
            return None
        day = local.date()
        run_key = f"daily:{day.isoformat()}"
        if self._load(DistributionRun.create_id(day, None, run_key)) is not None:
            return None
        return self.distribute(day, Meta(SCHEDULER_ID, "system", now, correlation_id=run_key))

    # --- follow-up and the clock ------------------------------------------------------------------

    def record_follow_up(
        self,
        lead_id: str,
        rep_id: str,
        meta: Meta,
        channel: str = "call",
        note: str = "",
        followed_up_at: datetime | None = None,
    ) -> None:
        """The rep worked the lead (a call, a meeting, …): its deadline starts again from then."""
        lead = self._lead(lead_id)
        self._authorise(meta, access.FOLLOW_UP, Target(lead.region, rep_id))
        lead.record_follow_up(
            rep_id,
            channel=channel,
            followed_up_at=require_aware(followed_up_at or meta.at, "followed_up_at"),
            follow_up_window=self.policy.follow_up_window,
            no_progress_window=self.policy.no_progress_window,
            note=note,
            meta=meta,
        )
        self._save(lead)

    def _warn_before(self, lead: Lead) -> timedelta:
        return self.policy.private_warn_before if lead.status == PRIVATE else self.policy.warn_before

    def warn_follow_ups_due(self, now: datetime, meta: Meta | None = None) -> list[str]:
        """FollowUpDue for every owned lead whose deadline is near; once per deadline."""
        meta = self._meta_for_clock(now, meta)
        self._authorise(meta, access.RECLAIM, Target(None))
        with self.reading():
            due = [
                self.book.leads[lead_id].clone()
                for held in self.book.owned.values()
                for lead_id in held
                if self.book.leads[lead_id].warning_due(now, self._warn_before(self.book.leads[lead_id]))
            ]
        for lead in due:
            lead.warn_due(warn_before=self._warn_before(lead), meta=meta)

        def again(stale: Sequence[Aggregate]) -> list[Aggregate]:
            lead = self._lead(str(stale[0].id))
            if not lead.warning_due(now, self._warn_before(lead)):
                return []
            lead.warn_due(warn_before=self._warn_before(lead), meta=meta)
            return [lead]

        return self._sweep([[lead] for lead in in_store_order(due, lambda lead: lead.id)], again)

    def reclaim_overdue(self, now: datetime, meta: Meta | None = None) -> list[str]:
        """Take back every lead past its deadline: assigned ones not followed up in time
        (`follow_up_overdue`), private ones with no progress for too long (`private_no_progress`).

        The scheduler calls it; it can be run by hand too. Returns the ids of the leads reclaimed.
        """
        meta = self._meta_for_clock(now, meta)
        self._authorise(meta, access.RECLAIM, Target(None))
        groups: list[list[Aggregate]] = []
        with self.reading():
            overdue_by_rep: dict[str, list[Lead]] = {}
            for rep_id, held in self.book.owned.items():
                for lead_id in held:
                    if self.book.leads[lead_id].is_overdue(now):
                        overdue_by_rep.setdefault(rep_id, []).append(self.book.leads[lead_id].clone())
            alone: list[Lead] = []
            for rep_id, leads in sorted(overdue_by_rep.items()):
                rep = self.book.reps[rep_id].clone() if rep_id in self.book.reps else None
                private = [lead for lead in leads if lead.status == PRIVATE]
                alone.extend(lead for lead in leads if lead.status != PRIVATE)
                for lead in leads:
                    self._reclaim(lead, rep, meta)
                if private:
                    # The rep's private pool and its leads change together, in one transaction.
                    groups.append([*private, *([rep] if rep is not None and rep.pending_events else [])])
            # Leads that only go back to the pool (most, after a full day's run): in the store's
            # order, as the distribution saves them.
            groups.extend([lead] for lead in in_store_order(alone, lambda lead: lead.id))

        def again(stale: Sequence[Aggregate]) -> list[Aggregate]:
            leads = [self._lead(str(a.id)) for a in stale if isinstance(a, Lead)]
            leads = [lead for lead in leads if lead.is_overdue(now)]
            if not leads:
                return []
            rep = self._load(Rep.create_id(str(leads[0].owner_id)))
            for lead in leads:
                self._reclaim(lead, rep, meta)
            return [*leads, *([rep] if rep is not None and rep.pending_events else [])]

        return self._sweep(groups, again)

    @staticmethod
    def _reclaim(lead: Lead, rep: Rep | None, meta: Meta) -> None:
        was_private = lead.status == PRIVATE
        lead.reclaim(NO_PROGRESS if was_private else FOLLOW_UP_OVERDUE, meta)
        if was_private and rep is not None:
            rep.lead_left(str(lead.id), "reclaimed", meta)

    def _sweep(
        self,
        groups: Sequence[Sequence[Aggregate]],
        again: Callable[[Sequence[Aggregate]], list[Aggregate]],
    ) -> list[str]:
        """Save a clock run in batches; a batch that lost a race is redone group by group from
        fresh state (a follow-up recorded a moment ago must win over the reclaim)."""
        done: list[str] = []
        size = self.policy.save_batch_size
        for start in range(0, len(groups), size):
            chunk = groups[start : start + size]
            try:
                self.save(*(a for group in chunk for a in group))
                done.extend(str(a.id) for group in chunk for a in group if isinstance(a, Lead))
            except IntegrityError:
                for group in chunk:
                    for attempt in range(self.conflict_retries + 1):
                        fresh = again(group)
                        try:
                            self.save(*fresh)
                        except IntegrityError:
                            if attempt == self.conflict_retries:
                                raise
                            continue
                        done.extend(str(a.id) for a in fresh if isinstance(a, Lead))
                        break
        return done

    # --- the private pool -------------------------------------------------------------------------

    def keep_private(self, lead_id: str, rep_id: str, meta: Meta, return_lead_id: str | None = None) -> None:
        """Move an assigned lead into the rep's private pool. At the cap, `return_lead_id` names the
        private lead given back to the pool in exchange: both happen in one transaction, or neither."""
        lead = self._lead(lead_id)
        self._authorise(meta, access.KEEP_PRIVATE, Target(lead.region, rep_id))
        rep = self._rep(rep_id)
        returning = self._lead(return_lead_id, field="return_lead_id") if return_lead_id else None
        rep.keep_private(str(lead.id), str(returning.id) if returning else None, meta)
        lead.keep_private(
            rep_id,
            no_progress_window=self.policy.no_progress_window,
            meta=meta,
            returning_lead_id=str(returning.id) if returning else None,
        )
        if returning is not None:
            returning.release(rep_id, SWAPPED, meta, swapped_for_lead_id=str(lead.id))
        self._save(rep, lead, returning)

    def release_lead(self, lead_id: str, rep_id: str, reason: str, meta: Meta) -> None:
        """The rep gives a lead (assigned or private) back to the pool, saying why."""
        lead = self._lead(lead_id)
        self._authorise(meta, access.RELEASE, Target(lead.region, rep_id))
        was_private = lead.status == PRIVATE
        lead.release(rep_id, reason, meta)
        rep = self._rep(rep_id) if was_private else None
        if rep is not None:
            rep.lead_left(str(lead.id), "released", meta)
        self._save(lead, rep)

    # --- outcomes ------------------------------------------------------------------------------------

    def _end(self, lead: Lead, why: str, meta: Meta, change: Callable[[], None]) -> None:
        owner, was_private = lead.owner_id, lead.status == PRIVATE
        change()
        rep = self._rep(owner) if was_private and owner is not None else None
        if rep is not None:
            rep.lead_left(str(lead.id), why, meta)
        self._save(lead, rep)

    def convert_lead(self, lead_id: str, meta: Meta, note: str = "") -> None:
        """A won customer, for the rep who owns the lead."""
        lead = self._lead(lead_id)
        self._authorise(meta, access.CONVERT, Target(lead.region, lead.owner_id))
        self._end(lead, "converted", meta, lambda: lead.convert(meta, note))

    def close_lead(self, lead_id: str, reason: str, meta: Meta) -> None:
        """Give the lead up for good (wrong number, company closed, …), with the reason."""
        lead = self._lead(lead_id)
        self._authorise(meta, access.CLOSE, Target(lead.region, lead.owner_id))
        self._end(lead, "closed", meta, lambda: lead.close(reason, meta))

    # --- consumed from other services (exactly once, through process_delivery) --------------------

    def on_visit_logged(self, delivery: Delivery, event: VisitLoggedEvent, envelope: Envelope) -> bool:
        """A logged visit by the lead's owner, while they owned it and in time, is a follow-up.

        Anything else (another rep's visit, a lead not ours, a visit after the deadline) changes
        nothing here: the visits service judges those.
        """
        meta = envelope.caused_meta()
        visited_at = event.visited_at

        def handle() -> list[Aggregate]:
            try:
                lead = self._load(UUID(str(event.lead_id)))
            except ValueError:
                return []
            if not isinstance(lead, Lead) or visited_at > meta.at:
                return []
            if not lead.counts_as_follow_up(event.rep_id, visited_at):
                return []
            lead.record_follow_up(
                event.rep_id,
                channel="visit",
                followed_up_at=visited_at,
                follow_up_window=self.policy.follow_up_window,
                no_progress_window=self.policy.no_progress_window,
                visit_id=event.visit_id,
                meta=meta,
            )
            return [lead]

        return self.process_delivery(delivery, handle)

    def _region_management(self, region: str, meta: Meta) -> RegionManagement:
        management = self._load(RegionManagement.create_id(region))
        if isinstance(management, RegionManagement):
            return management
        return RegionManagement(region=region, meta=meta)

    def on_manager_appointed(
        self, delivery: Delivery, event: ManagerAppointedEvent, envelope: Envelope
    ) -> bool:
        meta = envelope.caused_meta()

        def handle() -> list[Aggregate]:
            management = self._region_management(event.region, meta)
            management.arrive(event.manager_id, event.appointed_at, meta)
            return [management]

        return self.process_delivery(delivery, handle)

    def on_manager_rotated(self, delivery: Delivery, event: ManagerRotatedEvent, envelope: Envelope) -> bool:
        """The manager leaves `from_region` and manages `to_region` from `effective_at`."""
        meta = envelope.caused_meta()

        def handle() -> list[Aggregate]:
            changed: list[Aggregate] = []
            if event.from_region is not None:
                leaving = self._load(RegionManagement.create_id(event.from_region))
                if isinstance(leaving, RegionManagement) and leaving.depart(
                    event.manager_id, event.effective_at, meta
                ):
                    changed.append(leaving)
            arriving = self._region_management(event.to_region, meta)
            arriving.arrive(event.manager_id, event.effective_at, meta)
            changed.append(arriving)
            return changed

        return self.process_delivery(delivery, handle)

    def aggregates_touched(self, envelope: Envelope, event: Any) -> Iterable[UUID]:
        """A logged visit is read against its lead (more leads than the cache keeps)."""
        if envelope.event_type != "VisitLogged":
            return ()
        try:
            return (UUID(str(event.lead_id)),)
        except ValueError:
            return ()  # not a lead of ours: the handler reads nothing either

    def handlers(self) -> dict[str, Callable[[Delivery, Any, Envelope], bool]]:
        """Consumed event type → handler, for the platform's consumer."""
        return {
            "VisitLogged": self.on_visit_logged,
            "ManagerAppointed": self.on_manager_appointed,
            "ManagerRotated": self.on_manager_rotated,
        }

    # --- queries ------------------------------------------------------------------------------------

    def managed_regions(self, manager_id: str, at: datetime) -> frozenset[str]:
        with self.reading():
            return self.book.managed_regions(manager_id, at)

    def manager_of(self, region: str, at: datetime) -> str | None:
        with self.reading():
            management = self.book.regions.get(region)
            return management.manager_at(at) if management else None

    def workbench(self, rep_id: str, at: datetime) -> Workbench:
        """A rep's day: assigned leads with deadlines (soonest first), the private pool, quota left."""
        day = day_of(require_aware(at, "at"), self.policy.zone)
        with self.reading():
            rep = self.book.reps.get(rep_id)
            if rep is None:
                raise NotFound(f"rep {rep_id} not found", field="rep_id")
            held = self.book.owned_leads(rep_id)
            assigned = sorted(
                (lead_card(lead) for lead in held if lead.status == ASSIGNED),
                key=lambda card: (card.deadline or at, card.lead_id),
            )
            private = sorted(
                (lead_card(lead) for lead in held if lead.status == PRIVATE),
                key=lambda card: (card.deadline or at, card.lead_id),
            )
            given = self.book.assigned_on[(rep_id, day)]
            return Workbench(
                rep_id=rep_id,
                region=rep.region,
                active=rep.active,
                day=day,
                daily_quota=rep.daily_quota,
                assigned_today=given,
                quota_left_today=max(0, rep.daily_quota - given) if rep.active else 0,
                assigned=tuple(assigned),
                private_pool=tuple(private),
                private_pool_cap=rep.private_pool_cap,
            )

    def rep(self, rep_id: str) -> RepView:
        """A rep's record: region, role, status, quota and private-pool cap."""
        with self.reading():
            rep = self.book.reps.get(rep_id)
            if rep is None:
                raise NotFound(f"rep {rep_id} not found", field="rep_id")
            return rep_view(rep)

    def lead(self, lead_id: str) -> LeadDetail:
        """A lead with its full owner history."""
        try:
            uuid = UUID(str(lead_id))
        except ValueError:
            raise NotFound(f"lead {lead_id} not found", field="lead_id") from None
        with self.reading():
            lead = self.book.leads.get(uuid)
            if lead is None:
                raise NotFound(f"lead {lead_id} not found", field="lead_id")
            return lead_detail(lead)

    def pool_by_region(self, region: str | None = None) -> list[RegionPool]:
        """Leads per region and status (pool, assigned, private, converted, closed)."""
        with self.reading():
            regions = [region] if region is not None else sorted(self.book.status_counts)
            return [RegionPool(r, region_counts(self.book.status_counts.get(r, Counter()))) for r in regions]

    def pool_leads(self, region: str, limit: int = 50) -> list[LeadCard]:
        """The best leads waiting in a region's pool, highest score first."""
        with self.reading():
            leads = (self.book.leads[lead_id] for lead_id in self.book.pool.get(region, ()))
            best = sorted(leads, key=lambda lead: (-lead.score, lead.registered_at, str(lead.id)))[:limit]
            return [lead_card(lead) for lead in best]

    def region_view(self, region: str, at: datetime, top: int = 20) -> RegionView:
        """A manager's view of a region: counts, each rep's load today, the best pool leads."""
        day = day_of(require_aware(at, "at"), self.policy.zone)
        top_leads = self.pool_leads(region, top)
        with self.reading():
            book = self.book
            loads = []
            for rep_id in sorted(book.reps_by_region.get(region, ())):
                rep = book.reps[rep_id]
                if rep.region != region:
                    continue
                held = book.owned_leads(rep_id)
                loads.append(
                    RepLoad(
                        rep_id=rep_id,
                        name=rep.name,
                        active=rep.active,
                        daily_quota=rep.daily_quota,
                        assigned_today=book.assigned_on[(rep_id, day)],
                        assigned=sum(1 for lead in held if lead.status == ASSIGNED),
                        private=sum(1 for lead in held if lead.status == PRIVATE),
                        private_pool_cap=rep.private_pool_cap,
                        overdue=sum(1 for lead in held if lead.is_overdue(at)),
                    )
                )
            management = book.regions.get(region)
            # The latest run that covered the region: its own, or one for every region.
            runs = [r for r in (book.last_run.get(region), book.last_run.get(None)) if r is not None]
            run = max(runs, key=lambda r: r.completed_at, default=None)
            return RegionView(
                region=region,
                manager_id=management.manager_at(at) if management else None,
                day=day,
                counts=region_counts(book.status_counts.get(region, Counter())),
                reps=tuple(loads),
                top_pool_leads=tuple(top_leads),
                last_distribution=run_summary(run) if run else None,
            )

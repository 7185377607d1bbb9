"""Daily distribution as a pure function over plain data: who gets which pool lead, and the spread.

Fair by construction: reps take turns, one lead per turn, newcomers first in every round, each
taking the best lead left in their region that they did not lose recently. So while leads last,
every rep under quota gets one more each round, and a newcomer is never behind a veteran.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class RepSlot:
    rep_id: str
    region: str
    quota_left: int
    newcomer: bool


@dataclass(frozen=True, slots=True)
class PoolLead:
    lead_id: UUID
    region: str
    score: float
    registered_at: datetime
    locked_for: frozenset[str] = frozenset()  # reps who lost it within the former-owner lock


@dataclass(frozen=True)
class Spread:
    """How evenly a run shared the leads (counts per rep who took part)."""

    reps: int
    min: int
    max: int
    mean: float
    newcomers: int
    newcomer_min: int
    newcomer_mean: float
    veterans: int
    veteran_max: int
    veteran_mean: float

    @property
    def range(self) -> int:
        return self.max - self.min

    @property
    def fair(self) -> bool:
        """Newcomers got, on average, no fewer leads than veterans."""
        return self.newcomers == 0 or self.veterans == 0 or self.newcomer_mean >= self.veteran_mean


@dataclass
class Allocation:
    assignments: list[tuple[UUID, str]] = field(default_factory=list)  # (lead, rep), in order given
    per_rep: dict[str, int] = field(default_factory=dict)
    leads_available: int = 0
    quota_asked: int = 0


def _order(lead: PoolLead) -> tuple[float, datetime, int]:
    # Highest score first; among equals the longest waiting, then a stable tie-break (the id's
    # number: the same order as its text, without formatting 400,000 of them).
    return (-lead.score, lead.registered_at, lead.lead_id.int)


def allocate(reps: Iterable[RepSlot], leads: Iterable[PoolLead]) -> Allocation:
    result = Allocation()
    reps_by_region: dict[str, list[RepSlot]] = defaultdict(list)
    for rep in reps:
        result.per_rep[rep.rep_id] = 0
        if rep.quota_left > 0:
            reps_by_region[rep.region].append(rep)
            result.quota_asked += rep.quota_left
    leads_by_region: dict[str, list[PoolLead]] = defaultdict(list)
    for lead in leads:
        leads_by_region[lead.region].append(lead)
        result.leads_available += 1
    for region in sorted(reps_by_region):
        pool = sorted(leads_by_region.get(region, ()), key=_order)
        _allocate_region(reps_by_region[region], pool, result)
    return result


def _allocate_region(reps: list[RepSlot], pool: Sequence[PoolLead], result: Allocation) -> None:
    taken = bytearray(len(pool))
    head = 0  # every lead before head is taken
    counts = result.per_rep
    turn = sorted(reps, key=lambda rep: (not rep.newcomer, rep.rep_id))
    while turn and head < len(pool):
        still_wanting: list[RepSlot] = []
        for rep in turn:
            while head < len(pool) and taken[head]:
                head += 1
            index = head
            while index < len(pool) and (taken[index] or rep.rep_id in pool[index].locked_for):
                index += 1
            if index == len(pool):
                continue  # nothing left this rep may have
            taken[index] = 1
            result.assignments.append((pool[index].lead_id, rep.rep_id))
            counts[rep.rep_id] += 1
            if counts[rep.rep_id] < rep.quota_left:
                still_wanting.append(rep)
        turn = still_wanting


def spread(reps: Sequence[RepSlot], per_rep: dict[str, int]) -> Spread:
    counts = [per_rep.get(rep.rep_id, 0) for rep in reps]
    newcomer = [per_rep.get(rep.rep_id, 0) for rep in reps if rep.newcomer]
    veteran = [per_rep.get(rep.rep_id, 0) for rep in reps if not rep.newcomer]

    def mean(values: list[int]) -> float:
        return round(sum(values) / len(values), 3) if values else 0.0

    return Spread(
        reps=len(counts),
        min=min(counts, default=0),
        max=max(counts, default=0),
        mean=mean(counts),
        newcomers=len(newcomer),
        newcomer_min=min(newcomer, default=0),
        newcomer_mean=mean(newcomer),
        veterans=len(veteran),
        veteran_max=max(veteran, default=0),
        veteran_mean=mean(veteran),
    )

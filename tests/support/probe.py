"""A tiny service used to test the platform alone: its events go out as real LeadAssigned
contracts, and a second application tallies them exactly once."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from fastapi import APIRouter
from pydantic import BaseModel

from shared.application import Delivery, ServiceApplication, inbox_name
from shared.consumer import ExactlyOnceConsumer, Handler
from shared.domain import Meta, RuleViolated, direct_events, stable_id
from shared.events.base import Envelope
from shared.events.catalog import Published
from shared.events.leads import LeadAssigned
from shared.metrics import Metrics
from shared.service import ServiceSpec
from shared.settings import ServiceSettings
from shared.web import CommandMeta, Context, CurrentPrincipal


@direct_events
class Probe(Aggregate):
    def __init__(self, name: str, meta: Meta) -> None:
        self.name = name
        self.assignments = 0

    @event("Assigned")
    def assign(self, rep_id: str, meta: Meta) -> None:
        self.assignments += 1


class ProbeApplication(ServiceApplication):
    # Set by a test to make concurrent commands read the same version before either saves.
    race: threading.Barrier | None = None

    def create(self, name: str, meta: Meta) -> UUID:
        probe = Probe(name, meta)
        self.save(probe)
        return probe.id

    def assign_many(self, probe_id: UUID, rep_ids: list[str], meta: Meta) -> int:
        probe = self.repository.get(probe_id)
        if self.race is not None:
            self.race.wait(timeout=10)
        for rep_id in rep_ids:
            probe.assign(rep_id, meta)
        self.save(probe)
        return int(probe.version)


def translate(domain_event: Any) -> Published | None:
    if isinstance(domain_event, Probe.Assigned):
        at = domain_event.meta.at
        return Published(
            LeadAssigned(
                lead_id=str(domain_event.originator_id),
                rep_id=domain_event.rep_id,
                region="probe",
                assigned_at=at,
                follow_up_deadline=at + timedelta(hours=48),
            ),
            aggregate_type="Probe",
        )
    return None


REFUSED_REP = "rep-refused"  # the tally's domain refuses this one: a message to park


@direct_events
class Tally(Aggregate):
    """How many assignments one probe has had, as seen by a consumer."""

    @staticmethod
    def create_id(source_id: str) -> UUID:
        return stable_id("tally", source_id)

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        self.count = 0

    @event("Counted")
    def count_one(self, rep_id: str) -> None:
        self.count += 1


class TallyApplication(ServiceApplication):
    def aggregates_touched(self, envelope: Envelope, event: Any) -> Iterable[UUID]:
        return (Tally.create_id(event.lead_id),) if isinstance(event, LeadAssigned) else ()

    def on_lead_assigned(self, delivery: Delivery, event: LeadAssigned, envelope: Envelope) -> bool:
        def handle() -> list[Tally]:
            if event.rep_id == REFUSED_REP:
                raise RuleViolated(f"{REFUSED_REP} may not be counted", field="rep_id")
            tally_id = Tally.create_id(event.lead_id)
            tally = self.repository.get(tally_id) if tally_id in self.repository else Tally(event.lead_id)
            tally.count_one(event.rep_id)
            return [tally]

        return self.process_delivery(delivery, handle)

    def count(self, source_id: str) -> int:
        tally_id = Tally.create_id(source_id)
        return self.repository.get(tally_id).count if tally_id in self.repository else 0


def count_batch(
    app: TallyApplication,
    partition: int,
    offset: int,
    deliveries: Sequence[tuple[str, int]],
    *,
    refuse: str | None = None,
) -> list[bool] | None:
    """A consumed batch of one partition of consumer "g", as the consumer applies it: each (source,
    version) counted on the source's tally, the batch's reads named (`refuse`: that source's
    handler changes its tally, then the domain refuses the event)."""

    def step(delivery: Delivery) -> Callable[[], bool]:
        def handle() -> list[Tally]:
            tally_id = Tally.create_id(delivery.source_aggregate_id)
            known = tally_id in app.repository
            tally = app.repository.get(tally_id) if known else Tally(delivery.source_aggregate_id)
            tally.count_one("rep-1")
            if delivery.source_aggregate_id == refuse:
                raise RuleViolated("refused", field="rep_id")
            return [tally]

        return lambda: app.process_delivery(delivery, handle)

    batch = [Delivery("g", "t", partition, offset, source, version) for source, version in deliveries]
    return app.apply_in_one_transaction(
        Tracking(batch[0].tracking_name, offset),
        [step(delivery) for delivery in batch],
        touched=[Tally.create_id(source) for source, _ in deliveries],
        inbox=[inbox_name("g", source) for source, _ in deliveries],
    )


def tally_handlers(app: TallyApplication) -> Mapping[str, Handler]:
    return {"LeadAssigned": app.on_lead_assigned}


def tally_consumer(
    app: ServiceApplication,
    *,
    topic: str,
    bootstrap: str,
    group: str,
    bug: str | None = None,
    dies: bool = False,
) -> ExactlyOnceConsumer:
    """The tally's consumer of a topic (module-level: a process of a split replay makes its own).
    `bug`: every handler raises it, as a handler with a bug would; `dies`: the process ends at its
    first message, as one killed would."""
    assert isinstance(app, TallyApplication)
    handlers = tally_handlers(app)
    if bug is not None:
        handlers = {name: functools.partial(_raise, bug) for name in handlers}
    if dies:
        handlers = {name: _die for name in handlers}
    return ExactlyOnceConsumer(
        app,
        handlers,
        group_id=group,
        topics=[topic],
        bootstrap_servers=bootstrap,
        partitions=3,
        metrics=Metrics("tally"),
    )


def _raise(bug: str, *_: Any) -> bool:
    raise RuntimeError(bug)


def _die(*_: Any) -> bool:
    os._exit(3)


class ProbeCreate(BaseModel):
    name: str


router = APIRouter(prefix="/probes")


@router.post("", status_code=201)
def create_probe(
    body: ProbeCreate, meta: CommandMeta, principal: CurrentPrincipal, context: Context
) -> dict[str, str]:
    principal.require("admin", "ops")
    return {"id": str(context.application.create(body.name, meta))}


class ProbeAssign(BaseModel):
    rep_id: str


@router.post("/{probe_id}/assignments", status_code=201)
def assign_probe(
    probe_id: UUID, body: ProbeAssign, meta: CommandMeta, principal: CurrentPrincipal, context: Context
) -> dict[str, int]:
    principal.require("admin", "ops")
    return {"version": context.application.assign_many(probe_id, [body.rep_id], meta)}


def make_probe(settings: ServiceSettings, env: dict[str, str]) -> ProbeApplication:
    return ProbeApplication(env)  # module-level: the relay's reader process makes one too


def probe_spec() -> ServiceSpec[ProbeApplication]:
    return ServiceSpec(name="leads", make_application=make_probe, translate=translate, routers=[router])

"""`ironarmy verify`: walk a service's event store and check every stream's hash chain."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from rich.console import Console

from shared.chain import verify as verify_chain
from shared.events.base import SERVICES
from shared.service import ServiceSpec

console = Console()


def service_spec(service: str) -> ServiceSpec[Any]:
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    try:
        bootstrap = importlib.import_module(f"services.{service}.bootstrap")
    except ModuleNotFoundError as error:
        raise typer.BadParameter(f"the {service} service is not built yet") from error
    spec: ServiceSpec[Any] = bootstrap.spec()
    return spec


def register(app: typer.Typer) -> None:
    @app.command()
    def verify(
        service: Annotated[str, typer.Argument(help="leads, visits, reviews or rotation")],
    ) -> None:
        """Check the tamper-evident hash chain of every stream in a service's store
        (the store named by IRONARMY_STORE and its settings); exit 1 at the first broken link."""
        spec = service_spec(service)
        settings = spec.settings_class()
        application = spec.make_application(settings, settings.eventsourcing_env(service))
        with console.status(f"verifying {service}…"):
            result = verify_chain(application.process_recorder)
        if result.broken is None:
            console.print(
                f"[green]{service}: {result.events} events in {result.streams} streams, every link holds"
            )
            return
        broken = result.broken
        console.print(
            f"[red]{service}: broken link at notification {broken.notification_id}, stream "
            f"{broken.originator_id} version {broken.originator_version}: {broken.reason}"
        )
        raise typer.Exit(1)

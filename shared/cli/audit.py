"""`ironarmy verify` and `ironarmy audit`: is the store intact, and who did what, when, on what evidence.

`verify` walks a store's hash chains; `audit rep|lead` shows the visits service's audit trail.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from shared.auth import TokenAuthority
from shared.chain import verify as verify_chain
from shared.cli.processes import GATEWAY_PORT
from shared.events.base import SERVICES
from shared.service import ServiceSpec
from shared.settings import ServiceSettings

console = Console()

GatewayOption = Annotated[
    str, typer.Option("--api", envvar="IRONARMY_GATEWAY_URL", help="the gateway the services answer on")
]
JsonOption = Annotated[bool, typer.Option("--json", help="the entries as JSON, for machines")]
DEFAULT_GATEWAY = f"http://127.0.0.1:{GATEWAY_PORT}"


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
    register_trail(app)

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


def fetch_trail(api: str, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """The visits service's audit trail through the gateway, read with an ops token."""
    settings = ServiceSettings()
    authority = TokenAuthority(settings.jwt_secret.get_secret_value(), settings.jwt_issuer)
    token = authority.issue("ops-cli", "ops")
    url = f"{api.rstrip('/')}/visits/audit/{path}"
    try:
        response = httpx.get(url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as error:
        console.print(f"[red]the visits service does not answer at {url}: {error}")
        raise typer.Exit(2) from error
    if response.status_code != 200:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        console.print(f"[red]{url}: {response.status_code} {message}")
        raise typer.Exit(1)
    entries: list[dict[str, Any]] = response.json()
    return entries


def show_trail(title: str, entries: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode())
        return
    if not entries:
        console.print(f"{title}: no events")
        return
    table = Table(title=title, title_justify="left")
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("what happened, and the events that prove it", overflow="fold")
    for entry in entries:
        source = "[cyan]leads[/]" if entry["source"] == "leads" else "[magenta]visits[/]"
        event = entry["event_type"]
        if "Flag" in event or "Fabrication" in event or "Breach" in event:
            event = f"[red]{event}[/]"
        what = entry["summary"]
        if entry["evidence"]:
            what += f"\n[dim]evidence: {', '.join(entry['evidence'])}[/]"
        table.add_row(entry["at"][:16].replace("T", " "), f"{source} {event}", what)
    console.print(table, highlight=False)
    console.print(f"{len(entries)} events (`--json` for machines)")


def register_trail(app: typer.Typer) -> None:
    trail = typer.Typer(
        help="The cross-service timeline of a rep or a lead: the leads events the visits service "
        "consumed and its own visit log, with flags, decisions and the events that prove them.",
        no_args_is_help=True,
    )

    @trail.command("rep")
    def rep_trail(
        rep_id: Annotated[str, typer.Argument(help="the rep's id")],
        lead: Annotated[str | None, typer.Option(help="only what touched this lead")] = None,
        api: GatewayOption = DEFAULT_GATEWAY,
        json: JsonOption = False,
    ) -> None:
        """Every event that touched a rep, in the order it happened."""
        params = {"lead_id": lead} if lead else {}
        entries = fetch_trail(api, f"reps/{quote(rep_id, safe='')}", params)
        show_trail(f"rep {rep_id}" + (f" on lead {lead}" if lead else ""), entries, json)

    @trail.command("lead")
    def lead_trail(
        lead_id: Annotated[str, typer.Argument(help="the lead's id")],
        api: GatewayOption = DEFAULT_GATEWAY,
        json: JsonOption = False,
    ) -> None:
        """Every event that touched a lead, in the order it happened."""
        entries = fetch_trail(api, f"leads/{quote(lead_id, safe='')}", {})
        show_trail(f"lead {lead_id}", entries, json)

    app.add_typer(trail, name="audit")

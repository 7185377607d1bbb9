"""`ironarmy up` and `ironarmy token`."""

from __future__ import annotations

import secrets
import signal
import threading
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.auth import TokenAuthority
from shared.cli.processes import REPO, System, available_services, run_script, running_system
from shared.settings import ServiceSettings

console = Console()


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        store: Annotated[str, typer.Option(help="sqlite (embedded, default) or postgres")] = "sqlite",
        kafka: Annotated[str | None, typer.Option(help="bootstrap servers of an existing cluster")] = None,
        data_dir: Annotated[Path, typer.Option(help="where SQLite stores live")] = REPO / "var" / "data",
        clock: Annotated[str, typer.Option(help="system, or movable (for simulate)")] = "movable",
        gateway: Annotated[bool, typer.Option(help="start the nginx gateway on :8080")] = True,
        topic_prefix: Annotated[str, typer.Option(help="topic name prefix")] = "ironarmy",
    ) -> None:
        """Start Kafka, the services and the gateway; wait until ready; Ctrl-C stops them all."""
        if kafka is None:
            run_script("deploy/kafka/kafka.sh", "up")
        if store == "postgres":
            run_script("deploy/postgres/postgres.sh", "up")
        env = {
            "IRONARMY_STORE": store,
            "IRONARMY_DATA_DIR": str(data_dir),
            "IRONARMY_KAFKA_BOOTSTRAP_SERVERS": kafka or "127.0.0.1:9092",
            "IRONARMY_CLOCK": clock,
            "IRONARMY_TOPIC_PREFIX": topic_prefix,
        }
        services = available_services()
        system = System(env=env)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with (
            console.status("starting services…"),
            running_system(system, services, REPO / "var" / "log", gateway) as running,
        ):
            table = Table(title="Iron Army is up")
            table.add_column("service")
            table.add_column("direct")
            table.add_column("through the gateway")
            for service in services:
                direct = f"http://127.0.0.1:{running.port(service)}/docs"
                via = f"http://127.0.0.1:{running.gateway_port}/{service}/docs" if gateway else "-"
                table.add_row(service, direct, via)
            console.print(table)
            console.print(
                f"Kafka: {env['IRONARMY_KAFKA_BOOTSTRAP_SERVERS']} · stores: {store} · logs: var/log"
            )
            console.print("Ctrl-C stops the services and the gateway (the broker keeps running).")
            stop.wait()
        console.print("stopped")

    @app.command()
    def token(
        actor_id: str,
        role: str,
        region: Annotated[str | None, typer.Option(help="the region a rep or manager works in")] = None,
        hours: Annotated[int, typer.Option(help="how long the token is valid")] = 12,
    ) -> None:
        """Print a bearer token signed with IRONARMY_JWT_SECRET (for scripts and the apps' testers)."""
        settings = ServiceSettings()
        authority = TokenAuthority(settings.jwt_secret.get_secret_value(), settings.jwt_issuer)
        typer.echo(authority.issue(actor_id, role, region=region, ttl=timedelta(hours=hours)))

    @app.command("new-secret")
    def new_secret() -> None:
        """Print a fresh random value for IRONARMY_JWT_SECRET."""
        typer.echo(secrets.token_urlsafe(48))

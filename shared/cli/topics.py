"""`ironarmy tail`: follow a topic's events, decoded."""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
import typer
from aiokafka import AIOKafkaConsumer
from rich.console import Console

from shared.events.base import SERVICES
from shared.events.catalog import UndecodableEvent, decode
from shared.settings import ServiceSettings

console = Console()


def topic_for(name: str, settings: ServiceSettings) -> str:
    return settings.topic(name) if name in SERVICES else name


async def _tail(topic: str, bootstrap: str, from_beginning: bool, as_json: bool, limit: int | None) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    seen = 0
    try:
        async for record in consumer:
            try:
                envelope, _ = decode(record.value)
            except UndecodableEvent as error:
                console.print(f"[red]{record.partition}@{record.offset} undecodable: {error}")
                continue
            if as_json:
                typer.echo(orjson.dumps(envelope.model_dump(mode="json")).decode())
            else:
                console.print(
                    f"[dim]{record.partition}@{record.offset}[/] {envelope.occurred_at:%Y-%m-%d %H:%M} "
                    f"[bold]{envelope.event_type}[/] {envelope.aggregate_type} {envelope.aggregate_id[:8]}"
                    f"#{envelope.aggregate_version} by {envelope.actor_role}:{envelope.actor_id} "
                    f"{orjson.dumps(envelope.payload).decode()}"
                )
            seen += 1
            if limit is not None and seen >= limit:
                return
    finally:
        await consumer.stop()


def register(app: typer.Typer) -> None:
    @app.command()
    def tail(
        topic: Annotated[str, typer.Argument(help="a service name (leads, visits, …) or a topic")],
        from_beginning: Annotated[bool, typer.Option("--from-beginning", help="start at offset 0")] = False,
        json: Annotated[bool, typer.Option("--json", help="one envelope per line, as JSON")] = False,
        limit: Annotated[int | None, typer.Option(help="stop after this many events")] = None,
    ) -> None:
        """Follow a topic's events, decoded."""
        settings = ServiceSettings()
        asyncio.run(
            _tail(topic_for(topic, settings), settings.kafka_bootstrap_servers, from_beginning, json, limit)
        )

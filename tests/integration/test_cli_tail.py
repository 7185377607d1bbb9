"""`ironarmy tail` decodes a topic's events for a person (or, with --json, for a script)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from typer.testing import CliRunner

from shared.cli import app
from tests.integration.test_outbox_relay import meta, relay_for, run_until
from tests.support.probe import ProbeApplication
from tests.support.stores import sqlite_env


async def test_tail_prints_each_event_of_a_topic_decoded(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    store = ProbeApplication(sqlite_env(tmp_path / "p.db"))
    probe_id = store.create("p", meta())
    store.assign_many(probe_id, ["rep-1", "rep-2"], meta())
    topic = f"{topic_prefix}.leads"
    await run_until(relay_for(store, topic, kafka_bootstrap), store)

    runner = CliRunner()
    env = {"IRONARMY_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    as_json = await asyncio.to_thread(
        runner.invoke, app, ["tail", topic, "--from-beginning", "--limit", "2", "--json"], env=env
    )
    assert as_json.exit_code == 0, as_json.output
    envelopes = [orjson.loads(line) for line in as_json.output.splitlines()]
    assert [(e["event_type"], e["aggregate_version"], e["payload"]["rep_id"]) for e in envelopes] == [
        ("LeadAssigned", 2, "rep-1"),
        ("LeadAssigned", 3, "rep-2"),
    ]
    readable = await asyncio.to_thread(
        runner.invoke, app, ["tail", topic, "--from-beginning", "--limit", "1"], env=env
    )
    assert readable.exit_code == 0 and "LeadAssigned" in readable.output and "ops:ops-1" in readable.output

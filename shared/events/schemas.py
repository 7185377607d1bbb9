"""Exports the JSON Schema of every public event, and an AsyncAPI document of the topics, to
docs/events/, so analytics consumers can read the topics without our code.
`python -m shared.events.schemas [--check]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from shared.events.base import SERVICES, Envelope, IntegrationEvent
from shared.events.catalog import ALL_EVENTS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"


def event_schema(model: type[IntegrationEvent]) -> dict[str, Any]:
    """The envelope's schema with this event's payload in place of the generic one."""
    schema = Envelope.model_json_schema()
    payload = model.model_json_schema()
    defs = {**schema.pop("$defs", {}), **payload.pop("$defs", {})}
    schema["title"] = f"{model.event_type} v{model.schema_version}"
    schema["description"] = (
        model.__doc__ or ""
    ).strip() or f"{model.event_type} on the {model.service} topic"
    schema["$id"] = f"urn:ironarmy:event:{model.service}:{model.event_type}:v{model.schema_version}"
    props = schema["properties"]
    props["event_type"] = {"const": model.event_type, "title": "Event Type", "type": "string"}
    props["schema_version"] = {"const": model.schema_version, "title": "Schema Version", "type": "integer"}
    props["payload"] = payload
    if defs:
        schema["$defs"] = defs
    schema["x-topic"] = f"<prefix>.{model.service}"
    schema["x-key"] = "aggregate_id"
    return schema


def schema_path(model: type[IntegrationEvent]) -> str:
    return f"{model.service}/{model.event_type}.v{model.schema_version}.schema.json"


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 2.6 document: one channel per service topic, a message per event."""
    channels: dict[str, Any] = {}
    for service in SERVICES:
        models = [m for m in ALL_EVENTS if m.service == service]
        messages = [
            {
                "name": m.event_type,
                "title": f"{m.event_type} v{m.schema_version}",
                "summary": (m.__doc__ or "").strip().splitlines()[0] if m.__doc__ else m.event_type,
                "contentType": "application/json",
                "bindings": {"kafka": {"key": {"type": "string", "description": "aggregate_id"}}},
                "payload": {"$ref": f"./{schema_path(m)}"},
            }
            for m in models
        ]
        channels[f"ironarmy.{service}"] = {
            "description": f"Events of the {service} service, keyed by aggregate id "
            f"(the prefix `ironarmy` is IRONARMY_TOPIC_PREFIX).",
            "subscribe": {
                "operationId": f"consume_{service}",
                "message": {"oneOf": messages}
                if messages
                else {"payload": {"$ref": "./envelope.schema.json"}},
            },
        }
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "Iron Army integration events",
            "version": "1",
            "description": "Every event travels in one envelope (envelope.schema.json); payloads are "
            "versioned by schema_version, and a breaking change is a new version.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"url": "127.0.0.1:9092", "protocol": "kafka"}},
        "channels": channels,
    }


def expected_files() -> dict[Path, bytes]:
    files = {
        DOCS / "envelope.schema.json": Envelope.model_json_schema(),
        DOCS / "asyncapi.json": asyncapi(),
    }
    for model in ALL_EVENTS:
        files[DOCS / model.service / f"{model.event_type}.v{model.schema_version}.schema.json"] = (
            event_schema(model)
        )
    return {
        path: orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        for path, schema in files.items()
    }


def stale_files() -> list[str]:
    """Schema files that differ from the models, are missing, or belong to no model."""
    expected = expected_files()
    stale = [
        str(p.relative_to(DOCS))
        for p, content in expected.items()
        if not p.exists() or p.read_bytes() != content
    ]
    present = set(DOCS.rglob("*.json")) if DOCS.exists() else set()
    stale += [f"{p.relative_to(DOCS)} (no such event)" for p in present - set(expected)]
    return sorted(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a schema file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"out of date: docs/events/{name}", file=sys.stderr)
        return 1 if stale else 0
    expected = expected_files()
    for path in set(DOCS.rglob("*.json")) - set(expected) if DOCS.exists() else ():
        path.unlink()
    for path, content in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    print(f"wrote {len(expected)} schema files under {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

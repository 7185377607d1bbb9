"""Prometheus metrics of one service process, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route and status",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "http_request_seconds",
            "HTTP request latency",
            ["service", "route"],
            registry=self.registry,
        )
        self.relay_published = Counter(
            "relay_published_events_total",
            "Integration events the outbox relay published",
            ["topic"],
            registry=self.registry,
        )
        self.relay_handed_over = Counter(
            "relay_handed_over_events_total",
            "Stored events the outbox relay took from the saves that stored them, not reading the store",
            ["topic"],
            registry=self.registry,
        )
        self.relay_position = Gauge(
            "relay_position",
            "Last notification id the relay has published",
            ["topic"],
            registry=self.registry,
        )
        self.consumed = Counter(
            "consumer_messages_total",
            "Consumed messages by outcome (applied, duplicate, redelivered, ignored, dead_lettered)",
            ["group", "topic", "outcome"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "consumer_lag_messages",
            "Messages on the partition not yet applied",
            ["group", "topic", "partition"],
            registry=self.registry,
        )
        self.store_commit_saves = Histogram(
            "store_commit_saves",
            "Saves written in one store transaction (saves that wait on a write go in together)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.service = service

"""Prometheus metrics for operators' dashboards and alerts, served at /metrics.

Counters and the attempt-time histogram are this node's own (records taken in, attempts ended);
queue depths, the age of the oldest waiting delivery and the exchange log's length are read from
the store at each scrape, so every node of a cluster reports the same shared queues. Labels carry
channel and agency codes only, never case numbers or message ids (no case data leaves by this door,
and the number of series stays bounded).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.model import DeliveryState, Receipt
from gateway.store.roles import ExchangeLog, Operations
from gateway.store.rows import QueueDepth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_WAITING = (DeliveryState.QUEUED, DeliveryState.RETRYING, DeliveryState.IN_FLIGHT)


class Gauged(Operations, ExchangeLog, Protocol):
    """The store as a scrape reads it: queue depths and the log's head."""


class _StoreSnapshot(Collector):
    """Gauges from the store, read (asynchronously) just before each scrape renders them."""

    def __init__(self) -> None:
        self.queues: list[QueueDepth] = []
        self.log_entries = 0
        self.taken_at = 0.0

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("gateway_deliveries", "deliveries per destination and state",
                                  labels=["destination", "state"])
        oldest = GaugeMetricFamily("gateway_oldest_waiting_seconds",
                                   "age of the oldest delivery not yet delivered (queued, retrying or in flight)",
                                   labels=["destination"])
        ages: dict[str, float] = {}
        for row in self.queues:
            depth.add_metric([row.destination, str(row.state)], row.count)
            if row.state in _WAITING and row.oldest:
                age = max(0.0, self.taken_at - float(row.oldest))
                ages[row.destination] = max(ages.get(row.destination, 0.0), age)
        for dest, age in sorted(ages.items()):
            oldest.add_metric([dest], age)
        yield depth
        yield oldest
        yield GaugeMetricFamily("gateway_exchange_log_entries",
                                "entries in the exchange log (its head's sequence number)", value=self.log_entries)


class Metrics:
    """One registry per gateway (tests run several gateways in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.records = Counter("gateway_records", "records taken in, by channel and outcome (accepted, rejected, "
                               "duplicate; busy: refused for the moment, to be resent)", ["channel", "outcome"],
                               registry=self.registry)
        self.attempts = Counter("gateway_delivery_attempts", "delivery attempts ended, by destination and what "
                                "the delivery became (delivered, retrying, dead)", ["destination", "result"],
                                registry=self.registry)
        self.attempt_seconds = Histogram(
            "gateway_delivery_attempt_seconds", "time from taking a delivery to recording its outcome",
            ["destination"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.queued_to_delivered = Histogram(
            "gateway_queued_to_delivered_seconds", "time from a delivery being queued (the record's arrival, "
            "or a replay) to its receiver confirming it, retries included", ["destination"], registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400))
        self.validations = Counter(
            "gateway_validations", "records checked by the validation service (nothing stored), by agency and "
            "outcome (accepted, warned, blocked; rate-limited: refused over the agency's share)",
            ["agency", "outcome"], registry=self.registry)
        self.tls_refusals = Counter(
            "gateway_tls_handshake_refusals", "TLS handshakes this node refused, by reason (no_certificate, "
            "bad_certificate, plain_http, timeout, other)", ["reason"], registry=self.registry)
        for reason in ("no_certificate", "bad_certificate", "plain_http", "timeout", "other"):
            self.tls_refusals.labels(reason)
        self._store = _StoreSnapshot()
        self.registry.register(self._store)

    def record_taken(self, channel: str, receipt: Receipt) -> None:
        outcome = "duplicate" if receipt.duplicate else str(receipt.status)
        self.records.labels(channel, outcome).inc()

    def validated(self, agency: str, outcome: str) -> None:
        self.validations.labels(agency, outcome).inc()

    def busy(self, channel: str) -> None:
        self.records.labels(channel, "busy").inc()

    def attempt_ended(self, destination: str, state: DeliveryState, seconds: float, since_queued: float) -> None:
        self.attempts.labels(destination, str(state)).inc()
        self.attempt_seconds.labels(destination).observe(seconds)
        if state == DeliveryState.DELIVERED:
            self.queued_to_delivered.labels(destination).observe(max(0.0, since_queued))

    async def render(self, store: Gauged) -> bytes:
        self._store.queues = await store.queue_depths()
        self._store.log_entries = (await store.audit_head())[0]
        self._store.taken_at = time.time()
        return bytes(generate_latest(self.registry))

"""Refusals: every one counted, each kind logged once per interval, failed logins slowed down."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gateway.api.app import create_app
from gateway.audit.chain import AuditEvent
from gateway.config import parse_config
from gateway.refusals import Refusals
from gateway.runtime import Gateway

from .support.config import base_config


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_repeats_are_counted_into_one_entry_per_interval() -> None:
    logged: list[AuditEvent] = []

    async def append(events: list[AuditEvent]) -> None:
        logged.extend(events)

    clock = Clock()
    r = Refusals(append, interval=60, limit=5, clock=clock)
    for _ in range(200):
        await r.refused("access-refused", "client 10.0.0.9", "10.0.0.9", "api.unknown-key", {"why": "unknown"})
    await r.refused("access-refused", "client 10.0.0.7", "10.0.0.7", "api.unknown-key", {"why": "unknown"})
    assert [e.actor for e in logged] == ["client 10.0.0.9", "client 10.0.0.7"]  # the first of each, at once
    clock.now += 61
    await r.refused("access-refused", "client 10.0.0.9", "10.0.0.9", "api.unknown-key", {"why": "unknown"})
    repeated = [e for e in logged if e.action == "refusals-repeated"]
    assert len(repeated) == 1 and repeated[0].detail["repeats"] == 199 and repeated[0].detail["source"] == "10.0.0.9"
    assert logged[-1].action == "access-refused"  # a new interval logs its first refusal again
    await r.flush()
    assert sum(1 for e in logged if e.action == "access-refused") + sum(
        e.detail["repeats"] for e in logged if e.action == "refusals-repeated") == 202  # every one counted


def test_failed_logins_are_slowed_down_per_source_until_the_interval_ends() -> None:
    async def append(events: list[AuditEvent]) -> None:
        return None

    clock = Clock()
    r = Refusals(append, interval=60, limit=3, clock=clock)
    for _ in range(3):
        assert r.retry_after("10.0.0.9") is None
        r.failed_authentication("10.0.0.9")
    assert r.retry_after("10.0.0.9") == pytest.approx(60)
    assert r.retry_after("10.0.0.7") is None  # another source is not affected
    clock.now += 60
    assert r.retry_after("10.0.0.9") is None


async def test_a_flood_of_wrong_keys_makes_a_few_log_entries_and_429s(tmp_path: Path) -> None:
    """200 requests with a wrong key made 200 permanent log entries; now a handful, the rest counted."""
    data = base_config(tmp_path / "data")
    data["gateway"]["refusals"] = {"auth_failures_per_source": 20}
    gw = Gateway(parse_config(data))
    await gw.start()
    try:
        before = (await gw.store.audit_head())[0]
        transport = httpx.ASGITransport(app=create_app(gw), client=("10.1.2.3", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as api:
            codes = [(await api.get("/api/v1/queues", headers={"X-API-Key": "wrong"})).status_code
                     for _ in range(200)]
        assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
        r429 = await httpx.AsyncClient(transport=transport, base_url="http://gw").get("/api/v1/queues")
        assert r429.status_code == 429 and int(r429.headers["retry-after"]) >= 1
        await gw.refusals.flush()
        entries = [e for e in await gw.store.audit_entries(after_seq=before)
                   if e.action in ("access-refused", "refusals-repeated")]
        assert len(entries) <= 4, [e.action for e in entries]
        counted = sum(1 for e in entries if e.action == "access-refused") + sum(
            json.loads(e.detail)["repeats"] for e in entries if e.action == "refusals-repeated")
        assert counted == 201
    finally:
        await gw.stop()

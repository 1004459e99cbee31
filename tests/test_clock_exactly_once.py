"""Exactly-once warnings: two gateway processes on one PostgreSQL scan the same clocks while one of
them is killed with SIGKILL again and again; the receiver counts every warning once, none twice.

300 records start 300 prosecution-review clocks; the test then moves their deadlines: half are
already overdue, half are approaching and become overdue 15 seconds later, while the kills go on.
A warning is one delivery of its own (its own Idempotency-Key): a warning issued twice would reach
the receiver under two keys. Retries of one delivery (a node killed mid-delivery) carry the same
key and are counted once, as a well-made receiver acts once per key.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import yaml
from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from .support.nodes import Cluster, send_records
from .support.receiver import Receiver
from .support.records import record
from .support.stores import DSN_ENV

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLOCKS = 300


class NoticeReceiver(Receiver):
    """Keeps every time-limit notice it acted on, by Idempotency-Key."""

    def __init__(self) -> None:
        super().__init__()
        self.notices: dict[str, tuple[str, str]] = {}  # key -> (original message id, rule)

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        answer = await super().receive(request)
        key = request.headers.get("idempotency-key", "")
        if b"TIME-LIMIT-" in body and answer.status_code == 200 and key not in self.notices:
            doc = etree.fromstring(body)
            self.notices[key] = (doc.findtext("{*}OriginalMessageId") or "", doc.findtext("{*}Defect/{*}Rule") or "")
        return answer


def rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql).fetchall()


async def test_two_nodes_killed_repeatedly_send_each_warning_once(pg_dsn: str, tmp_path: Path) -> None:
    receiver = NoticeReceiver()
    receiver.start()
    cluster = Cluster.create(2, tmp_path, {"backend": "postgres", "dsn": {"env": DSN_ENV}}, receiver.url,
                             env={DSN_ENV: pg_dsn}, lease_seconds=2.0)
    for n in cluster.nodes:  # each node scans every 50 ms: they race for the same clocks all the time
        cfg = yaml.safe_load(n.config.read_text())
        cfg["clocks"] = {"scan_seconds": 0.05, "batch": 40}
        n.config.write_text(yaml.safe_dump(cfg))
    rng = random.Random(13)
    kills = 0
    try:
        await asyncio.to_thread(cluster.start)
        receipts = await send_records(cluster, [(f"POL-{i}", record(case=f"C2026-{i:04d}")) for i in range(CLOCKS)])
        assert len(receipts) == CLOCKS
        deadline = time.monotonic() + 120
        while rows(pg_dsn, "SELECT count(*) FROM clocks WHERE state = 'running'")[0][0] < CLOCKS:
            assert time.monotonic() < deadline, "the clocks did not all start"
            await asyncio.sleep(0.2)
        now = time.time()
        with psycopg.connect(pg_dsn) as c:  # half overdue a day ago, half approaching, overdue in 15 s
            c.execute("UPDATE clocks SET due_at = %s, warn_at = %s, next_warn_at = %s, last_day = '2026-01-01' "
                      "WHERE case_number < 'C2026-0150'", (now - 86400, now - 2 * 86400, now - 2 * 86400))
            c.execute("UPDATE clocks SET due_at = %s, warn_at = %s, next_warn_at = %s "
                      "WHERE case_number >= 'C2026-0150'", (now + 15, now - 60, now - 60))
        end = time.monotonic() + 25
        while time.monotonic() < end:  # kill one node every 0.5-2 s; the other one keeps going
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            victim = rng.choice(cluster.nodes)
            if victim.alive() and len(cluster.live()) > 1:
                victim.kill()
                kills += 1
                await asyncio.sleep(rng.uniform(0.1, 0.5))
                victim.start()
        for n in cluster.nodes:
            await asyncio.to_thread(n.wait_ready)

        def settled() -> bool:
            overdue = rows(pg_dsn, "SELECT count(*) FROM clock_warnings WHERE kind = 'overdue'")[0][0]
            waiting = rows(pg_dsn, "SELECT count(*) FROM deliveries WHERE state <> 'delivered'")[0][0]
            return overdue == CLOCKS and waiting == 0

        deadline = time.monotonic() + 120
        while not await asyncio.to_thread(settled):
            assert time.monotonic() < deadline, rows(pg_dsn, "SELECT kind, count(*) FROM clock_warnings GROUP BY 1")
            await asyncio.sleep(0.3)
        cluster.stop()

        claims = rows(pg_dsn, "SELECT c.message_id, w.kind FROM clock_warnings w JOIN clocks c ON c.id = w.clock_id")
        logged = Counter(rows(pg_dsn, "SELECT detail::jsonb ->> 'clock', action FROM audit_log "
                                      "WHERE action IN ('clock-approaching', 'clock-overdue')"))
        got = Counter(receiver.notices.values())
        rule = {"approaching": "TIME-LIMIT-APPROACHING", "overdue": "TIME-LIMIT-OVERDUE"}
        expected = Counter((str(m), rule[str(k)]) for m, k in claims)
        assert kills >= 8, kills
        assert sum(1 for _, k in claims if k == "overdue") == CLOCKS  # every due warning went out ...
        assert got == expected, "a warning reached the receiver twice, or not at all"  # ... once, none twice
        assert max(got.values()) == 1
        assert all(n == 1 for n in logged.values()) and len(logged) == len(claims)  # one log entry each
        approaching = sum(1 for _, k in claims if k == "approaching")
        print(f"\n{kills} kills; {len(claims)} warnings ({approaching} approaching, {CLOCKS} overdue) each "
              f"received once; {receiver.duplicate_arrivals} retried deliveries recognised by their key")
    finally:
        for n in cluster.nodes:
            n.kill()
        receiver.stop()

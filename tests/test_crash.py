"""Crash test: a real gateway process killed with SIGKILL ten times while 1,000 records flow.

A sender pushes records over HTTP and resends until it holds a receipt; a loopback receiver
counts arrivals by message id and answers a repeated Idempotency-Key with its first receipt.
Afterwards every record must be delivered and confirmed exactly once in the gateway's records,
the receiver must have seen every key, and the exchange log's hash chain must verify. Raw
arrival duplicates (sent, then killed before the result was committed) are reported, not hidden:
they are the at-least-once window that the idempotency key absorbs.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.audit.chain import AuditEntry

from .support.chain import verify_chain
from .support.config import http_config
from .support.nodes import Node
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving

RECORDS = 1000
KILLS = 10
SENDERS = 4
RATE = 60.0  # records per second offered, so that the kills fall while records are in flight

pytestmark = pytest.mark.slow


async def send_all(base: str, receipts: dict[int, dict[str, Any]], resends: Counter[str]) -> None:
    """Each record is sent until a receipt comes back; no receipt means send it again."""
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(RECORDS):
        todo.put_nowait(i)
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def worker(http: httpx.AsyncClient) -> None:
        while not todo.empty():
            i = todo.get_nowait()
            await asyncio.sleep(max(0.0, t0 + i / RATE - loop.time()))
            while True:
                try:
                    r = await http.post("/inbound/police-in", content=record(case=f"C2026-{i:05d}"),
                                        headers={"X-Message-Id": f"POLICE-{i}"})
                    if r.status_code in (200, 202):
                        receipts[i] = r.json()
                        break
                    resends[f"HTTP {r.status_code}"] += 1
                except httpx.TransportError as e:
                    resends[type(e).__name__] += 1
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": "crash-key"}, timeout=10) as http:
        await asyncio.gather(*(worker(http) for _ in range(SENDERS)))


def db_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def rebuilt_equal(db: Path) -> bool:
    """The aggregates as kept at commit time equal what `gateway stats rebuild` recomputes."""
    from gateway.store.sqlite import SQLiteStore
    from tests.test_stats_aggregates import snapshot

    store = SQLiteStore(db, node="check")
    await store.open()
    try:
        kept = await snapshot(store)
        await store.rebuild_stats()
        assert await snapshot(store) == kept
    finally:
        await store.close()
    return True


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
async def test_kill_nine_ten_times_loses_nothing(tmp_path: Path, workers: int) -> None:
    """With two workers the kill hits the node's parent, and its workers die with it, mid-group."""
    rng = random.Random(os.environ.get("CRASH_SEED", "7"))
    rcv = Receiver()
    port = free_port()
    cfg = http_config(tmp_path / "data", rcv.url, node="crash-node", lease_seconds=2.0,
                      api={"host": "127.0.0.1", "port": port})
    cfg["gateway"]["workers"] = workers
    cfg["gateway"]["store"] = {"durability": "full"}
    cfg["agencies"][1]["outbound"]["retry"] = {"initial_backoff": 0.1, "max_backoff": 1.0, "jitter": 0.1,
                                               "max_attempts": 1000}
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    gw = Node("crash-node", port, config, {"POLICE_KEY": "crash-key"})
    receipts: dict[int, dict[str, Any]] = {}
    resends: Counter[str] = Counter()
    db = tmp_path / "data" / "gateway.db"

    async with serving(rcv.app(), rcv.port):
        await gw.start_and_wait()
        try:
            sender = asyncio.create_task(send_all(f"http://127.0.0.1:{port}", receipts, resends))
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.3, 2.0))
                gw.kill()
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                await gw.start_and_wait()
            await asyncio.wait_for(sender, 120)

            for _ in range(1200):  # every delivery settles within a minute once the gateway stays up
                left = db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state != 'delivered'")[0][0]
                if left == 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            gw.stop()

    mids = {r["message_id"] for r in receipts.values()}
    assert len(receipts) == RECORDS and all(r["status"] == "accepted" for r in receipts.values())
    assert len(mids) == RECORDS, "two records were given the same message id"

    # the gateway's records: one message, one delivery, one confirmed attempt per record
    counts = db_rows(db, "SELECT COUNT(*), COUNT(DISTINCT sender_message_id) FROM messages")[0]
    assert counts == (RECORDS, RECORDS)
    states = dict(db_rows(db, "SELECT state, COUNT(*) FROM deliveries GROUP BY state"))
    assert states == {"delivered": RECORDS}, states
    confirmed = Counter(m for (m,) in db_rows(
        db, "SELECT d.message_id FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
            "WHERE a.outcome = 'delivered'"))
    assert set(confirmed) == mids and set(confirmed.values()) == {1}
    logged = Counter(m for (m,) in db_rows(db, "SELECT message_id FROM audit_log WHERE action = 'delivered'"))
    assert set(logged) == mids and set(logged.values()) == {1}

    # the receiver: every key seen at least once; repeats answered with the first receipt
    assert set(rcv.arrivals) == mids and min(rcv.arrivals.values()) >= 1
    assert len(rcv.keys) == RECORDS
    raw = sum(rcv.arrivals.values())
    stored = dict(db_rows(db, "SELECT message_id, receipt FROM deliveries"))
    assert all(bytes(stored[m]) == rcv.keys[f"{m}:PROC"] for m in mids), "a receipt differs from the first"

    # the case timeline was written in the same transactions: one row per message, none without one,
    # and each delivery's confirmation on its receiver's row
    orphans = db_rows(db, "SELECT COUNT(*) FROM messages m LEFT JOIN case_timeline t ON t.message_id = m.id "
                          "WHERE t.message_id IS NULL UNION ALL SELECT COUNT(*) FROM case_timeline t "
                          "LEFT JOIN messages m ON m.id = t.message_id WHERE m.id IS NULL")
    assert orphans == [(0,), (0,)], f"messages without a timeline row, timeline rows without a message: {orphans}"
    assert db_rows(db, "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM case_timeline")[0] == (RECORDS, RECORDS)
    assert db_rows(db, "SELECT COUNT(*), COUNT(delivered_at) FROM case_receivers")[0] == (RECORDS, RECORDS)
    # the daily statistics committed with the records and deliveries: equal to a recomputation
    sums = db_rows(db, "SELECT SUM(sent), SUM(accepted), SUM(received), SUM(handover_n) FROM stats_daily")[0]
    assert sums == (RECORDS, RECORDS, RECORDS, RECORDS), sums
    assert await rebuilt_equal(db)

    entries = [AuditEntry(*r) for r in db_rows(db, "SELECT * FROM audit_log ORDER BY seq")]
    verify_chain(entries)
    starts = sum(1 for e in entries if e.action == "node-started")
    if workers == 1:
        assert starts == KILLS + 1 == gw.starts
    else:  # a kill may fall while a worker is still starting (the node answers once one is ready)
        assert gw.starts <= starts <= workers * gw.starts, (starts, gw.starts)
        assert {e.detail for e in entries if e.action == "node-started"} >= {
            f'{{"node":"crash-node","worker":{w}}}' for w in range(1, workers + 1)}
    intake_dups = sum(1 for e in entries if e.action == "duplicate")
    print(f"\ncrash test: {RECORDS} records, {workers} worker(s), {KILLS} kill -9, {gw.starts} starts; "
          f"receiver arrivals {raw} = {RECORDS} unique + {raw - RECORDS} repeats of a confirmed key "
          f"({max(rcv.arrivals.values())} at most for one key); sender resends {dict(resends)}; "
          f"resends answered with the original receipt {intake_dups}; "
          f"log entries {len(entries)}, chain verified")

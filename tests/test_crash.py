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
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.chain import AuditEntry

from .support.chain import verify_chain
from .support.crashes import db_rows, send_until_receipted, settle, write_crash_config
from .support.nodes import Node
from .support.ports import free_port
from .support.receiver import Receiver
from .support.serving import serving

RECORDS = 1000
KILLS = 10
SENDERS = 4
RATE = 60.0  # records per second offered, so that the kills fall while records are in flight

pytestmark = pytest.mark.slow


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
    config = write_crash_config(tmp_path / "gateway.yaml", tmp_path / "data", rcv.url, "crash-node", port,
                                workers=workers)
    gw = Node("crash-node", port, config, {"POLICE_KEY": "crash-key"})
    receipts: dict[int, dict[str, Any]] = {}
    resends: Counter[str] = Counter()
    db = tmp_path / "data" / "gateway.db"

    async with serving(rcv.app(), rcv.port):
        await gw.start_and_wait()
        try:
            sender = asyncio.create_task(send_until_receipted(f"http://127.0.0.1:{port}", RECORDS, receipts,
                                                              key="crash-key", rate=RATE, senders=SENDERS,
                                                              resends=resends))
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.3, 2.0))
                gw.kill()
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                await gw.start_and_wait()
            await asyncio.wait_for(sender, 120)
            await settle(db)
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

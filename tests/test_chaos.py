"""Chaos: three gateway processes on one PostgreSQL, one killed with SIGKILL every few seconds.

5,000 records go in over HTTP to any live node and out over HTTP to a loopback receiver. In the
end every record is delivered, each delivery is confirmed exactly once, the receiver acted once
per Idempotency-Key, and the exchange log is one unbroken chain written by all three nodes.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import psycopg
import pytest

from gateway.audit.chain import AuditEntry

from .support.chain import verify_chain
from .support.nodes import Cluster, send_records
from .support.receiver import Receiver
from .support.records import record
from .support.stores import DSN_ENV

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RECORDS = 5000


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute(sql).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
async def test_kill_nodes_while_records_flow(pg_dsn: str, tmp_path: Path, workers: int) -> None:
    """With two workers per node, a kill takes a node's parent and both its workers at once."""
    receiver = Receiver()
    receiver.start()
    cluster = Cluster.create(
        3,
        tmp_path,
        {"backend": "postgres", "dsn": {"env": DSN_ENV}},
        receiver.url,
        env={DSN_ENV: pg_dsn},
        lease_seconds=3.0,
        workers=workers,
    )
    rng = random.Random(6)
    kills = 0
    try:
        await asyncio.to_thread(cluster.start)
        bodies = [
            (f"POL-{i:05d}", record(case=f"C2026-{i % 300:04d}", extra=f"r{i}")) for i in range(RECORDS)
        ]
        sending = asyncio.create_task(send_records(cluster, bodies))
        deadline = time.monotonic() + 600  # a loaded machine restarts nodes slowly: the checks are of correctness

        def delivered() -> int:
            return _count(pg_dsn, "SELECT count(*) FROM deliveries WHERE state = 'delivered'")

        while not (sending.done() and await asyncio.to_thread(delivered) >= RECORDS):
            assert time.monotonic() < deadline, (
                f"not all delivered in time: {await asyncio.to_thread(delivered)}"
            )
            await asyncio.sleep(rng.uniform(4.0, 7.0))
            if sending.done() and sending.exception():
                raise sending.exception()  # type: ignore[misc]
            victim = rng.choice(cluster.nodes)
            if victim.alive() and len(cluster.live()) > 1:
                victim.kill()
                kills += 1
                await asyncio.sleep(0.5)
                victim.start()
        receipts = sending.result()
        for n in cluster.nodes:  # the last one restarted may still be starting
            await asyncio.to_thread(n.wait_ready)
        cluster.stop()  # graceful: leases given back, node-stopped logged

        ids = set(receipts.values())
        assert len(receipts) == RECORDS and len(ids) == RECORDS
        assert _count(pg_dsn, "SELECT count(*) FROM messages") == RECORDS, "a resend made a second message"
        assert _count(pg_dsn, "SELECT count(*) FROM deliveries") == RECORDS
        assert _count(pg_dsn, "SELECT count(*) FROM deliveries WHERE state <> 'delivered'") == 0
        assert _count(pg_dsn, "SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL") == 0
        # the final SIGTERM of each node is a graceful stop: logged, leases given back
        assert _count(pg_dsn, "SELECT count(DISTINCT node) FROM audit_log WHERE action = 'node-stopped'") == 3
        assert (
            _count(
                pg_dsn,
                "SELECT count(*) FROM (SELECT message_id FROM audit_log WHERE action = 'delivered' "
                "GROUP BY message_id HAVING count(*) <> 1) x",
            )
            == 0
        ), "a delivery confirmed twice"
        assert set(receiver.arrivals) == ids, "the receiver did not get exactly the accepted records"
        assert len(receiver.keys) == RECORDS  # one action per Idempotency-Key, retries recognised
        with psycopg.connect(pg_dsn) as c:
            rows = c.execute(
                "SELECT seq, time, node, actor, action, message_id, case_number, payload_hash, "
                "detail, prev_hash, entry_hash FROM audit_log ORDER BY seq"
            ).fetchall()
        entries = [AuditEntry(*r) for r in rows]
        verify_chain(entries)
        assert {e.node for e in entries} == {"node-1", "node-2", "node-3"}
        assert kills >= 3, "the test did not kill enough nodes to mean anything"
        print(
            f"\nchaos: {RECORDS} records, {workers} worker(s) per node, {kills} kills, "
            f"{sum(receiver.arrivals.values())} POSTs "
            f"({receiver.duplicate_arrivals} recognised retries), {len(entries)} log entries in one chain"
        )
    finally:
        for n in cluster.nodes:
            n.kill()
        receiver.stop()

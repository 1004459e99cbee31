"""Operator and auditor reads answer the same as a plain filter would, and never walk the history.

A page of the exchange log by time or agency, a page of dead letters, the queue counts: each must
be read along an index from one end (so its cost is the page's, not the store's). The plans are
checked on both backends (PostgreSQL with sequential scans priced out, as on a large table), and
the answers against a filter in Python over every entry.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.audit.chain import AuditEvent
from gateway.store.base import Store
from gateway.store.shared import iso_now
from gateway.store.sql import POSTGRES, SQLITE

from .test_store_contract import put

NOW = "2026-11-26T12:00:00.000000Z"


def reads(q: Any) -> dict[str, tuple[str, list[Any]]]:
    return {
        "queues": (q.queue_depths, []),
        "oldest dead": (q.oldest_in_state("dead"), ["PROC"]),
        "dead letters": q.list_deliveries("dead", None, None, 100),
        "dead letters of one destination, next page": q.list_deliveries("dead", "PROC", "d-1", 100),
        "waiting": q.list_deliveries("retrying", None, None, 100),
        "log since": q.audit_entries(None, None, None, NOW, None, 0, 100),
        "log between": q.audit_entries(None, None, None, NOW, NOW, 0, 100),
        "log by agency": q.audit_entries(None, None, "POLICE", None, None, 0, 100),
        "checkpoints": (q.checkpoint_page, [0, 100]),
    }


async def plan(store: Store, sql: str, args: list[Any]) -> str:
    if hasattr(store, "dsn"):
        import psycopg

        async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as c:
            await c.execute("SET enable_seqscan = off")
            cur = await c.execute(f"EXPLAIN {sql}".encode(), args)
            return " ".join(str(r[0]) for r in await cur.fetchall())
    import sqlite3

    with sqlite3.connect(store.path) as c:  # type: ignore[attr-defined]
        return " | ".join(str(r[-1]) for r in c.execute(f"EXPLAIN QUERY PLAN {sql}", args))


async def test_operator_reads_never_scan_a_whole_table(store: Store) -> None:
    await put(store)
    postgres = hasattr(store, "dsn")
    for name, (sql, args) in reads(POSTGRES if postgres else SQLITE).items():
        p = await plan(store, sql, args)
        if postgres:
            assert "Seq Scan on deliveries" not in p and "Seq Scan on audit_log" not in p, f"{name}: {p}"
        else:
            bad = [s for s in p.split(" | ") if s.split(" USING")[0] in ("SCAN deliveries", "SCAN audit_log",
                                                                         "SCAN messages", "SCAN checkpoints")]
            if name == "log by agency":  # walks the log in seq order, stopping at the page's limit
                bad = [b for b in bad if b != "SCAN audit_log"]
            assert not bad, f"{name}: {p}"
            assert "TEMP B-TREE" not in p, f"{name} sorts its whole match: {p}"
            if name == "log between":  # both ends of the range bound the walk, not a filter on each entry
                assert "(rowid>? AND rowid<?)" in p, p


async def test_log_pages_by_time_and_agency_equal_a_plain_filter(store: Store) -> None:
    times: list[str] = []
    for i in range(12):
        await put(store, f"C-{i}")
        await store.append_audit([AuditEvent("note", "COURT" if i % 3 else "operator:ann", f"m{i}", f"C-{i}", "",
                                             {"agency": "COURT"} if i % 4 == 0 else {})])
        times.append(iso_now())
        await asyncio.sleep(0.002)
    entries = await store.audit_entries(limit=10_000)
    since, until = times[3], times[8]
    got = await store.audit_entries(since=since, until=until, limit=10_000)
    assert [e.seq for e in got] == [e.seq for e in entries if since <= e.time < until] and got
    page = await store.audit_entries(since=since, after_seq=got[2].seq, limit=2)
    assert [e.seq for e in page] == [e.seq for e in entries if e.time >= since and e.seq > got[2].seq][:2]
    assert await store.audit_entries(since="2999-01-01T00:00:00.000000Z") == []
    assert [e.seq for e in await store.audit_entries(until="2000-01-01T00:00:00.000000Z")] == []
    court = await store.audit_entries(agency="COURT", limit=10_000)
    assert [e.seq for e in court] == [e.seq for e in entries if e.actor == "COURT" or '"COURT"' in e.detail]
    police = await store.audit_entries(agency="POLICE", limit=5)
    assert len(police) == 5 and all(e.message_id not in {f"m{i}" for i in range(12)} for e in police)


async def test_checkpoints_come_a_page_at_a_time(store: Store) -> None:
    for i in range(5):
        await store.add_checkpoint(i * 10 + 1, f"h{i}", NOW, "sig", "k")
    every = await store.checkpoints()
    first = await store.checkpoints(0, 2)
    rest = await store.checkpoints(first[-1].seq, 10)
    assert [c.seq for c in first + rest] == [c.seq for c in every] == [1, 11, 21, 31, 41]

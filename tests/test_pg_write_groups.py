"""The PostgreSQL writer sends a whole write group in one pipeline: an operation whose statement the
database refuses may only hear of it at another operation's read, or at the commit. The failure must
still go to that operation alone, and the others commit, on one unbroken chain."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from gateway.audit.chain import AuditEvent
from gateway.store.postgres import PostgresStore
from gateway.store.postgres.writer import Tx

pytestmark = pytest.mark.postgres


def _logs(name: str, *, read: bool = False) -> Any:
    async def op(tx: Tx) -> str:
        await tx.audit([AuditEvent("test", "tester", detail={"op": name})])
        if read:  # surfaces an error of any statement sent before it, whoever sent it
            await tx.one("SELECT 1")
        return name

    return op


async def _refused(tx: Tx) -> str:
    await tx.audit([AuditEvent("test", "tester", detail={"op": "refused"})])
    await tx.conn.execute("SELECT 1 / 0")  # its answer is never read by this operation
    return "refused"


@pytest.mark.parametrize("after", ["read", "commit"])
async def test_a_refused_statement_fails_its_own_operation_only(pg_dsn: str, after: str) -> None:
    store = PostgresStore(pg_dsn, node="node-a")
    await store.open()
    try:
        seq0, hash0 = await store.audit_head()
        futs = [store._write(_logs("a")), store._write(_refused),
                store._write(_logs("b", read=after == "read")), store._write(_logs("c"))]
        # a group that never answers must fail the test, not hang the run
        done = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), timeout=60)
        assert done[0] == "a" and done[2] == "b" and done[3] == "c"
        assert isinstance(done[1], psycopg.errors.DivisionByZero)
        entries = await store.audit_entries(after_seq=seq0, limit=10)
        assert [e.detail for e in entries] == ['{"op":"a"}', '{"op":"b"}', '{"op":"c"}']
        assert [e.prev_hash for e in entries] == [hash0, *(e.entry_hash for e in entries[:-1])]  # no gap, no fork
        assert await store.audit_head() == (entries[-1].seq, entries[-1].entry_hash)
    finally:
        await store.close()

"""SQLite: the exchange log and its signed checkpoints (the writer thread holds the head)."""

from __future__ import annotations

import sqlite3

from gateway.audit.chain import GENESIS, AuditEntry, AuditEvent
from gateway.store.rows import Checkpoint
from gateway.store.sql import SQLITE as Q
from gateway.store.sqlite.connection import SQLiteEngine


class SQLiteLog(SQLiteEngine):
    async def append_audit(self, events: list[AuditEvent]) -> list[AuditEntry]:
        return await self._write(lambda tx: tx.audit(events))

    async def seal_log(self, events: list[AuditEvent]) -> list[AuditEntry]:
        return await self._write(lambda tx: tx.audit(events, seal=True))

    async def audit_entries(
        self, *, case_number: str | None = None, message_id: str | None = None, agency: str | None = None,
        since: str | None = None, until: str | None = None, after_seq: int = 0, limit: int = 1000,
    ) -> list[AuditEntry]:
        sql, args = Q.audit_entries(case_number, message_id, agency, since, until, after_seq, limit)
        return await self._read(lambda c: [AuditEntry(*r) for r in c.execute(sql, args).fetchall()])

    async def last_conformance_run(self, agency: str) -> AuditEntry | None:
        row = await self._read(lambda c: c.execute(Q.last_conformance_run, (agency,)).fetchone())
        return AuditEntry(*row) if row else None

    async def audit_head(self) -> tuple[int, str]:
        def q(c: sqlite3.Connection) -> tuple[int, str]:
            row = c.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            return (row[0], row[1]) if row else (0, GENESIS)

        return await self._read(q)

    async def add_checkpoint(self, seq: int, entry_hash: str, signed_at: str, signature: str, key_id: str) -> None:
        await self._write(lambda tx: tx.conn.execute(
            "INSERT OR IGNORE INTO checkpoints VALUES (?,?,?,?,?)", (seq, entry_hash, signed_at, signature, key_id)))

    async def last_checkpoint(self) -> Checkpoint | None:
        def q(c: sqlite3.Connection) -> Checkpoint | None:
            row = c.execute(Q.last_checkpoint).fetchone()
            return Checkpoint.from_db(row) if row else None

        return await self._read(q)

    async def checkpoints(self, after_seq: int = 0, limit: int | None = None) -> list[Checkpoint]:
        sql, args = (Q.checkpoints, ()) if limit is None else (Q.checkpoint_page, (after_seq, limit))
        return await self._read(lambda c: [Checkpoint.from_db(r) for r in c.execute(sql, args).fetchall()])

"""PostgreSQL: the exchange log and its signed checkpoints (`audit_head` holds the chain's head)."""

from __future__ import annotations

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx
from gateway.store.rows import Checkpoint
from gateway.store.sql import POSTGRES as Q


class PostgresLog(PostgresEngine):
    async def append_audit(self, events: list[AuditEvent]) -> list[AuditEntry]:
        return await self._write(lambda tx: tx.audit(events))

    async def seal_log(self, events: list[AuditEvent]) -> list[AuditEntry]:
        return await self._write(lambda tx: tx.audit(events, seal=True))

    async def audit_entries(
        self, *, case_number: str | None = None, message_id: str | None = None, agency: str | None = None,
        since: str | None = None, until: str | None = None, after_seq: int = 0, limit: int = 1000,
    ) -> list[AuditEntry]:
        sql, args = Q.audit_entries(case_number, message_id, agency, since, until, after_seq, limit)
        return [AuditEntry(*r) for r in await self._rows(sql, args)]

    async def last_conformance_run(self, agency: str) -> AuditEntry | None:
        row = await self._row(Q.last_conformance_run, (agency,))
        return AuditEntry(*row) if row else None

    async def audit_head(self) -> tuple[int, str]:
        row = await self._row("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
        assert row is not None
        return int(row[0]), str(row[1])

    async def add_checkpoint(self, seq: int, entry_hash: str, signed_at: str, signature: str, key_id: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.conn.execute("INSERT INTO checkpoints VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                                  (seq, entry_hash, signed_at, signature, key_id))

        await self._write(op)

    async def last_checkpoint(self) -> Checkpoint | None:
        row = await self._row(Q.last_checkpoint)
        return Checkpoint.from_db(row) if row else None

    async def checkpoints(self, after_seq: int = 0, limit: int | None = None) -> list[Checkpoint]:
        sql, args = (Q.checkpoints, None) if limit is None else (Q.checkpoint_page, (after_seq, limit))
        return [Checkpoint.from_db(r) for r in await self._rows(sql, args)]

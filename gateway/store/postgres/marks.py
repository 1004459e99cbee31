"""PostgreSQL: the files pull adapters took in, so a file listed again is not taken in twice."""

from __future__ import annotations

from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx
from gateway.store.sql import POSTGRES as Q


class PostgresMarks(PostgresEngine):
    async def file_seen(self, channel: str, fingerprint: str) -> str | None:
        row = await self._row(Q.file_seen, (channel, fingerprint))
        return str(row[0]) if row else None

    async def mark_file(self, channel: str, fingerprint: str, message_id: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.conn.execute("INSERT INTO ingested_files VALUES (%s,%s,%s) ON CONFLICT DO NOTHING",
                                  (channel, fingerprint, message_id))

        await self._write(op)

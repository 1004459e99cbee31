"""SQLite: the files pull adapters took in, so a file listed again is not taken in twice."""

from __future__ import annotations

import sqlite3

from gateway.store.sql import SQLITE as Q
from gateway.store.sqlite.connection import SQLiteEngine


class SQLiteMarks(SQLiteEngine):
    async def file_seen(self, channel: str, fingerprint: str) -> str | None:
        def q(c: sqlite3.Connection) -> str | None:
            r = c.execute(Q.file_seen, (channel, fingerprint)).fetchone()
            return str(r[0]) if r else None

        return await self._read(q)

    async def mark_file(self, channel: str, fingerprint: str, message_id: str) -> None:
        await self._write(lambda tx: tx.conn.execute(
            "INSERT OR IGNORE INTO ingested_files VALUES (?,?,?)", (channel, fingerprint, message_id)))

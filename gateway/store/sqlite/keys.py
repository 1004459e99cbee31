"""SQLite: API keys, by the SHA-256 of the key."""

from __future__ import annotations

import sqlite3

from gateway.store.rows import ApiKeyRow
from gateway.store.sql import SQLITE as Q
from gateway.store.sqlite.connection import SQLiteEngine


class SQLiteKeys(SQLiteEngine):
    async def put_api_key(self, key_hash: str, role: str, name: str, agency: str | None) -> None:
        await self._write(lambda tx: tx.conn.execute(
            "INSERT OR REPLACE INTO api_keys VALUES (?,?,?,?)", (key_hash, role, name, agency)))

    async def find_api_key(self, key_hash: str) -> ApiKeyRow | None:
        def q(c: sqlite3.Connection) -> ApiKeyRow | None:
            r = c.execute(Q.find_api_key, (key_hash,)).fetchone()
            return ApiKeyRow.from_db(r) if r else None

        return await self._read(q)

"""PostgreSQL: cluster-wide named locks and one-time tokens.

Named locks are session advisory locks on a connection of their own: a node that dies frees
them at once. One-time tokens (WS-Security nonces) are rows any node sees; the first claim wins
until it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import psycopg
from psycopg import AsyncConnection

from gateway.store.postgres.connection import LOCK_KEY, PostgresEngine


class PostgresLocks(PostgresEngine):
    def __init__(self, dsn: str, node: str = "node-1", *, pool_size: int = 6, group_commit: bool = True) -> None:
        super().__init__(dsn, node, pool_size=pool_size, group_commit=group_commit)
        self._lock_conn: AsyncConnection[Any] | None = None
        self._lock_guard = asyncio.Lock()
        self._held: set[str] = set()
        self._claims = 0

    async def close(self) -> None:
        await super().close()
        if self._lock_conn is not None:
            with contextlib.suppress(Exception):
                await self._lock_conn.close()
            self._lock_conn = None
            self._held.clear()

    async def try_lock(self, name: str) -> bool:
        async with self._lock_guard:
            if name in self._held:
                return False
            if self._lock_conn is None or self._lock_conn.closed:
                self._lock_conn = await AsyncConnection.connect(self.dsn, autocommit=True)
                self._held.clear()  # a lost session lost its locks with it
            row = await (await self._lock_conn.execute(f"SELECT pg_try_advisory_lock({LOCK_KEY})", (name,))).fetchone()
            if row and row[0]:
                self._held.add(name)
                return True
            return False

    async def unlock(self, name: str) -> None:
        async with self._lock_guard:
            if name not in self._held or self._lock_conn is None:
                return
            self._held.discard(name)
            with contextlib.suppress(psycopg.Error):
                await self._lock_conn.execute(f"SELECT pg_advisory_unlock({LOCK_KEY})", (name,))

    async def claim_once(self, key: str, expires_at: float) -> bool:
        now = time.time()
        async with self._pooled() as conn:
            row = await (await conn.execute(
                "INSERT INTO claims VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at "
                "WHERE claims.expires_at < %s RETURNING key", (key, expires_at, now))).fetchone()
            self._claims += 1
            if self._claims % 1000 == 0:  # expired claims are only ever overwritten; clear them now and then
                await conn.execute("DELETE FROM claims WHERE expires_at < %s", (now,))
        return row is not None

"""PostgreSQL: API keys, by the SHA-256 of the key."""

from __future__ import annotations

from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx
from gateway.store.rows import ApiKeyRow
from gateway.store.sql import POSTGRES as Q


class PostgresKeys(PostgresEngine):
    async def put_api_key(self, key_hash: str, role: str, name: str, agency: str | None) -> None:
        async def op(tx: Tx) -> None:
            await tx.conn.execute(
                "INSERT INTO api_keys VALUES (%s,%s,%s,%s) ON CONFLICT (key_hash) DO UPDATE SET role = EXCLUDED.role, "
                "name = EXCLUDED.name, agency = EXCLUDED.agency", (key_hash, role, name, agency))

        await self._write(op)

    async def find_api_key(self, key_hash: str) -> ApiKeyRow | None:
        r = await self._row(Q.find_api_key, (key_hash,))
        return ApiKeyRow.from_db(r) if r else None

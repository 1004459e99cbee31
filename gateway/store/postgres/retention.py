"""PostgreSQL: retention. Payloads count the messages holding them; a batch frees those that reach 0."""

from __future__ import annotations

import json
import time
from typing import Any

from psycopg import AsyncConnection

from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx
from gateway.store.rows import Pruned
from gateway.store.shared import add_counts, held_payloads, pruned_event
from gateway.store.sql import POSTGRES as Q


async def _release(c: AsyncConnection[Any], sha256: str, dossier_file: bool, now: float) -> tuple[int, int, int]:
    """One message fewer holds this payload: (payloads removed, their bytes, dossier files now unused).

    A dossier file is a stored payload when SOAP brought it before the file store took them all."""
    row = await (await c.execute(Q.blob_refs, (sha256,))).fetchone()
    if row is not None:
        if row[0] > 1:
            await c.execute(Q.blob_unref, (sha256,))
            return 0, 0, 0
        await c.execute(Q.blob_delete, (sha256,))
        return 1, int(row[1]), 0
    if not dossier_file:
        return 0, 0, 0
    left = await (await c.execute(Q.file_unref, (now, sha256))).fetchone()
    return 0, 0, int(left is not None and left[0] <= 0)


class PostgresRetention(PostgresEngine):
    async def prune_payloads(
        self, finished_before: float, limit: int, after: tuple[float, str] | None, actor: str, policy: str
    ) -> Pruned:
        """Runs in a write group, behind the chain-head lock that intake and replay also take, so no
        new reference to a payload can appear between the check and the delete."""

        async def op(tx: Tx) -> Pruned:
            c = tx.conn
            rows = await (await c.execute(
                Q.prune_candidates, (finished_before, *(after or (float("-inf"), "")), limit))).fetchall()
            if not rows:
                return Pruned()
            unfinished = {r[0] for r in await (await c.execute(
                "SELECT DISTINCT message_id FROM deliveries WHERE message_id = ANY(%s) "
                "AND (state NOT IN ('delivered','discarded') OR updated_at >= %s)",
                ([r[0] for r in rows], finished_before),
            )).fetchall()}
            done = [r for r in rows if r[0] not in unfinished]
            last = (rows[-1][5], rows[-1][0]) if len(rows) == limit else None
            if not done:
                return Pruned(after=last)
            ids = [r[0] for r in done]
            bodies: dict[str, list[str]] = {}
            for mid, h in await (await c.execute(
                    "SELECT message_id, body_hash FROM deliveries WHERE message_id = ANY(%s)", (ids,))).fetchall():
                bodies.setdefault(mid, []).append(h)
            now = time.time()
            await c.execute("UPDATE messages SET payload_pruned_at = %s WHERE id = ANY(%s)", (now, ids))
            counts = (0, 0, 0)
            for mid, _case, content, canonical, summary, _at in done:
                held, files = held_payloads(content, canonical, bodies.get(mid, ()),
                                            json.loads(summary).get("attachments", ()))
                for h in (*held, *files):
                    counts = add_counts(counts, await _release(c, h, h in files, now))
            await tx.audit([pruned_event(actor, r[0], r[1], r[2], policy) for r in done])
            return Pruned(len(done), *counts, last)

        return await self._write(op)

    async def file_removals(self, limit: int) -> list[str]:
        return [r[0] for r in await self._rows(Q.file_removals, (limit,))]

    async def files_removed(self, hashes: list[str]) -> None:
        async def op(tx: Tx) -> None:
            await tx.conn.execute("DELETE FROM files WHERE sha256 = ANY(%s) AND refs <= 0", (hashes,))

        await self._write(op)

    async def known_files(self, hashes: list[str]) -> set[str]:
        return {r[0] for r in await self._rows("SELECT sha256 FROM files WHERE sha256 = ANY(%s)", (hashes,))}

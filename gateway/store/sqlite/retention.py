"""SQLite: retention. Payloads count the messages holding them; a batch frees those that reach 0."""

from __future__ import annotations

import json
import sqlite3
import time

from gateway.store.rows import Pruned
from gateway.store.shared import add_counts, held_payloads, pruned_event
from gateway.store.sql import SQLITE as Q
from gateway.store.sqlite.connection import SQLiteEngine
from gateway.store.sqlite.writer import Tx


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _release(c: sqlite3.Connection, sha256: str, dossier_file: bool, now: float) -> tuple[int, int, int]:
    """One message fewer holds this payload: (payloads removed, their bytes, dossier files now unused).

    A dossier file is a stored payload when SOAP brought it before the file store took them all."""
    row = c.execute(Q.blob_refs, (sha256,)).fetchone()
    if row is not None:
        if row[0] > 1:
            c.execute(Q.blob_unref, (sha256,))
            return 0, 0, 0
        c.execute(Q.blob_delete, (sha256,))
        return 1, int(row[1]), 0
    if not dossier_file:
        return 0, 0, 0
    left = c.execute(Q.file_unref, (now, sha256)).fetchone()
    return 0, 0, int(left is not None and left[0] <= 0)


class SQLiteRetention(SQLiteEngine):
    async def prune_payloads(
        self, finished_before: float, limit: int, after: tuple[float, str] | None, actor: str, policy: str
    ) -> Pruned:
        def op(tx: Tx) -> Pruned:
            c = tx.conn
            rows = c.execute(Q.prune_candidates, (finished_before, *(after or (float("-inf"), "")), limit)).fetchall()
            if not rows:
                return Pruned()
            unfinished = {r[0] for r in c.execute(
                f"SELECT DISTINCT message_id FROM deliveries WHERE message_id IN ({_marks(len(rows))}) "
                "AND (state NOT IN ('delivered','discarded') OR updated_at >= ?)",
                (*(r[0] for r in rows), finished_before))}
            done = [r for r in rows if r[0] not in unfinished]
            last = (rows[-1][5], rows[-1][0]) if len(rows) == limit else None
            if not done:
                return Pruned(after=last)
            ids = [r[0] for r in done]
            marks = _marks(len(ids))
            bodies: dict[str, list[str]] = {}
            for mid, h in c.execute(f"SELECT message_id, body_hash FROM deliveries WHERE message_id IN ({marks})",
                                    ids):
                bodies.setdefault(mid, []).append(h)
            now = time.time()
            c.execute(f"UPDATE messages SET payload_pruned_at=? WHERE id IN ({marks})", (now, *ids))
            counts = (0, 0, 0)
            for mid, _case, content, canonical, summary, _at in done:
                held, files = held_payloads(content, canonical, bodies.get(mid, ()),
                                            json.loads(summary).get("attachments", ()))
                for h in (*held, *files):
                    counts = add_counts(counts, _release(c, h, h in files, now))
            tx.audit([pruned_event(actor, r[0], r[1], r[2], policy) for r in done])
            return Pruned(len(done), *counts, last)

        return await self._write(op)

    async def file_removals(self, limit: int) -> list[str]:
        return await self._read(lambda c: [r[0] for r in c.execute(Q.file_removals, (limit,))])

    async def files_removed(self, hashes: list[str]) -> None:
        def op(tx: Tx) -> None:
            tx.conn.executemany("DELETE FROM files WHERE sha256=? AND refs <= 0", [(h,) for h in hashes])

        await self._write(op)

    async def known_files(self, hashes: list[str]) -> set[str]:
        def q(c: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for i in range(0, len(hashes), 500):  # under SQLite's bound-parameter limit
                part = hashes[i:i + 500]
                found.update(r[0] for r in c.execute(f"SELECT sha256 FROM files WHERE sha256 IN ({_marks(len(part))})",
                                                     part))
            return found

        return await self._read(q)

    async def reclaim_space(self) -> int:
        """Pages freed by pruning go back to the file system (databases created since migration 3
        use incremental auto-vacuum; older ones reuse the pages until `gateway db compact`)."""
        def op(tx: Tx) -> int:
            """Up to 4,096 pages (16 MB) per write, so intake waits no longer than a normal group."""
            c = tx.conn
            if c.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                return 0
            pages = min(4096, c.execute("PRAGMA freelist_count").fetchone()[0])
            for _ in range(pages):  # each step frees one page, and Python's sqlite3 runs one step per execute
                c.execute("PRAGMA incremental_vacuum(1)")
            return int(pages * c.execute("PRAGMA page_size").fetchone()[0])

        total = 0
        while step := await self._write(op):
            total += step
        return total

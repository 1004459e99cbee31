"""SQLite: named locks. One SQLite file serves one process, so a lock only has to exclude this
process's tasks; one-time tokens are admitted as `StoreBase.claim_once` says."""

from __future__ import annotations

from pathlib import Path

from gateway.store.sqlite.connection import SQLiteEngine


class SQLiteLocks(SQLiteEngine):
    def __init__(self, path: str | Path, node: str = "node-1", durability: str = "full") -> None:
        super().__init__(path, node, durability)
        self._locks: set[str] = set()

    async def try_lock(self, name: str) -> bool:
        if name in self._locks:
            return False
        self._locks.add(name)
        return True

    async def unlock(self, name: str) -> None:
        self._locks.discard(name)

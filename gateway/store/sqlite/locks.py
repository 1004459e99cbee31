"""SQLite: named locks. One SQLite file serves one node, which may run several worker processes:
a lock is an exclusive `flock` on a file beside the database, so it excludes the node's other
processes as well as this one's tasks, and a process that dies frees it at once. One-time tokens
are admitted as `StoreBase.claim_once` says."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from gateway.store.sqlite.connection import SQLiteEngine


class SQLiteLocks(SQLiteEngine):
    def __init__(self, path: str | Path, node: str = "node-1", durability: str = "full") -> None:
        super().__init__(path, node, durability)
        self._locks: dict[str, int] = {}  # name -> the open file holding its flock

    def _lock_file(self, name: str) -> Path:
        folder = Path(f"{self.path}.locks")
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder / hashlib.sha256(name.encode()).hexdigest()[:32]

    async def try_lock(self, name: str) -> bool:
        if name in self._locks:
            return False
        fd = os.open(self._lock_file(name), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._locks[name] = fd
        return True

    async def unlock(self, name: str) -> None:
        fd = self._locks.pop(name, None)
        if fd is not None:
            os.close(fd)  # closing the file releases its flock

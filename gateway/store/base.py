"""The durable store's contract, satisfied by SQLite (default) and PostgreSQL (scale-out).

The roles and `Store` live in `roles.py`, the values in `rows.py`; this module names them in one
place for callers, and holds what both backends do the same way without SQL (`StoreBase`). One
test suite runs against every implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from gateway.store.roles import SealerLike, StaleLease, Store
from gateway.store.rows import Finish, Lease, NewDelivery, NewMessage, Pruned

__all__ = ["Finish", "Lease", "NewDelivery", "NewMessage", "Pruned", "StaleLease", "Store", "StoreBase"]


class StoreBase(ABC):
    """Wake-ups, the `locked` context and the defaults a backend may keep."""

    node: str
    sealer: SealerLike | None = None  # set before open: the log then signs itself (gateway.audit.signing)
    worker: str = ""  # this process among the node's workers: leases are held (and given back) per process

    @property
    def lease_owner(self) -> str:
        """Who holds this process's leases: the node, and its worker when it runs several."""
        return f"{self.node}{self.worker}"

    def __init__(self) -> None:
        self._work = asyncio.Event()

    # -- wake-ups: the push path never waits for a poll interval ------------
    def notify_work(self) -> None:
        self._work.set()

    async def wait_for_work(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # no extra task per wait, unlike wait_for
                await self._work.wait()
        self._work.clear()

    # -- named locks ---------------------------------------------------------
    @abstractmethod
    async def try_lock(self, name: str) -> bool: ...

    @abstractmethod
    async def unlock(self, name: str) -> None: ...

    @contextlib.asynccontextmanager
    async def locked(self, name: str) -> AsyncIterator[bool]:
        """`async with store.locked("sftp:police-in") as mine:` run the body's work only if `mine`."""
        mine = await self.try_lock(name)
        try:
            yield mine
        finally:
            if mine:
                await self.unlock(name)

    # -- defaults --------------------------------------------------------------
    async def claim_once(self, key: str, expires_at: float) -> bool:
        """A SQLite file serves one process, whose callers keep their own memory of the one-time tokens
        they saw, so this version admits all; PostgreSQL's remembers them for every node."""
        return True

    async def reclaim_space(self) -> int:
        """PostgreSQL's autovacuum makes space freed by pruning reusable; SQLite gives it back itself."""
        return 0

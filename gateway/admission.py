"""How much one node takes in at once; a record pushed beyond that is refused as busy, to be resent.

Each record in progress holds its body and the trees the pipeline builds from it (several times
its size), so a burst of large records could exhaust a node's memory. Two bounds keep it in
check: records being pushed (counted from before their body is read, as reading it is the first
cost) and bytes of records in the pipeline. A pushed record over either is refused as busy (HTTP
503 with Retry-After, a SOAP Server fault) and nothing of it is stored. Pull adapters (SFTP,
folder) take one file at a time and pace themselves: they wait for room in bytes instead.

The bytes are counted once a record is read, never from what a request declares: a sender that
declares a large body and then sends nothing holds no bytes, only its one pushed-record slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar

from gateway.errors import Busy

RETRY_AFTER = 2  # seconds a refused sender is asked to wait

_HELD: ContextVar[bool] = ContextVar("admission_slot_held", default=False)


class Admission:
    """At most `records` pushed records and about `budget` bytes of records in progress at once.

    A record is let in while less than the budget is in progress, so one record of any size gets
    in (it never waits for a quiet moment that a steady flow of small records would not leave).
    """

    def __init__(self, records: int, budget: int, on_busy: Callable[[str], None] | None = None) -> None:
        self.records = records
        self.budget = budget
        self.on_busy = on_busy  # told the channel of each record refused as busy (metrics)
        self.in_progress = 0
        self.bytes_in_progress = 0
        self._freed = asyncio.Event()

    def _full(self, records: int, size: int) -> bool:
        """Over the records (for a new pushed record) or over the bytes, with something in progress."""
        over_bytes = self.bytes_in_progress >= self.budget  # the budget is at least 1 MB: something is in
        return bool(records and (self.in_progress >= self.records or over_bytes) or size and over_bytes)

    def _busy(self) -> Busy:
        return Busy(
            f"the gateway is taking in as much as it can at once ({self.in_progress} records, "
            f"{self.bytes_in_progress / 1048576:.1f} MB in progress); nothing was accepted, send the record "
            f"again in {RETRY_AFTER} seconds",
            message_zh=f"网关正在处理的记录已达上限，本记录未被接收，请在 {RETRY_AFTER} 秒后重新发送",
            retry_after=RETRY_AFTER,
        )

    @contextlib.contextmanager
    def _holding(self, records: int, size: int) -> Iterator[None]:
        self.in_progress += records
        self.bytes_in_progress += size
        token = _HELD.set(True)
        try:
            yield
        finally:
            _HELD.reset(token)
            self.in_progress -= records
            self.bytes_in_progress -= size
            self._freed.set()

    @staticmethod
    def held() -> bool:
        """True inside a slot: the record being handled was pushed, and is counted already."""
        return _HELD.get()

    @contextlib.contextmanager
    def slot(self, channel: str, size: int = 0) -> Iterator[None]:
        """Count a pushed record in, with its `size` bytes once known, while it is handled; or raise Busy.

        A push adapter takes one before reading the body (size 0): refused then if the records or the
        bytes are full, nothing is read. The pipeline adds the bytes inside it, without counting the
        record twice.
        """
        records = 0 if _HELD.get() else 1
        if self._full(records, size):
            if self.on_busy is not None:
                self.on_busy(channel)
            raise self._busy()
        with self._holding(records, size):
            yield

    @contextlib.asynccontextmanager
    async def room_for(self, size: int) -> AsyncIterator[None]:
        """Count a pulled record's bytes in as soon as there is room (pull adapters pace themselves)."""
        while self._full(0, size):
            self._freed.clear()
            await self._freed.wait()
        with self._holding(0, size):
            yield

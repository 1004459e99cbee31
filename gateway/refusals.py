"""Refused requests, logged once per source, principal and reason per interval, with a count.

Every refusal belongs in the exchange log, but a load generator with a wrong key makes thousands
a second, and the append-only log can never give that space back. So the first refusal of each
(kind, source, principal, rule) in an interval is logged at once; repeats within the interval are
counted and logged as one `refusals-repeated` entry with the count when the interval ends (and
when the node stops). A node killed with kill -9 loses at most the counts of one interval, never
the first entry of a kind.

Sources that keep failing to authenticate are also slowed down: after `limit` failures in the
interval, a source is answered 429 with Retry-After until the interval ends, without a store read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.chain import AuditEvent

log = logging.getLogger("gateway.refusals")

Append = Callable[[list[AuditEvent]], Awaitable[Any]]


@dataclass
class _Tally:
    action: str
    actor: str
    detail: dict[str, Any]
    first: float
    repeats: int = 0


@dataclass
class _Failures:
    since: float
    count: int = 0


@dataclass
class Refusals:
    append: Append
    interval: float = 60.0
    limit: int = 20  # authentication failures per source and interval before 429
    clock: Callable[[], float] = time.monotonic
    _tallies: dict[tuple[str, str, str, str], _Tally] = field(default_factory=dict)
    _failures: dict[str, _Failures] = field(default_factory=dict)
    _flushing: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refused(self, action: str, actor: str, source: str, rule: str, detail: dict[str, Any]) -> None:
        """Log one refusal (`detail` should say why and where), or count it if its kind was logged lately."""
        await self._expire()
        key = (action, source, actor, rule)
        tally = self._tallies.get(key)
        if tally is not None:
            tally.repeats += 1
            return
        self._tallies[key] = _Tally(action, actor, {**detail, "source": source, "rule": rule}, self.clock())
        await self.append([AuditEvent(action, actor, detail={**detail, "source": source, "rule": rule})])

    def failed_authentication(self, source: str) -> None:
        now = self.clock()
        if len(self._failures) > 10_000:  # many sources: forget those whose interval has ended
            self._failures = {k: f for k, f in self._failures.items() if now - f.since < self.interval}
        f = self._failures.get(source)
        if f is None or now - f.since >= self.interval:
            f = self._failures[source] = _Failures(now)
        f.count += 1

    def retry_after(self, source: str) -> float | None:
        """Seconds `source` must wait before it is heard again, or None while it is within the limit."""
        f = self._failures.get(source)
        if f is None:
            return None
        left = self.interval - (self.clock() - f.since)
        if left <= 0:
            del self._failures[source]
            return None
        return left if f.count >= self.limit else None

    async def _expire(self) -> None:
        """Log the repeats of every tally whose interval has ended."""
        now = self.clock()
        if not any(now - t.first >= self.interval for t in self._tallies.values()):
            return
        await self.flush(lambda t: now - t.first >= self.interval)

    async def flush(self, which: Callable[[_Tally], bool] = lambda t: True) -> None:
        async with self._flushing:
            done = [k for k, t in self._tallies.items() if which(t)]
            events = []
            for k in done:
                t = self._tallies.pop(k)
                if t.repeats:
                    events.append(AuditEvent("refusals-repeated", t.actor, detail={
                        **t.detail, "refused_as": t.action, "repeats": t.repeats,
                        "within_seconds": round(self.clock() - t.first, 1)}))
            if events:
                await self.append(events)

    async def run(self) -> None:
        """Log ended intervals' counts even when no further refusal comes to trigger it."""
        while True:
            await asyncio.sleep(min(self.interval, 5.0))
            with contextlib.suppress(Exception):
                await self._expire()

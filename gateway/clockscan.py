"""The clock scanner: finds clocks due a warning and issues each warning once.

Every node runs one; they may scan the same clocks at once. A warning is issued by one store
write that claims (clock, kind), queues the notices to the responsible agency and its supervisors
through their own outbound channels, and appends the exchange-log entry; a second claim of the
same warning, by this node after a restart or by another node, finds the claim and does nothing.
Time comes from one injectable `Clock`, so tests and the demo never sleep through a period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge

from gateway.audit.chain import AuditEvent
from gateway.clockkeeper import ClockKeeper, ClockRow, Update
from gateway.clocknotice import RULES, warning_notice, warning_text
from gateway.clocktime import Clock
from gateway.mapping import MappingPack
from gateway.model import new_id

log = logging.getLogger("gateway.clocks")


class ClockStore(Protocol):
    async def clocks_due(self, now: float, limit: int) -> list[ClockRow]: ...

    async def issue_clock_warning(self, clock: ClockRow, kind: str, next_warn_at: float | None,
                                  notices: list[tuple[str, bytes, str]], event: AuditEvent) -> bool: ...

    async def clock_counts(self, now: float) -> list[tuple[str, str, int, int]]: ...

    async def arm_clocks(self, updates: list[Update], events: list[AuditEvent]) -> None: ...


@dataclass(frozen=True)
class Issued:
    clock_id: str
    kind: str
    recipients: tuple[str, ...]


class Scanner:
    def __init__(self, store: ClockStore, keeper: ClockKeeper, clock: Clock,
                 pack_of: Callable[[str], MappingPack], node: str, registry: CollectorRegistry | None = None) -> None:
        self.store = store
        self.keeper = keeper
        self.clock = clock
        self.pack_of = pack_of
        self.node = node
        self.settings = keeper.setup.settings
        self.gauge = Gauge("gateway_clocks", "running statutory time-limit clocks past their warning point, by "
                           "responsible agency, limit and state (approaching, overdue)",
                           ["agency", "limit", "state"], registry=registry) if registry is not None else None
        self._seen: set[tuple[str, str]] = set()

    def _notices(self, c: ClockRow, kind: str, now: float) -> tuple[list[tuple[str, bytes, str]], tuple[str, ...]]:
        recipients = (c.agency, *self.keeper.setup.supervisors(c.limit_id, c.agency))
        out = []
        for dest in recipients:
            body = self.pack_of(dest).from_standard(warning_notice(c, kind, dest, self.keeper.limits, now))
            out.append((dest, body, f"time-limit-{kind}-{c.id}.xml"))
        return out, recipients

    async def scan_once(self) -> list[Issued]:
        """Issue every warning due now (up to the batch size); what this node issued."""
        now = self.clock.now()
        pending = []
        due = await self.store.clocks_due(now, self.settings.batch)
        if unarmed := [c for c in due if c.due_at is None]:  # delivered another day: count from that day
            await self.store.arm_clocks(*self.keeper.armed(unarmed))
            due = await self.store.clocks_due(now, self.settings.batch)
        for c in due:
            if c.due_at is None:
                continue
            overdue = now >= c.due_at  # past the end, the approaching warning is moot: only this one goes
            kind = "overdue" if overdue else "approaching"
            notices, recipients = self._notices(c, kind, now)
            zh, en = warning_text(c, kind, self.keeper.limits, now)
            # the warning is a message of its own (its id, this entry's), sent to each recipient
            event = AuditEvent(f"clock-{kind}", self.node, new_id(), c.case_number, "", {
                "clock": c.id, "limit": c.terms, "agency": c.agency, "rule": RULES[kind], "last_day": c.last_day,
                "starting_message": c.message_id, "notified": list(recipients), "message_zh": zh,
                "message_en": en})
            pending.append((Issued(c.id, kind, recipients),
                            self.store.issue_clock_warning(c, kind, None if overdue else c.due_at, notices, event)))
        # all at once: the store's writer commits them in one group, not one transaction each
        done = await asyncio.gather(*(claim for _, claim in pending))
        await self._gauges(now)
        return [i for (i, _), ok in zip(pending, done, strict=True) if ok]

    async def _gauges(self, now: float) -> None:
        if self.gauge is None:
            return
        rows = await self.store.clock_counts(now)
        seen = set()
        for agency, limit, overdue, approaching in rows:
            for state, n in (("overdue", overdue), ("approaching", approaching)):
                self.gauge.labels(agency, limit, state).set(n)
                seen.add((agency, limit))
        for agency, limit in self._seen - seen:  # none left: say so rather than keep the last count
            for state in ("overdue", "approaching"):
                self.gauge.labels(agency, limit, state).set(0)
        self._seen = seen

    async def run(self, interval: float) -> None:
        while True:
            try:
                for i in await self.scan_once():
                    log.info("time-limit %s warning for clock %s sent to %s", i.kind, i.clock_id,
                             ", ".join(i.recipients))
            except Exception:  # the store is down, a pack failed: the next scan tries again
                log.exception("scanning the time-limit clocks failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)

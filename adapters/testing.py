"""Adapter contexts with in-memory parts, for testing an adapter without a gateway (as httpx has
MockTransport): locks of one process, drop marks in a dict, the exchange log as a list."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from adapters.base import InboundContext, Intake, Limits, OutboundContext
from gateway.admission import Admission
from gateway.audit.chain import AuditEvent
from gateway.files import FileStore
from gateway.model import InboundRecord, Receipt, SentRecord
from gateway.refusals import Refusals


class MemoryDropMarks:
    def __init__(self) -> None:
        self.marks: dict[str, str] = {}
        self.outcomes: dict[str, tuple[bool, tuple[str, ...]]] = {}

    async def seen(self, fingerprint: str) -> str | None:
        return self.marks.get(fingerprint)

    async def mark(self, fingerprint: str, message_id: str) -> None:
        self.marks[fingerprint] = message_id

    async def outcome(self, message_id: str) -> tuple[bool, tuple[str, ...]] | None:
        return self.outcomes.get(message_id)


class MemoryLocks:
    def __init__(self) -> None:
        self.held: set[str] = set()

    @contextlib.asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[bool]:
        mine = name not in self.held
        self.held.add(name)
        try:
            yield mine
        finally:
            if mine:
                self.held.discard(name)


async def _no_intake(record: InboundRecord) -> Receipt:
    raise AssertionError("this test context has no intake")


async def _no_records(agency: str, after: int, limit: int, *, only_rejected: bool) -> tuple[list[SentRecord], int]:
    return [], after


def outbound_context(data_dir: str | Path, *, channel: str = "test-out", agency: str = "TEST") -> OutboundContext:
    data = Path(data_dir)
    return OutboundContext(channel, agency, FileStore.for_data_dir(data), data / "outbox" / channel)


def inbound_context(
    data_dir: str | Path, *, channel: str = "test-in", agency: str = "TEST", intake: Intake = _no_intake,
    max_message_bytes: int = 16 * 1024 * 1024, agency_key: str | None = None,
    audit_log: list[AuditEvent] | None = None, drops: MemoryDropMarks | None = None,
) -> InboundContext:
    log = audit_log if audit_log is not None else []
    claimed: set[str] = set()

    async def audit(event: AuditEvent) -> None:
        log.append(event)

    async def claim_once(key: str, expires_at: float) -> bool:
        await asyncio.sleep(0)
        if key in claimed:
            return False
        claimed.add(key)
        return True

    async def append(events: list[AuditEvent]) -> None:
        log.extend(events)

    return InboundContext(
        channel=channel, agency=agency, node="test-node", files=FileStore.for_data_dir(Path(data_dir)),
        limits=Limits(max_message_bytes), admission=Admission(64, 1 << 30), intake=intake, audit=audit,
        refusals=Refusals(append),
        lock=MemoryLocks().lock,
        drops=drops or MemoryDropMarks(), claim_once=claim_once, sent_records=_no_records, agency_key=agency_key,
    )

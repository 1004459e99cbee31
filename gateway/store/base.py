"""The durable store's contract, satisfied by SQLite (default) and PostgreSQL (scale-out).

One test suite runs against every implementation. Everything a state change touches
(message, deliveries, attempts, exchange-log entries) is written in one transaction, so a crash
at any point leaves either all of it or none of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.model import Attachment, DeliveryState, MessageStatus, Receipt


@dataclass(frozen=True)
class NewDelivery:
    destination: str
    body_hash: str  # the record as the destination will receive it (after outbound mapping)
    content_type: str = "application/xml"
    reason: str = "queued for delivery"
    file_name: str | None = None


@dataclass(frozen=True)
class NewMessage:
    message_id: str
    sender: str
    channel: str
    sender_message_id: str | None
    content_hash: str  # SHA-256 of the raw bytes as received
    canonical_hash: str  # SHA-256 of the record in the shared standard ("" when it never got there)
    case_number: str
    stage: str
    action: str
    status: MessageStatus
    reasons: tuple[str, ...]
    received_at: float
    file_name: str | None = None
    operation: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lease:
    """A delivery taken by one node for one attempt, until `expires_at`."""

    delivery_id: str
    message_id: str
    destination: str
    case_number: str
    body_hash: str
    content_type: str
    attempt: int
    created_at: float
    token: str
    file_name: str | None = None
    body: bytes | None = None  # the payload, when the store fetched it with the lease (saves a read)
    attachments: tuple[Attachment, ...] | None = None  # the dossier files, when fetched with the lease


@dataclass(frozen=True)
class Finish:
    """How an attempt ended and what the delivery becomes."""

    state: DeliveryState  # DELIVERED, RETRYING or DEAD
    detail: str
    next_attempt_at: float = 0.0
    receipt: bytes = b""
    started_at: float = 0.0


@dataclass(frozen=True)
class Pruned:
    """What one retention batch removed, and where the next batch goes on."""

    messages: int = 0  # messages whose payloads were dropped
    blobs: int = 0  # payloads removed from the database (others are still needed elsewhere)
    blob_bytes: int = 0
    files: int = 0  # dossier files no message needs any more, now listed for removal from disk
    after: tuple[float, str] | None = None  # (received_at, id) of the last message looked at; None: done


class StaleLease(Exception):
    """The lease expired and another worker took the delivery: this worker's result is dropped."""


class Store(ABC):
    """Durable state of the gateway. All methods are coroutines; implementations own threads."""

    node: str

    def __init__(self) -> None:
        self._work = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------
    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    # -- schema (usable before open: `gateway db status/upgrade`) -------------
    @abstractmethod
    async def schema_version(self) -> int:
        """The schema version recorded in the database; 0 when it has no tables yet."""

    @abstractmethod
    async def upgrade(self) -> list[int]:
        """Apply every pending migration in order; returns the versions applied."""

    # -- cluster-wide named locks (one SFTP poller at a time) ------------------
    @abstractmethod
    async def try_lock(self, name: str) -> bool:
        """Take the named lock for this node unless another holder has it; never waits."""

    @abstractmethod
    async def unlock(self, name: str) -> None:
        """Give back a lock taken with try_lock (a crashed holder's lock is freed by the database)."""

    @contextlib.asynccontextmanager
    async def locked(self, name: str) -> AsyncIterator[bool]:
        """`async with store.locked("sftp:police-in") as mine:` run the body's work only if `mine`."""
        mine = await self.try_lock(name)
        try:
            yield mine
        finally:
            if mine:
                await self.unlock(name)

    async def claim_once(self, key: str, expires_at: float) -> bool:
        """True the first time `key` is claimed before `expires_at`, False while an earlier claim lives:
        one-time tokens (WS-Security nonces) seen by any node of the cluster. A SQLite file serves one
        process, whose callers keep their own memory of what they saw, so this base version admits all."""
        return True

    # -- wake-ups: the push path never waits for a poll interval ------------
    def notify_work(self) -> None:
        self._work.set()

    async def wait_for_work(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # no extra task per wait, unlike wait_for
                await self._work.wait()
        self._work.clear()

    # -- payloads, content-addressed ----------------------------------------
    @abstractmethod
    async def put_blob(self, data: bytes) -> str: ...

    @abstractmethod
    async def get_blob(self, sha256: str) -> bytes | None: ...

    # -- intake -------------------------------------------------------------
    @abstractmethod
    async def find_receipt(self, sender: str, sender_message_id: str | None, content_hash: str) -> Receipt | None:
        """The receipt of an earlier record with the same message id or content from this sender."""

    @abstractmethod
    async def record_message(
        self, message: NewMessage, raw: bytes, blobs: dict[str, bytes], deliveries: list[NewDelivery],
        events: list[AuditEvent],
    ) -> Receipt:
        """Store a message with its deliveries and log entries at once; a duplicate gets the original receipt."""

    # -- delivery -----------------------------------------------------------
    @abstractmethod
    async def lease(self, destination: str, limit: int, lease_seconds: float) -> list[Lease]:
        """Take up to `limit` due deliveries for one destination, oldest first, at most one per case."""

    @abstractmethod
    async def finish(self, lease: Lease, result: Finish) -> None:
        """Record an attempt's end; raise StaleLease if the lease was lost meanwhile."""

    @abstractmethod
    async def release_leases(self) -> int:
        """Give back every lease this node holds (graceful shutdown)."""

    @abstractmethod
    async def next_due(self) -> float | None:
        """Earliest time a waiting delivery becomes due (retry or expired lease), or None."""

    # -- operators ----------------------------------------------------------
    @abstractmethod
    async def get_message(self, message_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def get_deliveries(self, message_id: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def get_delivery(self, delivery_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def get_attempts(self, delivery_id: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def queue_depths(self) -> list[dict[str, Any]]:
        """Count of deliveries per destination and state, with the oldest waiting one."""

    @abstractmethod
    async def list_deliveries(
        self, *, state: str | None = None, destination: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A page of deliveries (keyset paging by id), never the whole table."""

    @abstractmethod
    async def enqueue_replay(self, delivery_id: str, body_hash: str, actor: str, reason: str,
                             expect_state: str | None = None) -> str:
        """Queue a new delivery of an existing message to the same destination; logs who did it.

        With `expect_state`, only while the delivery is still in that state (checked inside the
        write), so two operators replaying the same dead letter cannot deliver it twice."""

    @abstractmethod
    async def discard(self, delivery_id: str, actor: str, reason: str) -> None:
        """Mark a dead delivery as given up by an operator; logs who did it."""

    # -- exchange log ---------------------------------------------------------
    @abstractmethod
    async def append_audit(self, events: list[AuditEvent]) -> list[AuditEntry]: ...

    @abstractmethod
    async def audit_entries(
        self, *, case_number: str | None = None, message_id: str | None = None, agency: str | None = None,
        since: str | None = None, until: str | None = None, after_seq: int = 0, limit: int = 1000,
    ) -> list[AuditEntry]: ...

    @abstractmethod
    async def audit_head(self) -> tuple[int, str]:
        """(seq, entry_hash) of the newest entry; (0, GENESIS) when empty."""

    @abstractmethod
    async def add_checkpoint(self, seq: int, entry_hash: str, signed_at: str, signature: str, key_id: str) -> None: ...

    @abstractmethod
    async def checkpoints(self) -> list[dict[str, Any]]: ...

    # -- retention ----------------------------------------------------------------
    @abstractmethod
    async def prune_payloads(
        self, finished_before: float, limit: int, after: tuple[float, str] | None, actor: str, policy: str
    ) -> Pruned:
        """Drop the payloads of up to `limit` finished messages received and finished before the cutoff.

        Finished: every delivery delivered or discarded (a message with a waiting, in-flight or
        dead delivery is never touched). Looks at messages after `after` in (received_at, id)
        order. A payload another message still references stays. Each pruned message gets a
        `payload-pruned` log entry; its rows and the log itself stay.
        """

    @abstractmethod
    async def file_removals(self, limit: int) -> list[str]:
        """Dossier files no message holds any more, longest unused first (a new message holding
        one again takes it off this list)."""

    @abstractmethod
    async def files_removed(self, hashes: list[str]) -> None:
        """Strike files off the removal list once they are gone from disk."""

    @abstractmethod
    async def known_files(self, hashes: list[str]) -> set[str]:
        """Those of `hashes` that some message took in (held now or waiting for removal); a file on
        disk that is not among them was stored by an upload whose record never arrived."""

    async def reclaim_space(self) -> int:
        """Give the space freed by pruning back to the operating system where the backend can do it
        online; returns the bytes given back. PostgreSQL's autovacuum makes freed space reusable."""
        return 0

    # -- API keys ---------------------------------------------------------------
    @abstractmethod
    async def put_api_key(self, key_hash: str, role: str, name: str, agency: str | None) -> None: ...

    @abstractmethod
    async def find_api_key(self, key_hash: str) -> dict[str, Any] | None: ...

    # -- ingested files (pull adapters' idempotency) ------------------------------
    @abstractmethod
    async def file_seen(self, channel: str, fingerprint: str) -> str | None:
        """The message id already made from a file with this fingerprint, if any."""

    @abstractmethod
    async def mark_file(self, channel: str, fingerprint: str, message_id: str) -> None: ...

"""The store's contract, one small protocol per role; `Store` is all of them.

A part of the gateway names the role it needs (the pipeline an `Intake`, the dispatcher a
`DeliveryQueue`, retention `Retention`), so what it may do to the durable state shows in its
signature, and a test double only has to be what that role says. The runtime builds a whole
`Store` (SQLite or PostgreSQL) and hands each part its slice.

Everything one state change touches (message, deliveries, attempts, exchange-log entries) is
written in one transaction, so a crash at any point leaves either all of it or none of it.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.clockkeeper import ClockKeeper, ClockRow, Update
from gateway.model import Receipt
from gateway.store.rows import (
    ApiKeyRow,
    AttemptRow,
    CaseEntryRow,
    Checkpoint,
    DeliveryRow,
    Finish,
    Lease,
    MessageRow,
    NewDelivery,
    NewMessage,
    Pruned,
    QueueDepth,
)


class StaleLease(Exception):
    """The lease expired and another worker took the delivery: this worker's result is dropped."""


class Schema(Protocol):
    """Lifecycle; the schema calls work before open (`gateway db status/upgrade`)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def schema_version(self) -> int:
        """The schema version recorded in the database; 0 when it has no tables yet."""
        ...

    async def upgrade(self) -> list[int]:
        """Apply every pending migration in order; returns the versions applied."""
        ...


class Payloads(Protocol):
    """Payloads, content-addressed by their SHA-256."""

    async def put_blob(self, data: bytes) -> str: ...

    async def get_blob(self, sha256: str) -> bytes | None: ...


class Intake(Protocol):
    async def find_receipt(self, sender: str, sender_message_id: str | None, content_hash: str) -> Receipt | None:
        """The receipt of an earlier record with the same message id or content from this sender."""
        ...

    async def record_message(
        self, message: NewMessage, raw: bytes, blobs: dict[str, bytes], deliveries: list[NewDelivery],
        events: list[AuditEvent],
    ) -> Receipt:
        """Store a message with its deliveries and log entries at once; a duplicate gets the original receipt."""
        ...


class DeliveryQueue(Protocol):
    """Leases one delivery per (destination, case) at a time, in the order they were queued."""

    async def lease(self, destination: str, limit: int, lease_seconds: float) -> list[Lease]:
        """Take up to `limit` due deliveries for one destination, oldest first, at most one per case."""
        ...

    async def finish(self, lease: Lease, result: Finish) -> None:
        """Record an attempt's end; raise StaleLease if the lease was lost meanwhile."""
        ...

    async def release_leases(self) -> int:
        """Give back every lease this node holds (graceful shutdown)."""
        ...

    async def next_due(self) -> float | None:
        """Earliest time a waiting delivery becomes due (retry or expired lease), or None."""
        ...

    def notify_work(self) -> None:
        """Wake the dispatcher now: the push path never waits for a poll interval."""
        ...

    async def wait_for_work(self, timeout: float | None) -> None: ...


class Operations(Protocol):
    """What operators look at and act on."""

    async def get_message(self, message_id: str) -> MessageRow | None: ...

    async def get_deliveries(self, message_id: str) -> list[DeliveryRow]: ...

    async def get_delivery(self, delivery_id: str) -> DeliveryRow | None: ...

    async def get_attempts(self, delivery_id: str) -> list[AttemptRow]: ...

    async def queue_depths(self) -> list[QueueDepth]:
        """Count of deliveries per destination and state, with the oldest waiting one."""
        ...

    async def list_deliveries(
        self, *, state: str | None = None, destination: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[DeliveryRow]:
        """A page of deliveries (keyset paging by id), never the whole table."""
        ...

    async def enqueue_replay(self, delivery_id: str, body_hash: str, actor: str, reason: str,
                             expect_state: str | None = None) -> str:
        """Queue a new delivery of an existing message to the same destination; logs who did it.

        With `expect_state`, only while the delivery is still in that state (checked inside the
        write), so two operators replaying the same dead letter cannot deliver it twice."""
        ...

    async def discard(self, delivery_id: str, actor: str, reason: str) -> None:
        """Mark a dead delivery as given up by an operator; logs who did it."""
        ...


class SealerLike(Protocol):
    """Signs the head as a checkpoint entry (gateway.audit.signing.Sealer)."""

    every: int

    def event(self, seq: int, entry_hash: str) -> AuditEvent: ...


class ExchangeLog(Protocol):
    """The hash-chained log: one chain however many nodes append, and its signed checkpoints."""

    async def append_audit(self, events: list[AuditEvent]) -> list[AuditEntry]: ...

    async def seal_log(self, events: list[AuditEvent]) -> list[AuditEntry]:
        """Append events, then (with a sealer set) a checkpoint entry over the head in the same transaction."""
        ...

    async def audit_entries(
        self, *, case_number: str | None = None, message_id: str | None = None, agency: str | None = None,
        since: str | None = None, until: str | None = None, after_seq: int = 0, limit: int = 1000,
    ) -> list[AuditEntry]: ...

    async def audit_head(self) -> tuple[int, str]:
        """(seq, entry_hash) of the newest entry; (0, GENESIS) when empty."""
        ...

    async def last_conformance_run(self, agency: str) -> AuditEntry | None:
        """The agency's newest `conformance-run` entry (its own), through an index of those entries only."""
        ...

    async def add_checkpoint(self, seq: int, entry_hash: str, signed_at: str, signature: str, key_id: str) -> None: ...

    async def checkpoints(self, after_seq: int = 0, limit: int | None = None) -> list[Checkpoint]:
        """Oldest first; with `limit`, a page of at most that many after `after_seq`."""
        ...

    async def last_checkpoint(self) -> Checkpoint | None: ...


class Retention(Protocol):
    async def prune_payloads(
        self, finished_before: float, limit: int, after: tuple[float, str] | None, actor: str, policy: str
    ) -> Pruned:
        """Drop the payloads of up to `limit` finished messages received and finished before the cutoff.

        Finished: every delivery delivered or discarded (a message with a waiting, in-flight or
        dead delivery is never touched). Looks at messages after `after` in (received_at, id)
        order. A payload another message still references stays. Each pruned message gets a
        `payload-pruned` log entry; its rows and the log itself stay.
        """
        ...

    async def file_removals(self, limit: int) -> list[str]:
        """Dossier files no message holds any more, longest unused first (a new message holding
        one again takes it off this list)."""
        ...

    async def files_removed(self, hashes: list[str]) -> None:
        """Strike files off the removal list once they are gone from disk."""
        ...

    async def known_files(self, hashes: list[str]) -> set[str]:
        """Those of `hashes` that some message took in (held now or waiting for removal); a file on
        disk that is not among them was stored by an upload whose record never arrived."""
        ...

    async def reclaim_space(self) -> int:
        """Give the space freed by pruning back to the operating system where the backend can do it
        online; returns the bytes given back."""
        ...


class Keys(Protocol):
    """API keys, by the SHA-256 of the key."""

    async def put_api_key(self, key_hash: str, role: str, name: str, agency: str | None) -> None: ...

    async def find_api_key(self, key_hash: str) -> ApiKeyRow | None: ...


class Locks(Protocol):
    """Cluster-wide named locks (one poller of a drop folder at a time, one retention run)."""

    async def try_lock(self, name: str) -> bool:
        """Take the named lock for this node unless another holder has it; never waits."""
        ...

    async def unlock(self, name: str) -> None:
        """Give back a lock taken with try_lock (a crashed holder's lock is freed by the database)."""
        ...

    def locked(self, name: str) -> AbstractAsyncContextManager[bool]:
        """`async with store.locked("sftp:police-in") as mine:` run the body's work only if `mine`."""
        ...


class Nonces(Protocol):
    async def claim_once(self, key: str, expires_at: float) -> bool:
        """True the first time `key` is claimed before `expires_at`, False while an earlier claim lives:
        one-time tokens (WS-Security nonces) seen by any node of the cluster."""
        ...


class DropMarks(Protocol):
    """Files pull adapters took in, so a file listed again is not taken in twice."""

    async def file_seen(self, channel: str, fingerprint: str) -> str | None:
        """The message id already made from a file with this fingerprint, if any."""
        ...

    async def mark_file(self, channel: str, fingerprint: str, message_id: str) -> None: ...


class CaseTimeline(Protocol):
    """Each case's records in order, kept as they are stored and delivered (never rebuilt per read)."""

    async def case_timeline(self, case_number: str) -> list[CaseEntryRow]:
        """The records of one case, oldest first; empty for a case the gateway never saw."""
        ...


class Clocks(Protocol):
    """Statutory time-limit clocks: kept by intake and delivery writes with `clock_keeper` (None: no
    clocks), warned by the scanner, read by the API."""

    clock_keeper: ClockKeeper | None

    async def clocks_due(self, now: float, limit: int) -> list[ClockRow]:
        """Running clocks whose next warning is due at `now`, the most overdue first (and those delivered
        on another day than they came in, whose last day is to be counted again: due_at None)."""
        ...

    async def arm_clocks(self, updates: list[Update], events: list[AuditEvent]) -> None:
        """Set the last days counted again (and log a date the calendar could not place)."""
        ...

    async def issue_clock_warning(self, clock: ClockRow, kind: str, next_warn_at: float | None,
                                  notices: list[tuple[str, bytes, str]], event: AuditEvent) -> bool:
        """Claim the warning (clock, kind) and queue its notices and log entry in one write; False if
        it was claimed before (by any node) or the clock stopped."""
        ...

    async def list_clocks(self, *, state: str | None = None, agency: str | None = None, case: str | None = None,
                          now: float, after: str | None = None, limit: int = 100) -> list[ClockRow]: ...

    async def clock_counts(self, now: float) -> list[tuple[str, str, int, int]]:
        """(agency, limit, overdue, approaching) counts of the running clocks."""
        ...

    async def clock_figures(self, start: float, end: float, now: float) -> list[tuple[str, int, int, int]]:
        """(agency, answered on time, answered late, overdue now) per responsible agency: answers given
        from start to end, and the clocks running past their last day at `now`."""
        ...


class Stats(Protocol):
    """Daily aggregates per agency (kept by intake and delivery in their own writes) and frozen rankings."""

    async def rebuild_stats(self) -> int:
        """Recompute every aggregate from the raw tables; returns the records counted."""
        ...

    async def stats_rows(self, first: str, last: str, agency: str | None = None
                         ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(daily, rule, hand-over bucket) rows of the days first..last (YYYY-MM-DD, Asia/Shanghai), of
        one agency or all."""
        ...

    async def stats_chains(self) -> list[tuple[Any, ...]]: ...

    async def frozen_ranking(self, day: str) -> AuditEntry | None: ...

    async def freeze_ranking(self, day: str, event: AuditEvent) -> AuditEntry:
        """Append a finished day's ranking to the exchange log once; later calls get that entry."""
        ...


class Store(Schema, Payloads, Intake, DeliveryQueue, Operations, ExchangeLog, Retention, Keys, Locks, Nonces,
            DropMarks, CaseTimeline, Clocks, Stats, Protocol):
    """Durable state of the gateway, what the runtime builds. All I/O methods are coroutines;
    implementations own their threads and connections."""

    node: str
    sealer: SealerLike | None  # set before open: the writer then appends checkpoint entries itself
    worker: str  # set before open when the node runs several processes: whose leases are whose

"""The store's data as frozen values: what callers hand it, and every row a read gives back.

Reads return these, never dicts, so a renamed column is a type error rather than a KeyError at
run time. The fields of the read rows are named and ordered as the columns they come from (the
SELECT lists in `sql.py` are built from them), and `as_json()` gives the exact objects the REST
API has always answered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Self

from gateway.audit.chain import AuditEvent
from gateway.model import Attachment, DeliveryState, MessageStatus


# -- what callers hand the store ------------------------------------------------------------------
@dataclass(frozen=True)
class NewDelivery:
    destination: str
    body_hash: str  # the record as the destination will receive it (after outbound mapping)
    content_type: str = "application/xml"
    reason: str = "queued for delivery"
    file_name: str | None = None


@dataclass(frozen=True)
class NewCaseEntry:
    """What a record adds to its case's timeline beyond the message itself."""

    receivers: tuple[str, ...]  # the destinations; of a blocked record, the receivers it named
    rules: tuple[str, ...] = ()  # ids of the rules that blocked it
    documents: tuple[tuple[str, str], ...] = ()  # (type, number) of each legal document it carries
    files: int = 0  # dossier files it lists, and their total size in bytes
    file_bytes: int = 0


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
    timeline: NewCaseEntry | None = None  # None: the record is on no case's timeline (no case number read)
    evidence_hash: str = ""  # the signed evidence of submission, among the payloads; named in the receipt
    documents: tuple[str, ...] = ()  # legal document types the record carries (time-limit variants, extensions)


@dataclass(frozen=True)
class Finish:
    """How an attempt ended and what the delivery becomes."""

    state: DeliveryState  # DELIVERED, RETRYING or DEAD
    detail: str
    next_attempt_at: float = 0.0
    receipt: bytes = b""
    started_at: float = 0.0
    evidence: bytes = b""  # signed evidence of this delivery, kept as a payload in the same write
    evidence_event: AuditEvent | None = None  # the log entry naming the evidence by its hash
    evidence_to: frozenset[str] = frozenset()  # senders whose outbound channel also gets the evidence


# -- what the queue and retention give back --------------------------------------------------------
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
    replay_of: str | None = None  # the delivery an operator replayed, for a replay


@dataclass(frozen=True)
class Pruned:
    """What one retention batch removed, and where the next batch goes on."""

    messages: int = 0  # messages whose payloads were dropped
    blobs: int = 0  # payloads removed from the database (others are still needed elsewhere)
    blob_bytes: int = 0
    files: int = 0  # dossier files no message needs any more, now listed for removal from disk
    after: tuple[float, str] | None = None  # (received_at, id) of the last message looked at; None: done


# -- rows operators, auditors and the API read ----------------------------------------------------
@dataclass(frozen=True)
class _Row:
    @classmethod
    def from_db(cls, r: Sequence[Any]) -> Self:
        """From the columns `columns(cls)` lists, in order."""
        return cls(*r)

    def as_json(self) -> dict[str, Any]:
        """The row as the REST API answers it (field order kept)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class MessageRow(_Row):
    id: str
    sender: str
    channel: str
    sender_message_id: str | None
    content_hash: str
    canonical_hash: str
    case_number: str
    stage: str
    action: str
    status: MessageStatus
    reasons: tuple[str, ...]
    received_at: float
    file_name: str | None
    operation: str | None
    summary: dict[str, Any]
    receipt: dict[str, Any]  # the receipt as first answered (JSON), returned again on a resend
    node: str
    payload_pruned_at: float | None

    @classmethod
    def from_db(cls, r: Sequence[Any]) -> MessageRow:
        """From the columns `sql.MESSAGE_COLUMNS` lists; reasons, summary and receipt are JSON text."""
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], MessageStatus(r[9]),
                   tuple(json.loads(r[10])), r[11], r[12], r[13], json.loads(r[14]), json.loads(r[15]), r[16], r[17])

    def attachments(self) -> tuple[Attachment, ...]:
        """The dossier files stored with the message (in its summary)."""
        return tuple(Attachment(**a) for a in self.summary.get("attachments", []))

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "status": str(self.status), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class DeliveryRow(_Row):
    """A delivery as operators see it: the receipt as text, the lease token never."""

    seq: int
    id: str
    message_id: str
    destination: str
    case_number: str
    body_hash: str
    content_type: str
    file_name: str | None
    state: DeliveryState
    reason: str
    attempts: int
    created_at: float
    updated_at: float
    next_attempt_at: float
    lease_owner: str | None
    lease_expires_at: float | None
    delivered_at: float | None
    replay_of: str | None
    receipt: str | None  # the receiver's answer to the delivering attempt, as text

    @classmethod
    def from_db(cls, r: Sequence[Any]) -> DeliveryRow:
        """From the columns `sql.DELIVERY_COLUMNS` lists; the receipt is stored as bytes."""
        rec = r[18]
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], DeliveryState(r[8]), r[9], r[10], r[11], r[12],
                   r[13], r[14], r[15], r[16], r[17], bytes(rec).decode("utf-8", "replace") if rec else None)

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "state": str(self.state)}


@dataclass(frozen=True)
class AttemptRow(_Row):
    id: int
    delivery_id: str
    attempt: int
    node: str
    started_at: float
    ended_at: float
    outcome: str
    detail: str


@dataclass(frozen=True)
class QueueDepth(_Row):
    """Deliveries to one destination in one state, and when the oldest of them was queued."""

    destination: str
    state: DeliveryState
    count: int
    oldest: float | None

    @classmethod
    def from_db(cls, r: Sequence[Any]) -> QueueDepth:
        return cls(r[0], DeliveryState(r[1]), r[2], r[3])

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "state": str(self.state)}


@dataclass(frozen=True)
class Checkpoint(_Row):
    """A signature over the exchange log's head at `seq`."""

    seq: int
    entry_hash: str
    signed_at: str
    signature: str
    key_id: str


@dataclass(frozen=True)
class ApiKeyRow(_Row):
    key_hash: str
    role: str
    name: str
    agency: str | None


@dataclass(frozen=True)
class CaseEntryRow(_Row):
    """One record on a case's timeline; `delivered` maps each receiver of an accepted record to the
    time its delivery was confirmed (None: not yet)."""

    message_id: str
    case_number: str
    received_at: float
    sender: str
    stage: str
    action: str
    status: MessageStatus
    receivers: tuple[str, ...]
    rules: tuple[str, ...]
    documents: tuple[tuple[str, str], ...]
    files: int
    file_bytes: int
    answered_by: str | None
    answered_at: float | None
    delivered: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def from_db(cls, r: Sequence[Any]) -> CaseEntryRow:
        """From the columns `sql.CASE_ENTRY_COLUMNS` lists; receivers, rules and documents are JSON."""
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], MessageStatus(r[6]), tuple(json.loads(r[7])),
                   tuple(json.loads(r[8])), tuple((str(t), str(n)) for t, n in json.loads(r[9])), r[10], r[11],
                   r[12], r[13])

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "status": str(self.status), "receivers": list(self.receivers),
                "rules": list(self.rules), "documents": [{"type": t, "number": n} for t, n in self.documents],
                "delivered": dict(self.delivered)}


def columns(row: type[_Row]) -> str:
    """The SELECT list of a row type: its fields, which are named as the columns."""
    return ", ".join(f.name for f in fields(row))

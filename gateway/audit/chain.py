"""How one exchange-log entry is hashed and chained to the one before it.

Kept free of any store so that the offline verifier in an export bundle can use the very same
rules: an entry's hash covers its sequence number, time, node, actor, action, message id,
unified case number, payload hash, details and the previous entry's hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    """Something to log, before it has a place in the chain."""

    action: str
    actor: str
    message_id: str = ""
    case_number: str = ""
    payload_hash: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str  # ISO 8601 UTC with microseconds: readable by an auditor, exact for the hash
    node: str
    actor: str
    action: str
    message_id: str
    case_number: str
    payload_hash: str
    detail: str  # canonical JSON text of the details, hashed as stored
    prev_hash: str
    entry_hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def canonical_detail(detail: dict[str, Any]) -> str:
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def entry_hash(
    seq: int,
    time: str,
    node: str,
    actor: str,
    action: str,
    message_id: str,
    case_number: str,
    payload_hash: str,
    detail: str,
    prev_hash: str,
) -> str:
    material = json.dumps(
        [seq, time, node, actor, action, message_id, case_number, payload_hash, detail, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def seal(event: AuditEvent, *, seq: int, time: str, node: str, prev_hash: str) -> AuditEntry:
    """Give an event its place in the chain."""
    detail = canonical_detail(event.detail)
    h = entry_hash(
        seq, time, node, event.actor, event.action, event.message_id, event.case_number,
        event.payload_hash, detail, prev_hash,
    )
    return AuditEntry(
        seq, time, node, event.actor, event.action, event.message_id, event.case_number,
        event.payload_hash, detail, prev_hash, h,
    )


def recompute(e: AuditEntry) -> str:
    return entry_hash(
        e.seq, e.time, e.node, e.actor, e.action, e.message_id, e.case_number,
        e.payload_hash, e.detail, e.prev_hash,
    )

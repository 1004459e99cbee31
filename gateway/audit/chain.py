"""Exchange-log entries: what is logged, and how it takes its place in the hash chain.

The rules (canonical details, the entry hash) are defined once, in the standalone bundle
verifier, so the gateway writes entries exactly as an auditor's copy of it checks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from gateway.audit.chain_rules import GENESIS, canonical_detail, hash_of_fields

__all__ = ["GENESIS", "AuditEntry", "AuditEvent", "seal"]


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
        # every field is a plain str or int: no need for asdict's recursive deep copy (a page is 500 entries)
        return {name: getattr(self, name) for name in _ENTRY_FIELDS}


_ENTRY_FIELDS = tuple(f.name for f in fields(AuditEntry))


def seal(event: AuditEvent, *, seq: int, time: str, node: str, prev_hash: str) -> AuditEntry:
    """Give an event its place in the chain."""
    detail = canonical_detail(event.detail)
    entry_hash = hash_of_fields([seq, time, node, event.actor, event.action, event.message_id, event.case_number,
                                 event.payload_hash, detail, prev_hash])
    return AuditEntry(seq, time, node, event.actor, event.action, event.message_id, event.case_number,
                      event.payload_hash, detail, prev_hash, entry_hash)

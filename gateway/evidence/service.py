"""Evidence at the node: the delivery evidence each confirmed delivery's Finish carries into the store,
and the documents a message has, read back by their log entries (REST, SOAP GetReceipts)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Protocol

from gateway.evidence.document import Delivery
from gateway.evidence.issue import KIND_OF, Issuer, evidence_entries
from gateway.model import EvidenceDoc, sha256_hex
from gateway.store.roles import ExchangeLog, Payloads
from gateway.store.rows import Finish, Lease
from gateway.store.shared import iso_now


class EvidenceStore(ExchangeLog, Payloads, Protocol):
    """What reading a message's evidence needs: its log entries and the documents they name."""


async def documents(store: EvidenceStore, message_id: str, *, with_bodies: bool = True) -> list[EvidenceDoc]:
    """The evidence issued about a message, oldest first, each found by the log entry that issued it."""
    entries = evidence_entries(await store.audit_entries(message_id=message_id, limit=10_000))
    out = []
    for e in entries:
        body = (await store.get_blob(e.payload_hash) or b"") if with_bodies else b""
        out.append(EvidenceDoc(KIND_OF[e.action], e.payload_hash, e.time,
                               str(json.loads(e.detail or "{}").get("destination", "")), body))
    return out


def with_delivery_evidence(issuer: Issuer, lease: Lease, finish: Finish,
                           to_outbound: frozenset[str] = frozenset()) -> Finish:
    """`finish` with the signed evidence of its delivery, which the store writes in the same transaction
    as the delivery itself: a confirmed delivery never exists without its evidence. When the record's
    sender is one of `to_outbound`, the same write queues the document to the sender's outbound channel."""
    now = iso_now()
    issued = issuer.delivery(Delivery(
        lease.message_id, lease.case_number, lease.destination, lease.delivery_id, lease.body_hash, now,
        lease.attempt, sha256_hex(finish.receipt) if finish.receipt else ""), now)
    return replace(finish, evidence=issued.body, evidence_event=issued.event, evidence_to=to_outbound)

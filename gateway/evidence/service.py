"""Evidence at the node: delivery evidence after each confirmed delivery, and the documents a
message has, read back by their log entries (REST, SOAP GetReceipts, audit export)."""

from __future__ import annotations

import json
import logging
from typing import Protocol

from gateway.evidence.document import Delivery
from gateway.evidence.issue import KIND_OF, Issuer, delivery_from_entry, evidence_entries, missing_deliveries
from gateway.model import DeliveryResult, EvidenceDoc, sha256_hex
from gateway.store.roles import ExchangeLog, Payloads
from gateway.store.rows import Finish, Lease, MessageRow
from gateway.store.shared import iso_now

log = logging.getLogger("gateway.evidence")


class EvidenceStore(ExchangeLog, Payloads, Protocol):
    async def get_message(self, message_id: str) -> MessageRow | None: ...


async def documents(store: EvidenceStore, message_id: str, *, with_bodies: bool = True) -> list[EvidenceDoc]:
    """The evidence issued about a message, oldest first, each found by the log entry that issued it."""
    entries = evidence_entries(await store.audit_entries(message_id=message_id, limit=10_000))
    out = []
    for e in entries:
        body = (await store.get_blob(e.payload_hash) or b"") if with_bodies else b""
        out.append(EvidenceDoc(KIND_OF[e.action], e.payload_hash, e.time,
                               str(json.loads(e.detail or "{}").get("destination", "")), body))
    return out


class EvidenceService:
    def __init__(self, issuer: Issuer, store: EvidenceStore) -> None:
        self.issuer = issuer
        self.store = store

    async def delivered(self, lease: Lease, finish: Finish, result: DeliveryResult) -> None:
        """Sign the evidence of one confirmed delivery, keep it and log its hash."""
        try:
            m = await self.store.get_message(lease.message_id)
            sender = m.sender if m is not None else ""
            answer = sha256_hex(result.receipt) if result.receipt else ""
            issued = self.issuer.delivery(Delivery(
                lease.message_id, lease.case_number, sender, lease.destination, lease.delivery_id, lease.body_hash,
                iso_now(), lease.attempt, answer), iso_now())
            await self.store.put_blob(issued.body)
            await self.store.append_audit([issued.event])
        except Exception:  # the delivery stands; its evidence is issued again when the message's is read
            log.exception("evidence of delivery %s could not be issued now", lease.delivery_id)

    async def complete(self, message_id: str) -> int:
        """Issue the delivery evidence a stop between a delivery and its evidence left out; how many."""
        entries = await self.store.audit_entries(message_id=message_id, limit=10_000)
        missing = missing_deliveries(entries)
        if not missing:
            return 0
        m = await self.store.get_message(message_id)
        sender = m.sender if m is not None else ""
        for e in missing:
            issued = self.issuer.delivery(delivery_from_entry(e, sender), iso_now())
            await self.store.put_blob(issued.body)
            await self.store.append_audit([issued.event])
        return len(missing)

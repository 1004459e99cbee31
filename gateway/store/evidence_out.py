"""Delivery evidence pushed to the record's sender: queued as a delivery to the sender's own outbound
channel in the write that records the confirmed delivery and keeps its evidence, so a crash leaves
both or neither. The body is the signed document itself; no mapping touches it."""

from __future__ import annotations

from gateway.model import EVIDENCE_CONTENT_TYPE, new_id, sha256_hex
from gateway.store.rows import Finish, Lease

SENDER_OF = "SELECT sender FROM messages WHERE id = ?"


def to_sender(lease: Lease, result: Finish, sender: str | None, now: float) -> tuple[object, ...] | None:
    """The evidence delivery's values for `sql.Statements.insert_delivery`, or None when the sender did
    not ask for evidence on its outbound channel."""
    if not result.evidence or sender is None or sender not in result.evidence_to:
        return None
    h = sha256_hex(result.evidence)
    return (new_id(), lease.message_id, sender, lease.case_number, h, EVIDENCE_CONTENT_TYPE,
            f"evidence-delivery-{lease.delivery_id}.xml", f"delivery evidence ({lease.destination}) to the sender",
            now, now, now)

"""Evidence pushed to its sender's own outbound channel (opt-in per agency, `evidence_to_outbound`).

A pushed document is a delivery like a defect notice, but its body is the signed document itself,
never mapped, and its content type marks it (`EVIDENCE_CONTENT_TYPE`): the receipt does not list it
as a destination, it gets an idempotency key of its own, and its own delivery issues no evidence.
The submission evidence goes in the record's write (here), the delivery evidence in the write that
records the confirmed delivery (gateway/store/evidence_out.py).
"""

from __future__ import annotations

from gateway.model import EVIDENCE_CONTENT_TYPE
from gateway.store.rows import NewDelivery


def evidence_to_sender(sender: str, sha256: str, message_id: str) -> NewDelivery:
    return NewDelivery(sender, sha256, content_type=EVIDENCE_CONTENT_TYPE, reason="submission evidence to the sender",
                       file_name=f"evidence-submission-{message_id}.xml")

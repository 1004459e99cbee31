"""What both store backends say the same way: times, receipts, reasons and log events.

Kept apart from the SQL so that SQLite and PostgreSQL write identical reasons and exchange-log
details; an operator or auditor cannot tell from the text which backend a node runs on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from gateway.audit.chain import AuditEvent
from gateway.model import Attachment, DeliveryState, Receipt, sha256_hex
from gateway.store.base import Finish, Lease, NewDelivery, NewMessage

_FINISH_ACTIONS = {"delivered": "delivered", "retrying": "delivery-failed", "dead": "dead-lettered"}


def lease_attachments(listed: str | None) -> tuple[Attachment, ...]:
    """The dossier files a lease carries, from the JSON list both lease queries select (NULL: none;
    only an accepted message's are selected, a defect notice carries none)."""
    return tuple(Attachment(**a) for a in json.loads(listed)) if listed else ()


def iso_now(t: float | None = None) -> str:
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1_000_000):06d}Z"


def new_receipt(m: NewMessage, deliveries: list[NewDelivery]) -> Receipt:
    return Receipt(
        message_id=m.message_id,
        content_hash=m.content_hash,
        status=m.status,
        case_number=m.case_number,
        reasons=m.reasons,
        received_at=m.received_at,
        destinations=tuple(d.destination for d in deliveries),
    )


def as_duplicate(receipt: Receipt) -> Receipt:
    return Receipt(**{**receipt.__dict__, "duplicate": True})


def duplicate_event(m: NewMessage, original: Receipt) -> AuditEvent:
    return AuditEvent(
        "duplicate",
        m.sender,
        original.message_id,
        original.case_number,
        m.content_hash,
        {"channel": m.channel, "note": "resend answered with the original receipt"},
    )


def finish_reason(state: DeliveryState, result: Finish, lease: Lease) -> str:
    if state == DeliveryState.DELIVERED:
        return f"delivered on attempt {lease.attempt}: {result.detail}"
    if state == DeliveryState.RETRYING:
        when = iso_now(result.next_attempt_at)
        return f"attempt {lease.attempt} failed: {result.detail}; next attempt at {when}"
    return f"dead-lettered after attempt {lease.attempt}: {result.detail}"


def finish_event(node: str, lease: Lease, result: Finish) -> AuditEvent:
    action = _FINISH_ACTIONS[str(result.state)]
    return AuditEvent(
        action,
        node,
        lease.message_id,
        lease.case_number,
        lease.body_hash,
        {
            "delivery": lease.delivery_id,
            "destination": lease.destination,
            "attempt": lease.attempt,
            "detail": result.detail[:2000],
            **({"receipt_sha256": sha256_hex(result.receipt)} if result.receipt else {}),
        },
    )


def held_payloads(
    content_hash: str, canonical_hash: str, body_hashes: Iterable[str], attachments: Iterable[dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """(payloads, dossier files) a message holds, each once: the counts retention decrements are the
    ones intake incremented. An attachment may be a stored payload too (SOAP), or a file on disk."""
    held = dict.fromkeys([content_hash, *([canonical_hash] if canonical_hash else []), *body_hashes])
    files = [h for h in dict.fromkeys(str(a["sha256"]) for a in attachments) if h not in held]
    return list(held), files


def new_message_payloads(
    m: NewMessage, blobs: dict[str, bytes], deliveries: list[NewDelivery]
) -> tuple[list[str], list[str]]:
    return held_payloads(m.content_hash, m.canonical_hash, [*blobs, *(d.body_hash for d in deliveries)],
                         m.summary.get("attachments", ()))


def add_counts(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int]:
    """Sum of two (payloads removed, bytes, dossier files unused) counts of a retention batch."""
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def pruned_event(actor: str, message_id: str, case_number: str, content_hash: str, policy: str) -> AuditEvent:
    return AuditEvent("payload-pruned", actor, message_id, case_number, content_hash,
                      {"policy": policy,
                       "note": "payloads dropped by the retention policy; the log keeps their hashes"})


def payload_gone(message_id: str) -> ValueError:
    return ValueError(f"the payloads of message {message_id} were dropped by the retention policy")


def held_reason(lease: Lease) -> str:
    return (
        f"held: an earlier record of this case to {lease.destination} (delivery "
        f"{lease.delivery_id}) is dead-lettered; replay or discard it first"
    )


def lease_reason(attempt: int, node: str) -> str:
    return f"attempt {attempt} in progress on {node}"


def not_discardable(delivery_id: str, state: str) -> ValueError:
    return ValueError(f"delivery {delivery_id} is {state}; only dead or waiting deliveries can be discarded")


def delivery_row(d: dict[str, Any]) -> dict[str, Any]:
    """A delivery as operators see it: the receipt as text, the lease token never."""
    rec = d.pop("receipt", None)
    d["receipt"] = bytes(rec).decode("utf-8", "replace") if rec else None
    d.pop("lease_token", None)
    return d


def replay_conflict(delivery_id: str, state: str, expected: str) -> ValueError:
    """Someone acted on the delivery between the operator's look and the replay."""
    return ValueError(f"delivery {delivery_id} is {state} now, no longer {expected}: someone else acted on it "
                      "first; look at it again before replaying")

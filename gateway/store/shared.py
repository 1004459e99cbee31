"""What both store backends say the same way: times, receipts, reasons and log events.

Kept apart from the SQL so that SQLite and PostgreSQL write identical reasons and exchange-log
details; an operator or auditor cannot tell from the text which backend a node runs on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from gateway.audit.chain import AuditEntry, AuditEvent, seal
from gateway.audit.verify_bundle import CHECKPOINT
from gateway.model import Attachment, DeliveryState, Receipt, is_evidence, new_id, sha256_hex
from gateway.store.roles import SealerLike
from gateway.store.rows import Finish, Lease, NewDelivery, NewMessage

Head = tuple[int, str, str]  # the exchange log's newest entry: (seq, entry_hash, time)

# states a delivery leaves again: their oldest is read from the rows, not kept with the counts
LEAVING_STATES = frozenset({"queued", "retrying", "in_flight", "dead"})

_JSON = json.JSONEncoder(ensure_ascii=False)  # as json.dumps(..., ensure_ascii=False), without an encoder per call

_FINISH_ACTIONS = {"delivered": "delivered", "retrying": "delivery-failed", "dead": "dead-lettered"}


def lease_attachments(listed: str | None) -> tuple[Attachment, ...]:
    """The dossier files a lease carries, from the JSON list both lease queries select (NULL: none;
    only an accepted message's are selected, a defect notice carries none)."""
    return tuple(Attachment(**a) for a in json.loads(listed)) if listed else ()


_second: tuple[float, str] = (-1.0, "")  # the last whole second, formatted: most calls fall in it


def iso_now(t: float | None = None) -> str:
    global _second
    t = time.time() if t is None else t
    second = _second  # one tuple, swapped whole: a thread never sees half of another's update
    if second[0] != t // 1:
        second = _second = (t // 1, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)))
    return f"{second[1]}.{int((t % 1) * 1_000_000):06d}Z"


def chain(events: list[AuditEvent], head: Head, node: str, sealer: SealerLike | None = None,
          sealed_to: int = 0, force: bool = False) -> tuple[list[AuditEntry], Head]:
    """Seal events onto the log's head, in order: their entries and the new head. Time never goes
    backwards along the chain, even if this node's clock is behind the node that wrote the head.

    With a sealer, a checkpoint entry follows as soon as `every` entries after the last checkpoint
    (entry `sealed_to`) are unsigned, and at the end when `force` (and the head is not one already).
    """
    out = []
    for ev in events:
        seq, prev, prev_time = head
        now = iso_now()
        entry = seal(ev, seq=seq + 1, time=now if now > prev_time else prev_time, node=node, prev_hash=prev)
        head = (entry.seq, entry.entry_hash, entry.time)
        out.append(entry)
        if sealer is not None and head[0] - sealed_to >= sealer.every:
            out.append(seal(sealer.event(head[0], head[1]), seq=head[0] + 1, time=max(iso_now(), head[2]),
                            node=node, prev_hash=head[1]))
            head = (out[-1].seq, out[-1].entry_hash, out[-1].time)
            sealed_to = head[0]
    if sealer is not None and force and head[0] > sealed_to and head[0] > 0:
        cp = seal(sealer.event(head[0], head[1]), seq=head[0] + 1, time=max(iso_now(), head[2]), node=node,
                  prev_hash=head[1])
        out.append(cp)
        head = (cp.seq, cp.entry_hash, cp.time)
    return out, head


def checkpoint_rows(entries: list[AuditEntry]) -> list[tuple[object, ...]]:
    """The checkpoints table's rows (seq, entry_hash, signed_at, signature, key_id) of checkpoint entries."""
    rows: list[tuple[object, ...]] = []
    for e in entries:
        if e.action == CHECKPOINT:
            d = json.loads(e.detail)
            rows.append((d["seq"], d["entry_hash"], d["signed_at"], d["signature"], d["key_id"]))
    return rows


def audit_values(e: AuditEntry) -> tuple[object, ...]:
    """An entry's values in the order of audit_log's columns."""
    return (e.seq, e.time, e.node, e.actor, e.action, e.message_id, e.case_number, e.payload_hash, e.detail,
            e.prev_hash, e.entry_hash)


def record_destinations(deliveries: list[NewDelivery]) -> tuple[str, ...]:
    """Where the record goes: its deliveries but the evidence pushed back to its sender."""
    return tuple(d.destination for d in deliveries if not is_evidence(d.content_type))


def new_receipt(m: NewMessage, deliveries: list[NewDelivery]) -> Receipt:
    return Receipt(
        message_id=m.message_id,
        content_hash=m.content_hash,
        status=m.status,
        case_number=m.case_number,
        reasons=m.reasons,
        received_at=m.received_at,
        destinations=record_destinations(deliveries),
        evidence=m.evidence_hash,
    )


def message_values(m: NewMessage, receipt: Receipt, node: str) -> tuple[object, ...]:
    """A new message's values in the order `sql.Statements.insert_message` lists its columns."""
    return (m.message_id, m.sender, m.channel, m.sender_message_id, m.content_hash, m.canonical_hash,
            m.case_number, m.stage, m.action, str(m.status), _JSON.encode(list(m.reasons)),
            m.received_at, m.file_name, m.operation, _JSON.encode(m.summary), _JSON.encode(receipt.as_dict()), node)


def delivery_values(m: NewMessage, deliveries: list[NewDelivery], now: float) -> list[tuple[object, ...]]:
    """The new deliveries' values for `sql.Statements.insert_delivery`, each with a new id."""
    return [(new_id(), m.message_id, d.destination, m.case_number, d.body_hash, d.content_type, d.file_name,
             d.reason, now, now, now) for d in deliveries]


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


def finish_events(node: str, lease: Lease, result: Finish) -> list[AuditEvent]:
    """The log entries of an attempt's end: the outcome, and the signed evidence of a delivery."""
    ev = finish_event(node, lease, result)
    return [ev, result.evidence_event] if result.evidence_event is not None else [ev]


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


def lease_reason(attempt: int | str, node: str) -> str:
    return f"attempt {attempt} in progress on {node}"


def replayed_event(actor: str, replayed: tuple[str, str, str], body_hash: str, delivery_id: str, new: str,
                   reason: str) -> AuditEvent:
    """`replayed` is the (message id, destination, case number) of the delivery replayed."""
    message_id, destination, case_number = replayed
    return AuditEvent("replayed", actor, message_id, case_number, body_hash,
                      {"delivery": delivery_id, "new_delivery": new, "destination": destination, "reason": reason})


def discarded_event(actor: str, discarded: tuple[str, str, str, str], delivery_id: str, reason: str) -> AuditEvent:
    """`discarded` is the (message id, destination, case number, body hash) of the delivery."""
    message_id, destination, case_number, body_hash = discarded
    return AuditEvent("discarded", actor, message_id, case_number, body_hash,
                      {"delivery": delivery_id, "destination": destination, "reason": reason})


def not_discardable(delivery_id: str, state: str) -> ValueError:
    return ValueError(f"delivery {delivery_id} is {state}; only dead or waiting deliveries can be discarded")


def replay_conflict(delivery_id: str, state: str, expected: str) -> ValueError:
    """Someone acted on the delivery between the operator's look and the replay."""
    return ValueError(f"delivery {delivery_id} is {state} now, no longer {expected}: someone else acted on it "
                      "first; look at it again before replaying")

"""Plain values that cross the layers: what an adapter hands in, what it is handed out.

They are frozen dataclasses of bytes, strings and numbers so that the adapter contract
stays "a strict point of cut-off" between the gateway and the network, like httpx's transport.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_id() -> str:
    """A sortable unique id (time prefix + random), readable in logs and URLs."""
    return f"{int(time.time() * 1000):013x}-{os.urandom(6).hex()}"  # the 48 random bits uuid4's first 12 digits held


@dataclass(frozen=True)
class Attachment:
    """A dossier file travelling with a record; stored by hash, never held in memory whole."""

    name: str
    sha256: str
    size: int
    media_type: str = "application/octet-stream"


@dataclass(frozen=True)
class InboundRecord:
    """What an inbound adapter hands the pipeline: the raw bytes and where they came from."""

    channel: str
    sender: str
    body: bytes
    received_at: float = field(default_factory=time.time)
    sender_message_id: str | None = None
    file_name: str | None = None
    operation: str | None = None
    content_type: str = "application/xml"
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class OutboundMessage:
    """What an outbound adapter is asked to send: one delivery of one record to one agency.

    `idempotency_key` is the same on every attempt of this delivery, so a receiver that saw an
    attempt whose answer was lost (a timeout) can answer it again instead of acting twice. An
    operator's replay is a new delivery with a key of its own (MESSAGE:DESTINATION:replay-DELIVERY),
    so it is delivered again even where the first one was taken, and `replay_of` names the delivery
    it replays.
    """

    delivery_id: str
    message_id: str
    idempotency_key: str
    destination: str
    case_number: str
    body: bytes
    content_type: str = "application/xml"
    attempt: int = 1
    attachments: tuple[Attachment, ...] = ()
    file_name: str | None = None
    replay_of: str | None = None


# an evidence document pushed to its sender's outbound channel: still XML to any receiver, the parameter
# tells the sender's system it is the gateway's signed evidence, not a record
EVIDENCE_CONTENT_TYPE = 'application/xml; profile="urn:case-exchange:evidence:1"'


def is_evidence(content_type: str) -> bool:
    return content_type == EVIDENCE_CONTENT_TYPE


def idempotency_key(message_id: str, destination: str, delivery_id: str, replay_of: str | None,
                    evidence_hash: str | None = None) -> str:
    """The key a receiver deduplicates by: one per delivery of a record to a destination, a new one
    for each replay an operator asks for, and one per evidence document pushed to the sender (several
    go to the same sender about the same record)."""
    key = f"{message_id}:{destination}"
    if evidence_hash:
        key += f":evidence-{evidence_hash[:32]}"
    return f"{key}:replay-{delivery_id}" if replay_of else key


class Outcome(StrEnum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"  # try again later: timeout, connection refused, 5xx, SOAP Server fault
    PERMANENT = "permanent"  # the receiver refused the content: dead-letter at once


@dataclass(frozen=True)
class DeliveryResult:
    """An outbound adapter's answer: what happened, in words an operator reads."""

    outcome: Outcome
    detail: str = ""
    receipt: bytes = b""

    @classmethod
    def delivered(cls, detail: str = "accepted", receipt: bytes = b"") -> DeliveryResult:
        return cls(Outcome.DELIVERED, detail, receipt)

    @classmethod
    def transient(cls, detail: str) -> DeliveryResult:
        return cls(Outcome.TRANSIENT, detail)

    @classmethod
    def permanent(cls, detail: str, receipt: bytes = b"") -> DeliveryResult:
        return cls(Outcome.PERMANENT, detail, receipt)


class MessageStatus(StrEnum):
    ACCEPTED = "accepted"  # validated, routed, deliveries queued
    REJECTED = "rejected"  # refused: a receipt with the reasons went back to the sender


class DeliveryState(StrEnum):
    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    DEAD = "dead"
    DISCARDED = "discarded"


FINAL_STATES = frozenset({DeliveryState.DELIVERED, DeliveryState.DISCARDED})

_NEUTRAL = {  # a delivery's state as an agency reads it (never the receiver's own words), Chinese first
    "queued": "等待投递 / waiting to be delivered",
    "in_flight": "正在投递 / being delivered",
    "retrying": "接收方暂未接收，网关将继续重试 / not taken by the receiver yet; the gateway keeps trying",
    "delivered": "已送达 / delivered",
    "dead": "未能送达，已通知网关运维人员 / not delivered; the gateway's operators have been told",
    "discarded": "运维人员已停止投递 / given up by an operator",
}


def neutral_reason(state: str) -> str:
    """A delivery's state in words an agency may read: the reason operators see can repeat what the
    receiver's system answered, or name its address, which is not the sender's to know."""
    return _NEUTRAL.get(str(state), str(state))


@dataclass(frozen=True)
class Receipt:
    """The answer to a sender: part of the legal record, returned again on a resend."""

    message_id: str
    content_hash: str
    status: MessageStatus
    case_number: str = ""
    reasons: tuple[str, ...] = ()
    duplicate: bool = False
    received_at: float = 0.0
    destinations: tuple[str, ...] = ()
    records: tuple[Receipt, ...] = ()  # a file of several records (a pack's `batch:`): each one's receipt
    evidence: str = ""  # SHA-256 of the signed evidence of submission ("" where none was issued)

    def as_dict(self) -> dict[str, object]:
        more: dict[str, object] = {"records": [r.as_dict() for r in self.records]} if self.records else {}
        return {
            "message_id": self.message_id,
            "content_hash": self.content_hash,
            "status": str(self.status),
            "case_number": self.case_number,
            "reasons": list(self.reasons),
            "duplicate": self.duplicate,
            "received_at": self.received_at,
            "destinations": list(self.destinations),
            **more,
            **({"evidence_sha256": self.evidence,
                "evidence_href": f"/api/v1/messages/{self.message_id}/evidence/{self.evidence}"}
               if self.evidence else {}),
        }

    def to_xml(self) -> bytes:
        from lxml import etree

        ns = "urn:case-exchange:receipt:1"
        root = etree.Element(f"{{{ns}}}Receipt", nsmap={None: ns})
        for key in ("message_id", "content_hash", "status", "case_number"):
            etree.SubElement(root, key.title().replace("_", "")).text = str(getattr(self, key))
        etree.SubElement(root, "Duplicate").text = "true" if self.duplicate else "false"
        dest = etree.SubElement(root, "Destinations")
        for d in self.destinations:
            etree.SubElement(dest, "Agency").text = d
        reasons = etree.SubElement(root, "Reasons")
        for r in self.reasons:
            etree.SubElement(reasons, "Reason").text = r
        if self.records:
            records = etree.SubElement(root, "Records")
            for rec in self.records:
                records.append(etree.fromstring(rec.to_xml()))
        if self.evidence:
            etree.SubElement(root, "Evidence", sha256=self.evidence,
                             href=f"/api/v1/messages/{self.message_id}/evidence/{self.evidence}")
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Receipt:
        return cls(
            message_id=str(d["message_id"]),
            content_hash=str(d["content_hash"]),
            status=MessageStatus(str(d["status"])),
            case_number=str(d.get("case_number") or ""),
            reasons=tuple(str(r) for r in d.get("reasons") or []),
            duplicate=bool(d.get("duplicate", False)),
            received_at=float(d.get("received_at") or 0.0),
            destinations=tuple(str(x) for x in d.get("destinations") or []),
            records=tuple(cls.from_dict(r) for r in d.get("records") or []),
            evidence=str(d.get("evidence_sha256") or ""),
        )


@dataclass(frozen=True)
class DeliveryView:
    """One destination's delivery of a record, as its sender may see it."""

    destination: str
    state: str
    reason: str = ""


@dataclass(frozen=True)
class EvidenceDoc:
    """A signed evidence document the gateway issued about a record (submission or delivery)."""

    kind: str
    sha256: str
    issued_at: str
    destination: str = ""
    document: bytes = b""


@dataclass(frozen=True)
class SentRecord:
    """A record an agency sent: its receipt, where each delivery stands, and the signed evidence."""

    receipt: Receipt
    deliveries: tuple[DeliveryView, ...] = ()
    evidence: tuple[EvidenceDoc, ...] = ()

"""What an evidence document says: submission (the gateway's decision on a record) and delivery
(a receiver's confirmation). Plain XML in its own namespace; `signer.py` signs it.

One document per fact, each with the node that issued it and the time it was issued. A delivery
document names the receiver's answer by its SHA-256 only: the sender may read it, and the answer
itself is the receiver's, not the sender's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from lxml import etree

NS = "urn:case-exchange:evidence:1"
SUBMISSION = "submission"
DELIVERY = "delivery"
KINDS = (SUBMISSION, DELIVERY)


@cache  # a handful of names, each document asks for a dozen of them
def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


@dataclass(frozen=True)
class Submission:
    message_id: str
    content_hash: str
    case_number: str
    sender: str
    destinations: Sequence[str]
    received_at: str  # ISO 8601 UTC
    decision: str  # accepted | rejected
    reasons: Sequence[str]
    sender_message_id: str | None = None


@dataclass(frozen=True)
class Delivery:
    message_id: str
    case_number: str
    destination: str
    delivery_id: str
    body_hash: str  # the record as the destination received it
    delivered_at: str
    attempts: int
    answer_hash: str  # SHA-256 of the receiver's answer; "" when it answered with no body


def _head(kind: str, node: str, issued_at: str) -> etree._Element:
    root = etree.Element(_q("Evidence"), nsmap={None: NS}, kind=kind, version="1")
    _add(root, "Node", node)
    _add(root, "IssuedAt", issued_at)
    return root


def _add(root: etree._Element, tag: str, text: str, **attrs: str) -> etree._Element:
    el = etree.SubElement(root, _q(tag), attrs)
    el.text = text or None  # an empty one as <Tag/>, as a parsed document has it (same canonical form)
    return el


def submission(s: Submission, node: str, issued_at: str) -> etree._Element:
    root = _head(SUBMISSION, node, issued_at)
    _add(root, "MessageId", s.message_id)
    if s.sender_message_id:
        _add(root, "SenderMessageId", s.sender_message_id)
    _add(root, "ContentHash", s.content_hash, algorithm="sha256")
    _add(root, "CaseNumber", s.case_number)
    _add(root, "Sender", s.sender)
    _add(root, "ReceivedAt", s.received_at)
    _add(root, "Decision", s.decision)
    dest = etree.SubElement(root, _q("Destinations"))
    for d in s.destinations:
        _add(dest, "Agency", d)
    reasons = etree.SubElement(root, _q("Reasons"))
    for r in s.reasons:
        _add(reasons, "Reason", r)
    return root


def delivery(d: Delivery, node: str, issued_at: str) -> etree._Element:
    root = _head(DELIVERY, node, issued_at)
    _add(root, "MessageId", d.message_id)
    _add(root, "CaseNumber", d.case_number)
    _add(root, "Destination", d.destination)
    _add(root, "DeliveryId", d.delivery_id)
    _add(root, "BodyHash", d.body_hash, algorithm="sha256")
    _add(root, "DeliveredAt", d.delivered_at)
    _add(root, "Attempts", str(d.attempts))
    _add(root, "AnswerHash", d.answer_hash, algorithm="sha256")
    return root


def fields(root: etree._Element) -> dict[str, str]:
    """The document's facts by name (repeated ones joined by newlines), for the verifier's report."""
    out: dict[str, str] = {"kind": root.get("kind", "")}
    for el in root.iter(_q("*")):
        if el is root or len(el):
            continue
        name = etree.QName(el).localname
        out[name] = f"{out[name]}\n{el.text or ''}" if name in out else (el.text or "")
    return out

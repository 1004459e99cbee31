"""Issuing evidence: each document signed, its SHA-256 logged in the exchange log through the usual
audit event (the chain's own hash rule covers it), the document kept as a payload by that hash.

Submission evidence is written in the record's own store transaction (the pipeline adds it to the
message's payloads and log entries), delivery evidence in the transaction that records the delivery
(the dispatcher adds it to the attempt's Finish): neither fact is ever stored without its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.evidence import document
from gateway.evidence.document import Delivery, Submission
from gateway.evidence.signer import EvidenceSigner
from gateway.model import sha256_hex

ACTIONS = {document.SUBMISSION: "evidence-submission", document.DELIVERY: "evidence-delivery"}
KIND_OF = {a: k for k, a in ACTIONS.items()}


@dataclass(frozen=True)
class Issued:
    body: bytes
    sha256: str
    event: AuditEvent


class Issuer:
    def __init__(self, signer: EvidenceSigner, node: str) -> None:
        self.signer = signer
        self.node = node

    def submission(self, s: Submission, issued_at: str) -> Issued:
        body = self.signer.sign(document.submission(s, self.node, issued_at))
        h = sha256_hex(body)
        return Issued(body, h, AuditEvent(ACTIONS[document.SUBMISSION], self.node, s.message_id, s.case_number, h,
                                          {"kind": document.SUBMISSION, "decision": s.decision}))

    def delivery(self, d: Delivery, issued_at: str) -> Issued:
        body = self.signer.sign(document.delivery(d, self.node, issued_at))
        h = sha256_hex(body)
        return Issued(body, h, AuditEvent(ACTIONS[document.DELIVERY], self.node, d.message_id, d.case_number, h,
                                          {"kind": document.DELIVERY, "delivery": d.delivery_id,
                                           "destination": d.destination, "attempt": d.attempts}))


def evidence_entries(entries: list[AuditEntry]) -> list[AuditEntry]:
    """A message's log entries that issued evidence, in order."""
    return [e for e in entries if e.action in KIND_OF]

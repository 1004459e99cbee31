"""What the SOAP endpoint answers with: a submission's receipt and a validation's verdict.

Written as the contract's schema (standards/soap/case-exchange-soap.xsd) orders them, element by
element; `adapters.soap.inbound` wraps them in the operation's response.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime

from lxml import etree

from adapters.soap.envelope import TNS
from gateway.model import DeliveryView, EvidenceDoc, Receipt
from gateway.verdict import Verdict


def tns(name: str) -> str:
    """An element name in the contract's namespace."""
    return f"{{{TNS}}}{name}"


def iso_time(t: float) -> str:
    """A timestamp as the contract's xs:dateTime, UTC to the millisecond."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def receipt_element(r: Receipt, deliveries: Sequence[DeliveryView] | None = None,
                    evidence: Sequence[EvidenceDoc] = ()) -> etree._Element:
    el = etree.Element(tns("Receipt"), nsmap={None: TNS})
    for tag, value in (
        ("MessageId", r.message_id),
        ("ContentHash", r.content_hash),
        ("Status", str(r.status)),
        ("CaseNumber", r.case_number),
        ("Duplicate", "true" if r.duplicate else "false"),
        ("ReceivedAt", iso_time(r.received_at)),
    ):
        etree.SubElement(el, tns(tag)).text = value
    dest = etree.SubElement(el, tns("Destinations"))
    for d in r.destinations:
        etree.SubElement(dest, tns("Agency")).text = d
    reasons = etree.SubElement(el, tns("Reasons"))
    for reason in r.reasons:
        etree.SubElement(reasons, tns("Reason")).text = reason
    if deliveries is not None:
        ds = etree.SubElement(el, tns("Deliveries"))
        for dv in deliveries:
            de = etree.SubElement(ds, tns("Delivery"))
            etree.SubElement(de, tns("Agency")).text = dv.destination
            etree.SubElement(de, tns("State")).text = dv.state
            etree.SubElement(de, tns("Reason")).text = dv.reason
    if r.records:  # a file of several records: each one's own receipt
        recs = etree.SubElement(el, tns("Records"))
        for rec in r.records:
            recs.append(receipt_element(rec))
    for ev in evidence:  # the signed documents as issued, base64: their bytes are what the signature covers
        e = etree.SubElement(el, tns("Evidence"), kind=ev.kind, sha256=ev.sha256, issuedAt=ev.issued_at)
        if ev.destination:
            e.set("destination", ev.destination)
        e.text = base64.b64encode(ev.document).decode("ascii")
    if evidence == () and r.evidence:
        etree.SubElement(el, tns("Evidence"), kind="submission", sha256=r.evidence)
    return el


_FINDING_FIELDS = (("rule", "Rule"), ("severity", "Severity"), ("message_zh", "MessageZh"),
                   ("message", "MessageEn"), ("location", "Location"), ("line", "Line"),
                   ("hint_zh", "HintZh"), ("hint_en", "HintEn"),
                   ("standard_location", "StandardLocation"), ("standard_line", "StandardLine"))
_REQUIRED = {"Rule", "Severity", "MessageZh", "MessageEn"}


def verdict_element(v: Verdict, *, with_outbound: bool = False) -> etree._Element:
    """ValidateCaseRecordResponse: each finding as the service's JSON has it, field by field; in a
    conformance run also what each destination would be given; for a batch file each record's own
    verdict under Records (absent for a single record, so its answer is as it always was)."""
    el = etree.Element(tns("ValidateCaseRecordResponse"), nsmap={None: TNS})
    _fill_verdict(el, v, with_outbound)
    if v.records:
        records = etree.SubElement(el, tns("Records"))
        for n, r in enumerate(v.records, 1):
            _fill_verdict(etree.SubElement(records, tns("Record"), number=str(n)), r, with_outbound)
    return el


def _fill_verdict(el: etree._Element, v: Verdict, with_outbound: bool) -> None:
    """The schema's Verdict type, in its element order."""
    etree.SubElement(el, tns("Outcome")).text = v.outcome
    etree.SubElement(el, tns("Accepted")).text = "false" if v.blocked else "true"
    findings = etree.SubElement(el, tns("Findings"))
    for f in v.findings:
        fe = etree.SubElement(findings, tns("Finding"))
        for key, tag in _FINDING_FIELDS:
            value = f.get(key)
            if value not in (None, "") or tag in _REQUIRED:
                etree.SubElement(fe, tns(tag)).text = "" if value is None else str(value)
    dest = etree.SubElement(el, tns("Destinations"))
    for d in v.destinations:
        etree.SubElement(dest, tns("Agency")).text = d
    for tl in v.time_limits:
        te = etree.SubElement(el, tns("TimeLimit"), limit=str(tl["limit"]), agency=str(tl["agency"]),
                              lastDayIfDeliveredToday=str(tl["last_day_if_delivered_today"]))
        etree.SubElement(te, tns("NameZh")).text = str(tl["name_zh"])
        etree.SubElement(te, tns("NameEn")).text = str(tl["name_en"])
    if with_outbound:
        for d, body in v.outbound.items():
            etree.SubElement(el, tns("Outbound"), agency=d).text = base64.b64encode(body).decode("ascii")

"""The fixed signature template writes, for any evidence document, the bytes signxml's generic signer
writes (all but the signature value, which ECDSA draws afresh each time), and both verify with signxml
and xmlsec1: the faster signer changes nothing an auditor receives."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from gateway.evidence import document
from gateway.evidence.document import Delivery, Submission
from gateway.evidence.signer import EvidenceSigner, verify

from .test_evidence import XMLSEC, needs_xmlsec

VALUE = re.compile(rb"<ds:SignatureValue>([A-Za-z0-9+/=]+)</ds:SignatureValue>")

TRICKY = "a & b < c > d \" ' \r\n\t 刑事案件 \U0001f600 ]]> &amp;"
DOCS = {
    "submission": document.submission(Submission(
        "m-1", "ab" * 32, "C-1", "POLICE", ["PROC", "COURT"], "2026-01-01T00:00:00Z", "accepted", [],
        "GA-1"), "node-a", "2026-01-01T00:00:01.123456Z"),
    "rejected-tricky": document.submission(Submission(
        "m-2", "cd" * 32, TRICKY, "POLICE", [], "2026-01-01T00:00:00Z", "rejected", [TRICKY, "", "  "]),
        "节点", "2026-01-01T00:00:01Z"),
    "delivery": document.delivery(Delivery(
        "m-1", "C-1", "PROC", "d-1", "ef" * 32, "2026-01-01T00:00:02Z", 3, "01" * 32),
        "node-a", "2026-01-01T00:00:02Z"),
    "delivery-no-answer": document.delivery(Delivery(
        "m-1", "C-1", "PROC", "d-2", "ef" * 32, "2026-01-01T00:00:02Z", 1, ""), "node-a", "2026-01-01T00:00:02Z"),
}


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> EvidenceSigner:
    return EvidenceSigner.load_or_create(tmp_path_factory.mktemp("key") / "evidence-key.pem", "node-a")


@pytest.mark.parametrize("name", sorted(DOCS))
def test_template_writes_what_signxml_writes_and_both_verify(signer: EvidenceSigner, name: str) -> None:
    doc = DOCS[name]
    before = etree.tostring(doc)
    lean, generic = signer.sign(doc), signer.sign_with_signxml(doc)
    assert etree.tostring(doc) == before  # the caller's document is not changed
    assert len(VALUE.findall(lean)) == 1 and len(VALUE.findall(generic)) == 1
    assert VALUE.sub(b"", lean) == VALUE.sub(b"", generic)
    for body in (lean, generic):
        v = verify(body, signer.cert)
        assert v.facts == document.fields(doc)


@needs_xmlsec
@pytest.mark.parametrize("name", sorted(DOCS))
def test_xmlsec1_checks_the_template_signature(signer: EvidenceSigner, name: str, tmp_path: Path) -> None:
    assert XMLSEC is not None
    cert = tmp_path / "cert.pem"
    cert.write_bytes(signer.cert_pem())
    signed = tmp_path / "doc.xml"
    signed.write_bytes(signer.sign(DOCS[name]))
    ok = subprocess.run([XMLSEC, "--verify", "--trusted-pem", str(cert), str(signed)],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "OK" in ok.stdout + ok.stderr, ok.stderr
    value = VALUE.search(signed.read_bytes())
    assert value is not None
    flipped = value.group(1)[:10] + (b"A" if value.group(1)[10:11] != b"A" else b"B") + value.group(1)[11:]
    signed.write_bytes(signed.read_bytes().replace(value.group(1), flipped))
    bad = subprocess.run([XMLSEC, "--verify", "--trusted-pem", str(cert), str(signed)],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0


def test_a_document_without_children_is_refused(signer: EvidenceSigner) -> None:
    with pytest.raises(ValueError, match="child elements"):
        signer.sign(etree.Element(f"{{{document.NS}}}Evidence"))

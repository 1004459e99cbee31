"""Signed evidence of submission and delivery: issued with every receipt and confirmed delivery,
checked by the gateway's verifier and by xmlsec1 (an independent XML-DSig implementation), any
changed field detected, and handed to the sender over REST and SOAP and in the audit bundle."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from typer.testing import CliRunner

from adapters.memory import MemoryOutbound
from gateway.audit.export import export_case
from gateway.cli import app
from gateway.config import parse_config
from gateway.evidence.document import NS
from gateway.evidence.service import documents
from gateway.evidence.signer import EvidenceInvalid, EvidenceSigner, verify
from gateway.model import DeliveryResult, MessageStatus, OutboundMessage, sha256_hex
from gateway.runtime import Gateway

from .support.api import Running
from .support.config import base_config
from .support.records import record
from .support.waiting import wait_for

XMLSEC = shutil.which("xmlsec1")
if XMLSEC is None and os.environ.get("CI") == "true":
    raise RuntimeError("xmlsec1 is missing: tests/system-packages.sh installs it")
needs_xmlsec = pytest.mark.skipif(XMLSEC is None, reason="xmlsec1 is not installed (tests/system-packages.sh)")

ANSWER = b"<Ack>received by PROC</Ack>"


def _answer(m: OutboundMessage) -> DeliveryResult:
    return DeliveryResult.delivered("ok", receipt=ANSWER)


async def _node(tmp_path: Path) -> tuple[Gateway, dict[str, MemoryOutbound]]:
    outs = {"POLICE": MemoryOutbound(), "PROC": MemoryOutbound(_answer), "COURT": MemoryOutbound()}
    gw = Gateway(parse_config(base_config(tmp_path / "data")), outbound=outs)  # type: ignore[arg-type]
    await gw.start()
    return gw, outs


def _xmlsec(doc: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    assert XMLSEC is not None
    return subprocess.run([XMLSEC, "--verify", "--trusted-pem", str(cert), str(doc)],
                          capture_output=True, text=True, timeout=30)


async def _issued(tmp_path: Path) -> tuple[Gateway, str, bytes, bytes]:
    """A node, an accepted record's message id, its submission and its delivery evidence."""
    gw, outs = await _node(tmp_path)
    r = await gw.inbound["police-in"].submit(record(case="EV-1"), sender_message_id="GA-1")  # type: ignore[attr-defined]
    assert r.status == MessageStatus.ACCEPTED and r.evidence
    await wait_for(lambda: len(outs["PROC"].received) == 1)

    async def both() -> bool:
        return len(await documents(gw.store, r.message_id)) == 2

    await wait_for(both, what="evidence of delivery")
    docs = await documents(gw.store, r.message_id)
    assert [d.kind for d in docs] == ["submission", "delivery"] and docs[0].sha256 == r.evidence
    return gw, r.message_id, docs[0].document, docs[1].document


@needs_xmlsec
async def test_submission_and_delivery_evidence_verify_with_xmlsec1_and_the_gateway(tmp_path: Path) -> None:
    gw, mid, sub, dlv = await _issued(tmp_path)
    try:
        cert = tmp_path / "data" / "evidence-cert.pem"
        other = EvidenceSigner.load_or_create(tmp_path / "other" / "evidence-key.pem", "other-node")
        (tmp_path / "other-cert.pem").write_bytes(other.cert_pem())
        for name, body in (("submission.xml", sub), ("delivery.xml", dlv)):
            (tmp_path / name).write_bytes(body)
            ok = _xmlsec(tmp_path / name, cert)
            assert ok.returncode == 0 and "OK" in ok.stdout + ok.stderr, ok.stderr
            assert _xmlsec(tmp_path / name, tmp_path / "other-cert.pem").returncode != 0
        trusted = gw.evidence.signer.cert  # type: ignore[union-attr]
        s, d = verify(sub, trusted), verify(dlv, trusted)
        assert (s.facts["MessageId"], s.facts["Sender"], s.facts["CaseNumber"], s.facts["Decision"],
                s.facts["Agency"], s.facts["Node"], s.facts["SenderMessageId"]) == (
            mid, "POLICE", "EV-1", "accepted", "PROC", "test-node", "GA-1")
        m = await gw.store.get_message(mid)
        assert m is not None and s.facts["ContentHash"] == m.content_hash
        assert (d.facts["Destination"], d.facts["Attempts"], d.facts["AnswerHash"]) == (
            "PROC", "1", sha256_hex(ANSWER))
        assert ANSWER.decode() not in dlv.decode()  # the receiver's answer itself is not the sender's
        with pytest.raises(EvidenceInvalid):
            verify(sub, other.cert)
        # each document's hash is in the exchange log, as the payload of the entry that issued it
        entries = await gw.store.audit_entries(message_id=mid)
        logged = {e.action: e.payload_hash for e in entries if e.action.startswith("evidence-")}
        assert logged == {"evidence-submission": sha256_hex(sub), "evidence-delivery": sha256_hex(dlv)}
        key = tmp_path / "data" / "evidence-key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    finally:
        await gw.stop()


def _leaves(body: bytes) -> list[str]:
    root = etree.fromstring(body)
    return sorted({etree.QName(e).localname for e in root.iter(f"{{{NS}}}*") if e is not root and not len(e)})


SUBMISSION_FIELDS = ["Agency", "CaseNumber", "ContentHash", "Decision", "IssuedAt", "MessageId", "Node",
                     "Reasons", "ReceivedAt", "Sender", "SenderMessageId", "@kind", "@version"]
DELIVERY_FIELDS = ["AnswerHash", "Attempts", "BodyHash", "CaseNumber", "DeliveredAt", "DeliveryId", "Destination",
                   "IssuedAt", "MessageId", "Node"]


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, bytes, Path]:
    tmp = tmp_path_factory.mktemp("evidence")

    async def go() -> tuple[bytes, bytes, bytes]:
        gw, _, sub, dlv = await _issued(tmp)
        try:
            return sub, dlv, gw.evidence.signer.cert_pem()  # type: ignore[union-attr]
        finally:
            await gw.stop()

    sub, dlv, cert = asyncio.run(go())
    (tmp / "cert.pem").write_bytes(cert)
    return sub, dlv, cert, tmp


def _tampered(body: bytes, field: str) -> bytes:
    root = etree.fromstring(body)
    if field == "@kind":
        root.set("kind", "delivery" if root.get("kind") == "submission" else "submission")
    elif field == "@version":
        root.set("version", "2")
    else:
        el = root.find(f".//{{{NS}}}{field}")
        assert el is not None, field
        el.text = (el.text or "") + "0"
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def test_the_fields_tested_are_every_field_issued(issued: tuple[bytes, bytes, bytes, Path]) -> None:
    sub, dlv, _, _ = issued
    assert _leaves(sub) == sorted(f for f in SUBMISSION_FIELDS if not f.startswith("@"))
    assert _leaves(dlv) == DELIVERY_FIELDS


@needs_xmlsec
@pytest.mark.parametrize("kind,field", [("submission", f) for f in SUBMISSION_FIELDS]
                         + [("delivery", f) for f in DELIVERY_FIELDS])
def test_changing_any_field_is_detected(issued: tuple[bytes, bytes, bytes, Path], kind: str, field: str) -> None:
    sub, dlv, cert_pem, tmp = issued
    body = _tampered(sub if kind == "submission" else dlv, field)
    with pytest.raises(EvidenceInvalid):
        verify(body, x509.load_pem_x509_certificate(cert_pem))
    path = tmp / f"{kind}-{field.strip('@')}.xml"
    path.write_bytes(body)
    checked = _xmlsec(path, tmp / "cert.pem")
    assert checked.returncode != 0 and "FAIL" in checked.stdout + checked.stderr


def test_gateway_evidence_verify_exit_codes_and_messages(issued: tuple[bytes, bytes, bytes, Path]) -> None:
    sub, _, _, tmp = issued
    good, bad = tmp / "good.xml", tmp / "bad.xml"
    good.write_bytes(sub)
    bad.write_bytes(_tampered(sub, "Decision"))
    runner = CliRunner()
    ok = runner.invoke(app, ["evidence", "verify", str(good), "--public-key", str(tmp / "cert.pem")])
    assert ok.exit_code == 0 and "证据有效 / VALID" in ok.output and "Decision: accepted" in ok.output
    no = runner.invoke(app, ["evidence", "verify", str(bad), "--public-key", str(tmp / "cert.pem")])
    assert no.exit_code == 1 and "证据无效 / NOT VALID" in no.output and "changed after signing" in no.output
    missing = runner.invoke(app, ["evidence", "verify", str(tmp / "none.xml"), "--public-key", str(tmp / "cert.pem")])
    assert missing.exit_code == 2 and "无法读取 / cannot read" in missing.output
    other = EvidenceSigner.load_or_create(tmp / "k2" / "evidence-key.pem", "n2")
    (tmp / "pub2.pem").write_bytes(other.cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    wrong = runner.invoke(app, ["evidence", "verify", str(good), "--public-key", str(tmp / "pub2.pem")])
    assert wrong.exit_code == 1 and "another key" in wrong.output
    alone = runner.invoke(app, ["evidence", "verify", str(good)])
    assert alone.exit_code == 0 and "--public-key" in alone.output  # says what such a check cannot show


async def test_refused_record_gets_evidence_naming_the_reasons(tmp_path: Path) -> None:
    gw, _ = await _node(tmp_path)
    try:
        r = await gw.inbound["police-in"].submit(b"<not-a-record/>")  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED and r.evidence
        doc = (await documents(gw.store, r.message_id))[0]
        v = verify(doc.document, gw.evidence.signer.cert)  # type: ignore[union-attr]
        assert v.facts["Decision"] == "rejected" and v.facts["Reason"] and v.facts["Reason"] == "\n".join(r.reasons)
        again = await gw.inbound["police-in"].submit(b"<not-a-record/>")  # type: ignore[attr-defined]
        assert again.duplicate and again.evidence == r.evidence  # a resend names the original evidence
    finally:
        await gw.stop()


async def test_sender_reads_evidence_over_rest_and_receiver_may_not(api: Running) -> None:
    r = await api.submit("POLICE", record(case="EV-REST"))
    assert r.status_code == 202
    receipt = r.json()
    mid = receipt["message_id"]
    assert receipt["evidence_href"] == f"/api/v1/messages/{mid}/evidence/{receipt['evidence_sha256']}"
    await wait_for(lambda: len(api.outs["PROC"].received) == 1)
    for _ in range(200):
        listed = (await api.call("POLICE", "GET", f"/api/v1/messages/{mid}/evidence")).json()["evidence"]
        if len(listed) == 2:
            break
        await asyncio.sleep(0.02)
    assert [e["kind"] for e in listed] == ["submission", "delivery"] and listed[1]["destination"] == "PROC"
    doc = await api.call("POLICE", "GET", receipt["evidence_href"])
    assert doc.status_code == 200 and doc.headers["content-type"].startswith("application/xml")
    assert sha256_hex(doc.content) == receipt["evidence_sha256"]
    cert = await api.call("POLICE", "GET", "/api/v1/evidence/certificate")
    assert verify(doc.content, x509.load_pem_x509_certificate(cert.content)).facts["MessageId"] == mid
    assert (await api.call("PROC", "GET", f"/api/v1/messages/{mid}/evidence")).status_code == 403
    assert (await api.call("AUDITOR", "GET", f"/api/v1/messages/{mid}/evidence")).status_code == 200
    page = (await api.call("POLICE", "GET", "/api/v1/receipts")).json()["receipts"]
    mine = next(p for p in page if p["message_id"] == mid)
    assert [e["kind"] for e in mine["evidence"]] == ["submission", "delivery"]


async def test_delivery_and_its_evidence_are_one_write(tmp_path: Path) -> None:
    gw, outs = await _node(tmp_path)
    try:
        r = await gw.inbound["police-in"].submit(record(case="EV-ATOMIC"))  # type: ignore[attr-defined]
        await wait_for(lambda: len(outs["PROC"].received) == 1)

        async def delivered() -> bool:
            return any(e.action == "delivered" for e in await gw.store.audit_entries(message_id=r.message_id))

        await wait_for(delivered)
        entries = await gw.store.audit_entries(message_id=r.message_id)
        seq = {e.action: e.seq for e in entries}
        assert seq["evidence-delivery"] == seq["delivered"] + 1  # written in the delivery's own transaction
        d = next(e for e in entries if e.action == "evidence-delivery")
        assert await gw.store.get_blob(d.payload_hash) is not None
    finally:
        await gw.stop()


async def test_soap_get_receipts_carries_the_signed_documents(tmp_path: Path) -> None:
    from .test_soap import _config, _envelope, _post
    from .test_soap import serving as soap_serving

    async with soap_serving(_config(tmp_path), PROC=MemoryOutbound(_answer)) as (gw, base):
        url = f"{base}/soap/police-soap"
        b64 = base64.b64encode(record(case="EV-SOAP")).decode()
        r = await _post(url, _envelope(f"<cx:SubmitCaseRecord><cx:Record>{b64}</cx:Record></cx:SubmitCaseRecord>")
                        .encode())
        sent = etree.fromstring(r.content)
        named = sent.xpath("//*[local-name()='Receipt']/*[local-name()='Evidence']")
        assert len(named) == 1 and named[0].get("kind") == "submission"
        for _ in range(200):
            page = await _post(url, _envelope("<cx:GetReceipts><cx:After>0</cx:After></cx:GetReceipts>").encode(),
                               action="urn:cn:justice:case-exchange:soap:1/GetReceipts")
            evs = etree.fromstring(page.content).xpath("//*[local-name()='Evidence']")
            if len(evs) == 2:
                break
            await asyncio.sleep(0.02)
        assert [e.get("kind") for e in evs] == ["submission", "delivery"]
        assert evs[0].get("sha256") == named[0].get("sha256")
        body = base64.b64decode(evs[1].text or "")
        assert sha256_hex(body) == evs[1].get("sha256")
        assert verify(body, gw.evidence.signer.cert).facts["Destination"] == "PROC"  # type: ignore[union-attr]


async def test_audit_bundle_holds_the_case_evidence_and_its_certificate(tmp_path: Path) -> None:
    gw, mid, sub, dlv = await _issued(tmp_path)
    try:
        await gw.checkpoint()
        out = await export_case(gw.store, "EV-1", tmp_path / "bundle", gw.signer,  # type: ignore[arg-type]
                                evidence_cert=gw.evidence.signer.cert_pem())  # type: ignore[union-attr]
    finally:
        await gw.stop()
    folder = out.directory / "evidence"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"{mid}-submission-{sha256_hex(sub)[:12]}.xml",
                            f"{mid}-delivery-{sha256_hex(dlv)[:12]}.xml", "evidence-cert.pem"])
    if XMLSEC is not None:
        for n in names:
            if n.endswith(".xml"):
                assert _xmlsec(folder / n, folder / "evidence-cert.pem").returncode == 0


async def test_a_receiver_sees_only_its_own_delivery_evidence_in_the_history(api: Running) -> None:
    r = await api.submit("COURT", record(case="EV-JUDGMENT", stage="trial", action="judgment", sender="COURT"))
    assert r.status_code == 202, r.text
    mid = r.json()["message_id"]

    async def both_evidenced() -> bool:
        steps = (await api.call("OPERATOR", "GET", f"/api/v1/messages/{mid}/history")).json()["steps"]
        return sum(s["action"] == "evidence-delivery" for s in steps) == 2

    await wait_for(both_evidenced)
    steps = (await api.call("PROC", "GET", f"/api/v1/messages/{mid}/history")).json()["steps"]
    shown = [s["detail"] for s in steps if s["action"] == "evidence-delivery"]
    assert len(shown) == 1 and "PROC" in shown[0] and "POLICE" not in shown[0]

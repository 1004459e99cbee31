"""SOAP adapters against independent SOAP stacks on loopback: zeep calling the gateway's endpoint
(served by uvicorn), hand-written legacy envelopes, and deliveries to a spyne service."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
from lxml import etree
from zeep.wsse.username import UsernameToken

from adapters.memory import MemoryOutbound
from adapters.soap import OutboundSettings
from adapters.soap.envelope import SOAP11, SOAP12, TNS
from adapters.soap.outbound import SoapOutbound, fault_is_client
from adapters.soap.wsse import NonceCache, verify_username_token
from adapters.testing import outbound_context
from gateway.api.app import create_app
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.files import FileStore
from gateway.model import Attachment, OutboundMessage
from gateway.runtime import Gateway
from gateway.sim.records import MINIMAL_CONTENT

from .support.config import base_config
from .support.records import NS, record
from .support.serving import serving as serve_app
from .support.waiting import wait_for

try:
    from gateway.sim.soap_agency import SoapAgency, indict, username_token
except ImportError as e:  # spyne missing: skip, but never in CI
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(f"spyne is not installed ({e}); install the test extras", allow_module_level=True)

POLICE_PW = "police-secret-1"
PROC_PW = "proc-secret-2"
ACTION = f"{TNS}/SubmitCaseRecord"


def _config(tmp_path: Path, proc_out: dict[str, Any] | None = None, **soap_in: Any) -> dict[str, Any]:
    os.environ["SOAP_TEST_POLICE_PW"] = POLICE_PW
    os.environ["SOAP_TEST_PROC_PW"] = PROC_PW
    cfg = base_config(tmp_path / "data")
    police, proc = cfg["agencies"][0], cfg["agencies"][1]
    police["inbound"].append(
        {
            "name": "police-soap",
            "adapter": "soap",
            "settings": {"password": {"env": "SOAP_TEST_POLICE_PW"}, **soap_in},
        }
    )
    proc["inbound"].append(
        {"name": "proc-soap", "adapter": "soap", "settings": {"password": {"env": "SOAP_TEST_PROC_PW"}}}
    )
    if proc_out is not None:
        proc["outbound"].update({"adapter": "soap", "settings": proc_out})
        proc["outbound"]["retry"]["initial_backoff"] = 0.05
    return cfg


@contextlib.asynccontextmanager
async def serving(cfg: dict[str, Any], **outs: MemoryOutbound) -> AsyncIterator[tuple[Gateway, str]]:
    """A gateway under a real uvicorn on a loopback port; yields it and its base URL."""
    gw = Gateway(parse_config(cfg), outbound=outs)  # type: ignore[arg-type]
    async with serve_app(create_app(gw)) as url:
        yield gw, url


async def _post(
    url: str, body: bytes, content_type: str = "text/xml; charset=utf-8", action: str | None = ACTION
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if action is not None:
        headers["SOAPAction"] = f'"{action}"'
    async with httpx.AsyncClient(timeout=10) as c:
        return await c.post(url, content=body, headers=headers)


def _receipt_status(resp: httpx.Response) -> str:
    doc = etree.fromstring(resp.content)
    return str(doc.xpath("string(//*[local-name()='Receipt']/*[local-name()='Status'])"))


def _fault(resp: httpx.Response) -> tuple[str, str, str]:
    """(code, text, rule) of a SOAP 1.1 or 1.2 fault."""
    doc = etree.fromstring(resp.content)
    code = doc.xpath("string(//faultcode | //*[local-name()='Code']/*[local-name()='Value'])")
    text = doc.xpath("string(//faultstring | //*[local-name()='Reason']/*[local-name()='Text'])")
    rule = doc.xpath(f"string(//*[namespace-uri()='{TNS}' and local-name()='Rule'])")
    return str(code), str(text), str(rule)


def _envelope(op_xml: str, *, version: str = SOAP11, header: str | None = None, decl: str = "") -> str:
    hdr = username_token("POLICE", POLICE_PW) if header is None else header
    return (
        f'{decl}<s:Envelope xmlns:s="{version}" xmlns:cx="{TNS}"><s:Header>{hdr}</s:Header>'
        f"<s:Body>{op_xml}</s:Body></s:Envelope>"
    )


def _submit_b64(rec: bytes, mid: str = "") -> str:
    m = f"<cx:MessageId>{mid}</cx:MessageId>" if mid else ""
    b64 = base64.b64encode(rec).decode()
    return f"<cx:SubmitCaseRecord>{m}<cx:Record>{b64}</cx:Record></cx:SubmitCaseRecord>"


# -- inbound: zeep as the client -------------------------------------------------------------
async def test_zeep_loads_the_gateway_wsdl_and_submits(tmp_path: Path) -> None:
    court = MemoryOutbound()
    async with serving(_config(tmp_path), COURT=court) as (gw, base):
        url = f"{base}/soap/police-soap"

        def call() -> tuple[Any, Any, Any, Any]:
            client = zeep.Client(f"{url}?wsdl", wsse=UsernameToken("POLICE", POLICE_PW, use_digest=True))
            r = client.service.SubmitCaseRecord(MessageId="Z-1", Record=record(case="ZEEP-1"))
            soap12 = client.bind("CaseExchangeService", "CaseExchangeSoap12")
            ping = soap12.Ping(Echo="hello")
            page = client.service.GetReceipts(After=0, Limit=10)
            notices = client.service.GetNotices()
            return r, ping, page, notices

        receipt, ping, page, notices = await asyncio.to_thread(call)
        assert receipt.Status == "accepted" and receipt.CaseNumber == "ZEEP-1"
        assert receipt.Destinations.Agency == ["PROC"]
        assert ping.Echo == "hello" and ping.Agency == "POLICE"
        assert [r.MessageId for r in page.Receipt] == [receipt.MessageId]
        assert page.Receipt[0].Deliveries.Delivery[0].Agency == "PROC"
        assert notices.Receipt == [] and notices.Next > 0
        msg = await gw.store.get_message(receipt.MessageId)
        assert msg is not None and msg.channel == "police-soap" and msg.sender_message_id == "Z-1"


# -- inbound: envelopes as legacy systems write them ------------------------------------------
async def test_raw_soap11_and_12_envelopes_with_and_without_declaration(tmp_path: Path) -> None:
    async with serving(_config(tmp_path)) as (gw, base):
        url = f"{base}/soap/police-soap"
        r = await _post(url, _envelope(_submit_b64(record(case="RAW-1"))).encode())
        assert r.status_code == 200 and _receipt_status(r) == "accepted", r.text
        assert r.headers["content-type"].startswith("text/xml")
        r = await _post(
            url,
            _envelope(
                _submit_b64(record(case="RAW-2")), decl='<?xml version="1.0" encoding="UTF-8"?>\n'
            ).encode(),
        )
        assert _receipt_status(r) == "accepted", r.text
        r = await _post(
            url,
            _envelope(_submit_b64(record(case="RAW-3")), version=SOAP12).encode(),
            content_type=f'application/soap+xml; charset=utf-8; action="{ACTION}"',
            action=None,
        )
        assert r.status_code == 200 and _receipt_status(r) == "accepted", r.text
        assert r.headers["content-type"].startswith("application/soap+xml")
        assert etree.fromstring(r.content).tag == f"{{{SOAP12}}}Envelope"
        # no SOAPAction at all (some stacks send none): the Body decides
        r = await _post(url, _envelope(_submit_b64(record(case="RAW-4"))).encode(), action=None)
        assert _receipt_status(r) == "accepted", r.text


async def test_gb18030_records_pass_byte_exact(tmp_path: Path) -> None:
    legacy = (
        f'<?xml version="1.0" encoding="GB18030"?>\n<CaseRecord xmlns="{NS}" version="1.0">'
        "<CaseNumber>GB-1</CaseNumber><Stage>prosecution-review</Stage>"
        "<Action>transfer-for-prosecution</Action><Sender>POLICE</Sender>"
        "<LocalNumbers><LocalNumber agency='POLICE'>L-GB-1</LocalNumber></LocalNumbers>"
        f"{MINIMAL_CONTENT}<Content><Note>犯罪嫌疑人张三，太原市迎泽区𠀀</Note></Content></CaseRecord>"
    ).encode("gb18030")
    async with serving(_config(tmp_path)) as (gw, base):
        url = f"{base}/soap/police-soap"
        # base64 in a GB18030 envelope: the record's bytes arrive exactly as written
        env = _envelope(_submit_b64(legacy), decl='<?xml version="1.0" encoding="GB18030"?>')
        r = await _post(url, env.encode("gb18030"), content_type="text/xml; charset=GB18030")
        assert _receipt_status(r) == "accepted", r.text
        mid = etree.fromstring(r.content).xpath("string(//*[local-name()='MessageId'])")
        msg = await gw.store.get_message(mid)
        assert msg is not None
        assert await gw.store.get_blob(msg.content_hash) == legacy
        # inline XML in a GB18030 envelope that names its charset only in Content-Type
        inline = (
            f'<cx:SubmitCaseRecord><cx:RecordXml><CaseRecord xmlns="{NS}" version="1.0">'
            "<CaseNumber>GB-2</CaseNumber><Stage>prosecution-review</Stage>"
            "<Action>transfer-for-prosecution</Action><Sender>POLICE</Sender>"
            "<LocalNumbers><LocalNumber agency='POLICE'>L-GB-2</LocalNumber></LocalNumbers>"
            f"{MINIMAL_CONTENT}<Content><Note>被害人李四</Note></Content></CaseRecord></cx:RecordXml></cx:SubmitCaseRecord>"
        )
        r = await _post(url, _envelope(inline).encode("gb18030"), content_type="text/xml; charset=GB18030")
        assert _receipt_status(r) == "accepted", r.text
        mid = etree.fromstring(r.content).xpath("string(//*[local-name()='MessageId'])")
        msg = await gw.store.get_message(mid)
        assert msg is not None
        raw = await gw.store.get_blob(msg.content_hash)
        assert raw is not None and "被害人李四" in raw.decode("utf-8") and b"soap" not in raw.lower()
        # a comment or processing instruction before the inline record is not the record (it was a 500)
        commented = inline.replace("GB-2", "GB-3").replace(
            "<cx:RecordXml>", "<cx:RecordXml><!-- exported --><?legacy v2?>\n")
        r = await _post(url, _envelope(commented).encode("gb18030"), content_type="text/xml; charset=GB18030")
        assert r.status_code == 200 and _receipt_status(r) == "accepted", r.text


def _listing(rec: bytes, name: str, data: bytes) -> bytes:
    """The record with its dossier listing exactly the one file sent beside it."""
    import hashlib
    import re

    file = (f"<Dossier><File id='f1'><Name>{name}</Name><MediaType>application/pdf</MediaType>"
            f"<Size>{len(data)}</Size><SHA256>{hashlib.sha256(data).hexdigest()}</SHA256></File></Dossier>")
    return re.sub(rb"<Dossier>.*</Dossier>", file.encode(), rec)


async def test_mtom_record_and_dossier_attachment(tmp_path: Path) -> None:
    scan = os.urandom(300_000)
    rec = _listing(record(case="MTOM-1"), "scan.pdf", scan)
    op = (
        '<cx:SubmitCaseRecord><cx:Record><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" '
        'href="cid:record@x"/></cx:Record><cx:Attachment name="scan.pdf" mediaType="application/pdf">'
        '<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:scan@x"/></cx:Attachment>'
        "</cx:SubmitCaseRecord>"
    )
    b = "MIME_boundary_42"
    body = (
        f'--{b}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="text/xml"\r\n'
        f"Content-ID: <root@x>\r\n\r\n{_envelope(op)}\r\n"
        f"--{b}\r\nContent-Type: application/xml\r\nContent-ID: <record@x>\r\n\r\n"
    ).encode()
    body += rec + f"\r\n--{b}\r\nContent-Type: application/pdf\r\nContent-ID: <scan@x>\r\n\r\n".encode()
    body += scan + f"\r\n--{b}--\r\n".encode()
    ctype = (
        f'multipart/related; type="application/xop+xml"; start="<root@x>"; '
        f'start-info="text/xml"; boundary="{b}"'
    )
    async with serving(_config(tmp_path)) as (gw, base):
        r = await _post(f"{base}/soap/police-soap", body, content_type=ctype)
        assert _receipt_status(r) == "accepted", r.text
        mid = etree.fromstring(r.content).xpath("string(//*[local-name()='MessageId'])")
        msg = await gw.store.get_message(mid)
        assert msg is not None and await gw.store.get_blob(msg.content_hash) == rec
        import hashlib

        files = FileStore.for_data_dir(gw.config.gateway.data_dir)
        with files.open(hashlib.sha256(scan).hexdigest()) as f:
            assert f.read() == scan


_B = "MIME_b"
_MTOM_TYPE = f'multipart/related; type="application/xop+xml"; start="<root@x>"; boundary="{_B}"'


def _mtom_body(*parts: tuple[str, bytes], close: bool = True) -> bytes:
    body = b"".join(f"--{_B}\r\nContent-Type: application/octet-stream\r\nContent-ID: <{cid}>\r\n\r\n".encode()
                    + data + b"\r\n" for cid, data in parts)
    return body + (f"--{_B}--\r\n".encode() if close else b"")


def test_mtom_parts_are_views_into_the_body_and_the_root_is_the_start_part() -> None:
    from adapters.soap import mtom

    scan = os.urandom(100_000) + f"\r\n--{_B[:-1]}".encode()  # the start of a delimiter is data
    body = b"preamble\r\n" + _mtom_body(("scan@x", scan), ("root@x", b"<s:Envelope/>")) + b"epilogue"
    root, root_type, parts = mtom.split(body, _MTOM_TYPE)
    assert root == b"<s:Envelope/>" and root_type == "application/octet-stream"
    assert parts["scan@x"] == scan and set(parts) == {"scan@x", "root@x"}
    assert parts["scan@x"].obj is not None and len(parts["scan@x"].obj) >= len(scan)  # a view, not a copy
    body = _mtom_body(("scan@x", scan))
    assert mtom.split(body, _MTOM_TYPE)[2]["scan@x"].obj is body  # no preamble: a view into the body itself


@pytest.mark.parametrize("body, ctype, rule, words", [
    (_mtom_body(("root@x", b"<e/>")), "multipart/related", "mtom.boundary", "names no boundary"),
    (_mtom_body(("root@x", b"<e/>" * 100))[:60], _MTOM_TYPE, "mtom.truncated", "cut short"),
    (_mtom_body(("root@x", b"<e/>"), close=False), _MTOM_TYPE, "mtom.truncated", "cut short"),
    (f"--{_B}--\r\n".encode(), _MTOM_TYPE, "mtom.empty", "no parts"),
    (b"<s:Envelope/>", _MTOM_TYPE, "mtom.empty", "no parts"),
    (f"--{_B}\r\nno colon here\r\n\r\n<e/>\r\n--{_B}--".encode(), _MTOM_TYPE, "mtom.malformed", "malformed"),
])
def test_broken_mtom_requests_are_client_faults(body: bytes, ctype: str, rule: str, words: str) -> None:
    from adapters.soap import envelope, mtom

    with pytest.raises(envelope.SoapFault, match=words) as e:
        mtom.split(body, ctype)
    assert e.value.client and e.value.rule == rule


# -- inbound: bad input ---------------------------------------------------------------------------
async def test_bad_requests_get_faults_are_logged_and_lose_nothing(tmp_path: Path) -> None:
    proc = MemoryOutbound()
    async with serving(_config(tmp_path, max_envelope_bytes=20_000), PROC=proc) as (gw, base):
        url = f"{base}/soap/police-soap"
        good = await _post(url, _envelope(_submit_b64(record(case="KEEP-1"), mid="K-1")).encode())
        assert _receipt_status(good) == "accepted"
        xxe = '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + _envelope(
            "<cx:Ping><cx:Echo>&x;</cx:Echo></cx:Ping>"
        )
        token = username_token("POLICE", POLICE_PW)
        cases: list[tuple[str, bytes, str | None, str, str]] = [
            (
                "malformed",
                b"<s:Envelope xmlns:s='" + SOAP11.encode() + b"'><s:Body>",
                ACTION,
                "xml.malformed",
                "not well-formed",
            ),
            ("not soap", record(), ACTION, "soap.envelope", "not a SOAP envelope"),
            (
                "unknown op",
                _envelope("<cx:DeleteCase/>").encode(),
                None,
                "soap.operation",
                "unknown operation",
            ),
            (
                "wrong action",
                _envelope("<cx:Ping/>").encode(),
                f"{TNS}/Erase",
                "soap.action",
                "does not match",
            ),
            ("entities", xxe.encode(), None, "xml.doctype-forbidden", "DOCTYPE"),
            (
                "too large",
                _envelope(_submit_b64(os.urandom(30_000))).encode(),
                ACTION,
                "soap.too-large",
                "over this endpoint's limit",
            ),
            (
                "wrong password",
                _envelope("<cx:Ping/>", header=username_token("POLICE", "guess")).encode(),
                None,
                "wsse.credentials",
                "wrong user name or password",
            ),
            ("no token", _envelope("<cx:Ping/>", header="").encode(), None, "wsse.missing", "UsernameToken"),
            ("first use", _envelope("<cx:Ping/>", header=token).encode(), None, "", ""),
            ("replayed", _envelope("<cx:Ping/>", header=token).encode(), None, "wsse.replay", "already used"),
        ]
        for name, body, action, rule, words in cases:
            r = await _post(url, body, action=action)
            if not rule:
                assert r.status_code == 200, (name, r.text)
                continue
            code, text, got_rule = _fault(r)
            assert r.status_code == 500 and code == "soap:Client", (name, r.text)
            assert got_rule == rule and words in text, (name, text)
            assert "Traceback" not in r.text
        r = await _post(
            url,
            _envelope("<cx:Ping/>", version=SOAP12, header="").encode(),
            content_type="application/soap+xml; charset=utf-8",
            action=None,
        )
        assert r.status_code == 400 and _fault(r)[0] == "soap:Sender"
        await gw.refusals.flush()  # a refusal like one logged moments ago is counted, then logged with its count
        entries = await gw.store.audit_entries()
        refused = [e for e in entries if e.action == "refused"]
        repeats = sum(json.loads(e.detail)["repeats"] for e in entries if e.action == "refusals-repeated")
        assert len(refused) + repeats == 10
        assert any('"rule":"wsse.replay"' in e.detail for e in refused)
        mid = etree.fromstring(good.content).xpath("string(//*[local-name()='MessageId'])")

        async def delivered() -> bool:
            return (await gw.store.get_deliveries(mid))[0].state == "delivered"

        await wait_for(delivered)
        assert [m.case_number for m in proc.received] == ["KEEP-1"]


@pytest.mark.postgres
async def test_a_token_replayed_to_another_node_is_refused(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two nodes on one PostgreSQL: a Nonce used at one is refused at the other."""
    monkeypatch.setenv("SOAP_TEST_DSN", pg_dsn)
    configs = []
    for node in ("soap-a", "soap-b"):
        cfg = _config(tmp_path / node)
        cfg["gateway"].update(node=node, store={"backend": "postgres", "dsn": {"env": "SOAP_TEST_DSN"}})
        configs.append(cfg)
    token = username_token("POLICE", POLICE_PW)
    ping = _envelope("<cx:Ping/>", header=token).encode()
    async with serving(configs[0]) as (_, base_a), serving(configs[1]) as (gw_b, base_b):
        assert (await _post(f"{base_a}/soap/police-soap", ping, action=None)).status_code == 200
        r = await _post(f"{base_b}/soap/police-soap", ping, action=None)
        assert r.status_code == 500 and _fault(r)[2] == "wsse.replay", r.text
        fresh = _envelope("<cx:Ping/>", header=username_token("POLICE", POLICE_PW)).encode()
        assert (await _post(f"{base_b}/soap/police-soap", fresh, action=None)).status_code == 200
        assert await gw_b.store.claim_once("k", time.time() - 1)  # an expired claim is taken over
        assert await gw_b.store.claim_once("k", time.time() + 60)
        assert not await gw_b.store.claim_once("k", time.time() + 60)


@pytest.mark.parametrize(("key", "value"), [
    ("wsdl", "http://gateway:PASS@proc.test/CaseService?wsdl"),
    ("wsdl", "https://proc.test/CaseService?wsdl&password=PASS"),
    ("address", "https://proc.test/CaseService?sig=PASS"),
])
def test_a_password_in_a_wsdl_or_address_url_is_refused(tmp_path: Path, key: str, value: str) -> None:
    settings = {"wsdl": "/srv/wsdl/proc@2024.wsdl", key: value}  # a file path may hold an @
    with pytest.raises(ConfigError) as refused:
        parse_config(_config(tmp_path, settings), source="gw.yaml")
    said = str(refused.value)
    assert f"agencies[1].outbound.settings.{key}: " in said and "secret reference" in said and "PASS" not in said
    assert OutboundSettings(wsdl="/srv/wsdl/proc@2024.wsdl", address="https://proc.test/CaseService")


def test_username_token_rules() -> None:
    nonces = NonceCache(300)

    def check(header: str, *, fresh: bool = True, now: float | None = None) -> None:
        verify_username_token(etree.fromstring(f"<h>{header}</h>"), username="A", password="pw",
                              nonces=nonces, require_fresh=fresh, now=now)

    token = username_token("A", "pw")
    check(token)
    with pytest.raises(Exception, match="already used"):
        check(token)
    with pytest.raises(Exception, match="outside the 300 s window"):
        check(username_token("A", "pw"), now=time.time() + 3600)
    with pytest.raises(Exception, match="wrong user name"):
        check(username_token("B", "pw"))
    text = (
        '<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-'
        'secext-1.0.xsd"><wsse:UsernameToken><wsse:Username>A</wsse:Username><wsse:Password>pw'
        "</wsse:Password></wsse:UsernameToken></wsse:Security>"
    )
    check(text, fresh=False)
    with pytest.raises(Exception, match="needs a Nonce and a Created"):
        check(text)


def test_fault_codes_tell_whether_to_retry() -> None:
    assert fault_is_client("soap11env:Client.Refused") and fault_is_client("soap:Sender")
    assert fault_is_client("{http://www.w3.org/2003/05/soap-envelope}Sender")
    assert not fault_is_client("soap11env:Server") and not fault_is_client("env:Receiver")
    assert not fault_is_client(None)


# -- outbound: zeep to a spyne service ----------------------------------------------------------------
@pytest.fixture
def agency() -> Any:
    a = SoapAgency()
    a.start()
    yield a
    a.stop()


def _outbound(agency: SoapAgency, **extra: Any) -> dict[str, Any]:
    return {
        "wsdl": agency.wsdl_url,
        "case_field": "CaseNumber",
        "read_timeout": 0.4,
        "connect_timeout": 0.4,
        "accepted_xpath": "string(//*[local-name()='Status'])='accepted'",
        **extra,
    }


async def test_dossier_files_go_inline_to_a_soap_service(tmp_path: Path, agency: SoapAgency) -> None:
    """Files taken from a drop (in the file store) reach the spyne service byte-exact; without an
    attachment_field the delivery says they stayed behind; over the limit it is dead-lettered."""
    scan, photo = b"%PDF-1.4 scanned interrogation record", bytes(range(256)) * 40
    settings = _outbound(agency, attachment_field="Dossier/DossierFile", read_timeout=5.0)  # a dossier takes longer
    async with serving(_config(tmp_path, settings)) as (gw, _base):
        files = FileStore.for_data_dir(gw.config.gateway.data_dir)
        atts = tuple(Attachment(name, *files.put_stream([data]), media)
                     for name, data, media in (("scan.pdf", scan, "application/pdf"),
                                               ("photo.jpg", photo, "image/jpeg")))
        message = OutboundMessage("d1", "m1", "m1:PROC", "PROC", "DOS-1", record("DOS-1"), attachments=atts)
        adapter = gw.outbound["PROC"]
        result = await adapter.deliver(message)
        assert result.outcome == "delivered", result.detail
        assert agency.arrivals[-1].files == {"scan.pdf": scan, "photo.jpg": photo}

        adapter.settings = adapter.settings.model_copy(update={"max_attachment_bytes": len(photo)})  # type: ignore[attr-defined]
        big = await adapter.deliver(OutboundMessage("d2", "m2", "m2:PROC", "PROC", "DOS-2", record("DOS-2"),
                                                    attachments=atts))
        assert big.outcome == "permanent" and "over the 10,240 this SOAP destination takes inline" in big.detail
        adapter.settings = adapter.settings.model_copy(update={"attachment_field": None})  # type: ignore[attr-defined]
        bare = await adapter.deliver(OutboundMessage("d3", "m3", "m3:PROC", "PROC", "DOS-3", record("DOS-3"),
                                                     attachments=atts))
        assert bare.outcome == "delivered" and "2 dossier file(s) not sent" in bare.detail
        assert agency.arrivals[-1].files == {}


async def test_down_slow_server_faults_then_all_arrive_in_order(tmp_path: Path, agency: SoapAgency) -> None:
    async with serving(_config(tmp_path, _outbound(agency))) as (gw, base):
        adapter = gw.outbound["PROC"]
        # load the WSDL once while the service is up, then take it down
        probe = await adapter.deliver(
            OutboundMessage("d0", "m0", "probe:PROC", "PROC", "PROBE", record("PROBE"))
        )
        assert probe.outcome == "delivered", probe.detail
        agency.down()
        police = gw.inbound["police-in"]
        mids = []
        for i in range(3):
            for case in ("CASE-A", "CASE-B"):
                r = await police.submit(record(case=case, extra=f"{case}#{i}"))  # type: ignore[attr-defined]
                mids.append(r.message_id)

        async def attempts_with(words: str) -> bool:
            for mid in mids:
                d = (await gw.store.get_deliveries(mid))[0]
                if words in d.reason:
                    return True
            return False

        await wait_for(lambda: attempts_with("could not reach"))
        agency.slow_seconds = 1.0
        agency.mode = "slow"
        agency.start()
        await wait_for(lambda: attempts_with("timed out"))
        agency.mode = "server-fault"
        await wait_for(lambda: attempts_with("temporarily unavailable"))
        agency.mode = "up"

        async def all_delivered() -> bool:
            states = [(await gw.store.get_deliveries(m))[0].state for m in mids]
            return states == ["delivered"] * len(mids)

        await wait_for(all_delivered, 20)
        notes = {
            c: [
                etree.fromstring(a.record).findtext(f"{{{NS}}}Content/{{{NS}}}Note")
                for a in agency.arrivals
                if a.case_number == c
            ]
            for c in ("CASE-A", "CASE-B")
        }
        assert notes == {c: [f"{c}#{i}" for i in range(3)] for c in ("CASE-A", "CASE-B")}
        assert (
            len({a.key for a in agency.arrivals}) == len(agency.arrivals) == 7
        )  # the probe + six, once each
        assert adapter.wsdl_loads == 1  # type: ignore[attr-defined]
        assert (tmp_path / "data" / "outbox" / "proc-out" / "zeep-cache.db").exists()  # the channel's own folder


async def test_client_fault_dead_letters_at_once(tmp_path: Path, agency: SoapAgency) -> None:
    agency.mode = "client-fault"
    async with serving(_config(tmp_path, _outbound(agency))) as (gw, base):
        r = await gw.inbound["police-in"].submit(record(case="REFUSE-1"))  # type: ignore[attr-defined]

        async def dead() -> bool:
            return (await gw.store.get_deliveries(r.message_id))[0].state == "dead"

        await wait_for(dead)
        d = (await gw.store.get_deliveries(r.message_id))[0]
        assert "does not meet the acceptance standard" in d.reason and "Client" in d.reason
        assert d.attempts == 1 and agency.calls == 1


async def test_procuratorate_decision_comes_back_over_soap(tmp_path: Path) -> None:
    agency = SoapAgency(decide=indict).start()
    court = MemoryOutbound()
    try:
        async with serving(_config(tmp_path, _outbound(agency)), COURT=court) as (gw, base):
            agency.call_back(f"{base}/soap/proc-soap", "PROC", PROC_PW)
            r = await gw.inbound["police-in"].submit(record(case="FLOW-1"))  # type: ignore[attr-defined]
            assert r.destinations == ("PROC",)

            async def indicted() -> bool:
                return any(m.case_number == "FLOW-1" for m in court.received)

            await wait_for(indicted)
            assert b"<Action>indictment</Action>" in court.received[0].body
            assert agency.callback_errors == []
    finally:
        agency.stop()


async def test_wsdl_is_cached_across_restarts(tmp_path: Path, agency: SoapAgency) -> None:
    settings = OutboundSettings(wsdl=agency.wsdl_url, case_field="CaseNumber")
    first = SoapOutbound(settings, outbound_context(tmp_path, agency="PROC"))
    assert (await first.deliver(_message("CACHE-1"))).outcome == "delivered"
    assert first.cache_path.stat().st_mode & 0o077 == 0, "fetched WSDLs are the node's user's only"
    await first.aclose()
    agency.down()  # the WSDL URL is gone now; a restarted adapter still starts from the cache
    again = SoapOutbound(settings, outbound_context(tmp_path, agency="PROC"))
    result = await again.deliver(_message("CACHE-2"))
    assert result.outcome == "transient" and "could not reach the SOAP service" in result.detail
    assert again.wsdl_loads == 1
    await again.aclose()


async def test_zeep_delivery_with_password_digest_to_the_gateway_endpoint(tmp_path: Path) -> None:
    """The outbound adapter meets the inbound endpoint: WSDL, WS-Security digest, base64 and inline XML."""
    court = MemoryOutbound()
    async with serving(_config(tmp_path), COURT=court) as (gw, base):
        os.environ["SOAP_TEST_OUT_PW"] = PROC_PW
        common: dict[str, Any] = {
            "wsdl": f"{base}/soap/proc-soap?wsdl", "port": "CaseExchangeSoap12", "username": "PROC",
            "password": {"env": "SOAP_TEST_OUT_PW"},
            "accepted_xpath": "string(//*[local-name()='Receipt']/*[local-name()='Status'])='accepted'",
        }
        def indictment(case: str) -> bytes:
            return record(case=case, stage="trial", action="indictment", sender="PROC")

        for case, extra in (("LOOP-1", {}), ("LOOP-2", {"record_field": "RecordXml", "record_as": "xml"})):
            settings = OutboundSettings.model_validate({**common, **extra})
            out = SoapOutbound(settings, outbound_context(tmp_path, agency="GW"))
            result = await out.deliver(_message(case, indictment(case)))
            assert result.outcome == "delivered", result.detail
            assert b"<Status>accepted</Status>" in result.receipt.replace(b"ns0:", b"")
            await out.aclose()
        wrong_user = OutboundSettings.model_validate({**common, "username": "POLICE"})
        wrong = SoapOutbound(wrong_user, outbound_context(tmp_path, agency="GW"))
        refused = await wrong.deliver(_message("LOOP-3", indictment("LOOP-3")))
        assert refused.outcome == "permanent" and "wrong user name or password" in refused.detail
        await wrong.aclose()

        async def at_court() -> bool:
            return sorted(m.case_number for m in court.received) == ["LOOP-1", "LOOP-2"]

        await wait_for(at_court)


async def test_client_certificate_pinned_per_agency(tmp_path: Path) -> None:
    pin = "ab" * 32
    cfg = _config(tmp_path)
    cfg["agencies"][0]["inbound"][-1]["settings"] = {"require_token": False, "client_cert_sha256": [pin]}
    async with serving(cfg) as (gw, base):
        url = f"{base}/soap/police-soap"
        body = _envelope("<cx:Ping/>", header="").encode()
        async with httpx.AsyncClient() as c:
            ok = await c.post(url, content=body,
                              headers={"Content-Type": "text/xml", "X-SSL-Client-SHA256": pin})
            other = await c.post(url, content=body, headers={"Content-Type": "text/xml",
                                                             "X-SSL-Client-SHA256": "cd" * 32})
            none = await c.post(url, content=body, headers={"Content-Type": "text/xml"})
        assert ok.status_code == 200, ok.text
        assert _fault(other)[2] == _fault(none)[2] == "tls.client-cert"


def _message(case: str, body: bytes | None = None) -> OutboundMessage:
    return OutboundMessage(f"d-{case}", f"m-{case}", f"m-{case}:X", "X", case, body or record(case=case))


def test_inline_base64_over_libxml2_bound_asks_for_mtom() -> None:
    from adapters.soap import envelope

    big = _envelope(_submit_b64(b"\0" * 8_000_000), header="").encode()
    with pytest.raises(envelope.SoapFault, match="MTOM attachment") as e:
        envelope.parse(big, max_bytes=len(big) + 1, source="test")
    assert e.value.client and e.value.rule == "soap.inline-too-large"


async def test_long_inline_base64_is_decoded_from_the_body(tmp_path: Path) -> None:
    """Long base64 runs are lifted out before parsing; records and base64 inside inline XML stay exact."""
    big = record(case="BIG-1", extra="案" * 400_000)  # 1.2 MB, base64 of 1.6 MB: past the lifting threshold
    scan = base64.b64encode(os.urandom(200_000)).decode()
    inline = (f'<cx:SubmitCaseRecord><cx:RecordXml><CaseRecord xmlns="{NS}" version="1.0">'
              "<CaseNumber>BIG-2</CaseNumber><Stage>prosecution-review</Stage>"
              "<Action>transfer-for-prosecution</Action><Sender>POLICE</Sender>"
              "<LocalNumbers><LocalNumber agency='POLICE'>L-BIG-2</LocalNumber></LocalNumbers>"
              f"{MINIMAL_CONTENT}<Content><Scan>\r\n{scan}\r\n</Scan></Content></CaseRecord></cx:RecordXml></cx:SubmitCaseRecord>")
    async with serving(_config(tmp_path)) as (gw, base):
        url = f"{base}/soap/police-soap"
        for body, case in ((_envelope(_submit_b64(big)), "BIG-1"), (_envelope(inline), "BIG-2")):
            r = await _post(url, body.encode())
            assert _receipt_status(r) == "accepted", r.text[:500]
            mid = etree.fromstring(r.content).xpath("string(//*[local-name()='MessageId'])")
            msg = await gw.store.get_message(mid)
            assert msg is not None and msg.case_number == case
            raw = await gw.store.get_blob(msg.content_hash)
            assert raw is not None
            if case == "BIG-1":
                assert raw == big
            else:
                assert etree.fromstring(raw).findtext(f"{{{NS}}}Content/{{{NS}}}Scan") == f"\n{scan}\n"


async def test_limits_refuse_an_envelope_in_chinese_and_english(tmp_path: Path) -> None:
    attrs = " ".join(f'a{i}="x"' for i in range(200))
    inner = record(case="BOMB-1").split(b"?>", 1)[1].decode().replace("<CaseNumber>", f"<CaseNumber {attrs}>")
    body = _envelope(f"<cx:SubmitCaseRecord><cx:RecordXml>{inner}</cx:RecordXml></cx:SubmitCaseRecord>").encode()
    deep = _envelope("<cx:Ping><cx:Echo>" + "<x>" * 300 + "</x>" * 300 + "</cx:Echo></cx:Ping>").encode()
    async with serving(_config(tmp_path)) as (gw, base):
        url = f"{base}/soap/police-soap"
        for request, rule, zh, en in ((body, "xml.too-many-attributes", "属性超过 100 个", "more than 100 attributes"),
                                      (deep, "xml.too-deep", "嵌套超过 256 层", "more than 256 levels deep")):
            r = await _post(url, request)
            code, text, got = _fault(r)
            assert r.status_code == 500 and code == "soap:Client" and got == rule, r.text
            chinese, english = text.split(" / ")  # Chinese first, then English
            assert zh in chinese and en in english and "XML_PARSE_HUGE" not in text
        soap12 = await _post(url, _envelope("<cx:Ping><cx:Echo>" + "<x>" * 300 + "</x>" * 300 + "</cx:Echo></cx:Ping>",
                                            version=SOAP12).encode(),
                             content_type="application/soap+xml; charset=utf-8", action=None)
        texts = etree.fromstring(soap12.content).xpath("//*[local-name()='Reason']/*[local-name()='Text']")
        assert [t.get("{http://www.w3.org/XML/1998/namespace}lang") for t in texts] == ["zh", "en"]
        assert not [e for e in await gw.store.audit_entries() if e.action == "received"]


async def test_a_node_without_room_answers_a_server_fault_with_retry_after(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    cfg["gateway"]["max_records_in_progress"] = 1
    body, go = _envelope(_submit_b64(record(case="SLOW-1"))).encode(), asyncio.Event()

    async def slowly() -> AsyncIterator[bytes]:  # a caller still sending holds its slot
        yield body[:200]
        await go.wait()
        yield body[200:]

    async with serving(cfg) as (gw, base), httpx.AsyncClient(timeout=10) as c:
        url = f"{base}/soap/police-soap"
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": ACTION}
        first = asyncio.create_task(c.post(url, content=slowly(), headers=headers))
        await wait_for(lambda: gw.pipeline is not None and gw.pipeline.admission.in_progress == 1)
        busy = await _post(url, _envelope(_submit_b64(record(case="BUSY-1"))).encode())
        code, text, rule = _fault(busy)
        assert busy.status_code == 500 and code == "soap:Server" and rule == "gateway.busy", busy.text
        assert busy.headers["retry-after"] == "2" and "2 秒后重新发送" in text and "again in 2 seconds" in text
        assert etree.fromstring(busy.content).xpath(f"string(//*[namespace-uri()='{TNS}' and local-name()='Retry'])") \
            == "true"
        go.set()
        assert _receipt_status(await first) == "accepted"
        assert len([e for e in await gw.store.audit_entries() if e.action == "received"]) == 1

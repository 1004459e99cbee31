"""The HTTP adapter: the client's edge cases against respx, then real HTTP both ways on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import respx
import yaml
from lxml import etree

from adapters.http import HttpOutbound, OutboundSettings, wants_xml
from gateway.api.app import create_app
from gateway.config import load_config, parse_config
from gateway.errors import ConfigError
from gateway.model import Attachment, OutboundMessage, Outcome
from gateway.runtime import Gateway

from .support.certs import Authority
from .support.config import http_config
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving
from .support.waiting import wait_for

URL = "http://receiver.test/cases"
Headers = dict[str, str]


def message(attempt: int = 1) -> OutboundMessage:
    return OutboundMessage(delivery_id="d-1", message_id="m-1", idempotency_key="m-1:PROC",
                           destination="PROC", case_number="C2026-0001", body=record(), attempt=attempt)


def client(**settings: object) -> HttpOutbound:
    """The adapter over httpx's own transport, which respx intercepts: these tests are about how the
    adapter reads httpx's outcomes; the transport it uses in service is tested on real sockets below."""
    return HttpOutbound(OutboundSettings.model_validate({"url": URL, **settings}), httpx.AsyncHTTPTransport())


# -- the client's edge cases (respx) -------------------------------------------------------------

@pytest.mark.parametrize("exc", [httpx.ConnectTimeout("x"), httpx.ReadTimeout("x"), httpx.PoolTimeout("x")])
@respx.mock
async def test_timeout_is_transient(exc: Exception) -> None:
    respx.post(URL).mock(side_effect=exc)
    r = await client().deliver(message())
    assert r.outcome == Outcome.TRANSIENT and "in time" in r.detail


@respx.mock
async def test_connection_refused_is_transient() -> None:
    respx.post(URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    r = await client().deliver(message())
    assert r.outcome == Outcome.TRANSIENT and "Connection refused" in r.detail and URL in r.detail


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
@respx.mock
async def test_server_errors_and_throttling_are_transient(status: int) -> None:
    respx.post(URL).mock(return_value=httpx.Response(status, text="busy, later"))
    r = await client().deliver(message())
    assert r.outcome == Outcome.TRANSIENT and f"HTTP {status}" in r.detail and "busy, later" in r.detail


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
@respx.mock
async def test_client_errors_are_permanent_with_the_receivers_words(status: int) -> None:
    respx.post(URL).mock(return_value=httpx.Response(status, text="CaseNumber 缺失"))
    r = await client().deliver(message())
    assert r.outcome == Outcome.PERMANENT
    assert f"HTTP {status}" in r.detail and "CaseNumber 缺失" in r.detail
    assert r.receipt == "CaseNumber 缺失".encode()


@respx.mock
async def test_success_records_the_receipt_and_sends_the_idempotency_key() -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(201, content=b"<Ack>ok</Ack>"))
    out = client(headers={"X-System": "court-cms"})
    r1 = await out.deliver(message(attempt=1))
    r2 = await out.deliver(message(attempt=2))
    assert r1.outcome == r2.outcome == Outcome.DELIVERED and r1.receipt == b"<Ack>ok</Ack>"
    sent = [c.request for c in route.calls]
    assert [q.headers["Idempotency-Key"] for q in sent] == ["m-1:PROC", "m-1:PROC"]
    assert [q.headers["X-Delivery-Attempt"] for q in sent] == ["1", "2"]
    assert sent[0].headers["X-Message-Id"] == "m-1" and sent[0].headers["X-Case-Number"] == "C2026-0001"
    assert sent[0].headers["X-System"] == "court-cms" and sent[0].content == record()
    assert "authorization" not in sent[0].headers


@respx.mock
async def test_dossier_files_the_adapter_cannot_carry_are_named_in_the_detail() -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, content=b"ok"))
    scan = Attachment("scan.pdf", "ab" * 32, 10, "application/pdf")
    r = await client().deliver(replace(message(), attachments=(scan,)))
    assert r.outcome == Outcome.DELIVERED and "1 dossier file(s) not sent" in r.detail


@respx.mock
async def test_bearer_token_is_sent_from_its_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURT_TOKEN", "s3cret-token")
    route = respx.post(URL).mock(return_value=httpx.Response(200))
    out = client(bearer_token={"env": "COURT_TOKEN"})
    assert (await out.deliver(message())).outcome == Outcome.DELIVERED
    assert route.calls[0].request.headers["Authorization"] == "Bearer s3cret-token"
    assert "s3cret-token" not in repr(out.settings)


@pytest.mark.parametrize(("key", "url"), [
    ("url", "http://court:PASS@receiver.test/cases"),
    ("url", "https://receiver.test/cases?user=court&access_token=PASS"),
    ("proxy", "http://proxy-user:PASS@proxy.test:3128"),
])
def test_a_password_in_a_url_is_refused_naming_file_and_key(tmp_path: Path, key: str, url: str) -> None:
    cfg = http_config(tmp_path / "data", URL)
    cfg["agencies"][1]["outbound"]["settings"] = {"url": URL, key: url}
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    said = str(refused.value)
    assert said.startswith(f"{path}: ") and f"agencies[1].outbound.settings.{key}: " in said
    assert "secret reference" in said and "PASS" not in said
    cfg["agencies"][1]["outbound"]["settings"] = {"url": URL, key: "https://receiver.test/cases?case=1&wsdl"}
    path.write_text(yaml.safe_dump(cfg))
    assert load_config(path).agency("PROC").outbound is not None


async def test_client_certificate_config_loads(tmp_path: Path) -> None:
    cert, key = Authority("gateway.test").issue(tmp_path, "client")
    out = client(url="https://receiver.test/cases", client_cert=str(cert), client_key=str(key),
                 ca_bundle=str(cert))
    await out.aclose()
    with pytest.raises(ConfigError, match="cannot load the TLS files .*missing.pem"):
        client(client_cert=str(tmp_path / "missing.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="junk.pem"):
        client(client_cert=str(tmp_path / "junk.pem"))


@pytest.mark.parametrize(("accept", "xml"), [
    ("", False), ("application/json", False), ("application/xml", True), ("text/xml", True),
    ("application/json, application/xml;q=0.5", False), ("application/xml, application/json;q=0.9", True),
    ("*/*", False), ("application/soap+xml", True), ("application/xml;q=0", False),
    ("Application/XML", True), ("application/xml;Q=0.4, application/json;q=0.5", False),
    ('text/xml; charset="utf-8", application/json;q=0.9', True), ("application/xml;q=0.5, */*;q=0.1", True),
    ("application/xml;q=high", False), ("application/xml;q=2", False), ("application/xml;q=0.0001", False),
    ("application/problem+json, application/xml;q=0.9", False),
])
def test_accept_header_chooses_the_receipt_format(accept: str, xml: bool) -> None:
    assert wants_xml(accept) is xml


# -- real HTTP both ways: sender -> gateway (uvicorn) -> receiver (uvicorn) ------------------------

async def test_record_travels_over_real_http_both_ways(tmp_path: Path, police_key: dict[str, str]) -> None:
    rcv = Receiver()
    rcv.fail_next = [503]  # the first attempt meets a busy receiver and is retried
    gw = Gateway(parse_config(http_config(tmp_path, rcv.url)))
    async with serving(rcv.app(), rcv.port), serving(create_app(gw), free_port()) as base, \
            httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/police-in", content=record(), headers=police_key)
        assert r.status_code == 202, r.text
        receipt = r.json()
        assert receipt["status"] == "accepted" and receipt["destinations"] == ["PROC"]
        mid = receipt["message_id"]

        async def delivered() -> bool:
            ds = await gw.store.get_deliveries(mid)
            return ds[0].state == "delivered"

        await wait_for(delivered)
        assert rcv.arrivals[mid] == 1 and b"<CaseNumber>C2026-0001</CaseNumber>" in rcv.bodies[mid]
        tries = [h for h in rcv.headers if h.get("x-message-id") == mid]
        assert [h["idempotency-key"] for h in tries] == [f"{mid}:PROC"] * 2
        assert [h["x-delivery-attempt"] for h in tries] == ["1", "2"]
        d = (await gw.store.get_deliveries(mid))[0]
        assert mid in (d.receipt or "") and "attempt 2" in d.reason
        attempts = await gw.store.get_attempts(d.id)
        assert [a.outcome for a in attempts] == ["retrying", "delivered"]
        assert "HTTP 503" in attempts[0].detail

        again = await http.post("/inbound/police-in", content=record(), headers={**police_key,
                                                                               "Accept": "application/xml"})
        assert again.status_code == 200 and again.headers["content-type"].startswith("application/xml")
        xml = etree.fromstring(again.content)
        ns = {"r": "urn:case-exchange:receipt:1"}
        assert xml.findtext("r:MessageId", namespaces=ns) == mid
        assert xml.findtext("r:Duplicate", namespaces=ns) == "true"


async def test_receiver_refusal_is_dead_lettered_with_its_words(tmp_path: Path, police_key: Headers) -> None:
    rcv = Receiver()
    rcv.fail_next = [400]
    gw = Gateway(parse_config(http_config(tmp_path, rcv.url)))
    async with serving(rcv.app(), rcv.port), serving(create_app(gw), free_port()) as base, \
            httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/police-in", content=record(), headers=police_key)
        mid = r.json()["message_id"]

        async def dead() -> bool:
            return (await gw.store.get_deliveries(mid))[0].state == "dead"

        await wait_for(dead)
        d = (await gw.store.get_deliveries(mid))[0]
        assert "HTTP 400" in d.reason and "receiver says no (400)" in d.reason


async def test_unreachable_receiver_keeps_the_record_queued(tmp_path: Path, police_key: Headers) -> None:
    gw = Gateway(parse_config(http_config(tmp_path, f"http://127.0.0.1:{free_port()}/nobody-listens")))
    async with serving(create_app(gw), free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/police-in", content=record(), headers=police_key)
        mid = r.json()["message_id"]

        async def failed_once() -> bool:
            ds = await gw.store.get_deliveries(mid)
            return ds[0].state == "retrying"

        await wait_for(failed_once)
        d = (await gw.store.get_deliveries(mid))[0]
        assert "could not reach" in d.reason and "next attempt" in d.reason


async def test_sender_needs_its_key_and_refusals_are_logged(tmp_path: Path, police_key: Headers) -> None:
    rcv = Receiver()
    gw = Gateway(parse_config(http_config(tmp_path, rcv.url)))
    async with serving(create_app(gw), free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/police-in", content=record(), headers={"X-API-Key": "wrong"})
        assert r.status_code == 401 and r.json()["rule"] == "http.auth"
        r = await http.post("/inbound/police-in", content=record(),
                            headers={"Authorization": "Bearer police-key-1"})
        assert r.status_code == 202
        refused = [e for e in await gw.store.audit_entries() if e.action == "refused"]
        assert len(refused) == 1 and "wrong API key" in refused[0].detail


async def test_connections_to_the_receiver_are_reused(tmp_path: Path, police_key: dict[str, str]) -> None:
    rcv = Receiver()
    ports: list[int] = []
    receive = rcv.receive

    async def tracking(request):  # type: ignore[no-untyped-def]
        ports.append(request.client.port)
        return await receive(request)

    rcv.receive = tracking  # type: ignore[method-assign]
    gw = Gateway(parse_config(http_config(tmp_path, rcv.url)))
    async with serving(rcv.app(), rcv.port), serving(create_app(gw), free_port()) as base, \
            httpx.AsyncClient(base_url=base) as http:
        for i in range(5):
            r = await http.post("/inbound/police-in", content=record(case=f"C2026-{i:04d}"),
                                headers=police_key)
            assert r.status_code == 202

            async def arrived(n: int = i + 1) -> bool:
                return len(rcv.keys) == n

            await wait_for(arrived)  # one at a time, so a pooled connection is free to reuse
        assert len(ports) == 5 and len(set(ports)) == 1


async def test_push_records_skip_the_api_middleware_and_the_api_keeps_it(tmp_path: Path, police_key: Headers) -> None:
    """Records take the short way in (PushFirst); every other request still passes the API's stack."""
    rcv = Receiver()
    gw = Gateway(parse_config(http_config(tmp_path, rcv.url)))
    app = create_app(gw)
    seen: list[str] = []

    @app.api.middleware("http")
    async def count(request, call_next):  # type: ignore[no-untyped-def]
        seen.append(f"{request.method} {request.url.path}")
        return await call_next(request)

    async with serving(app, free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/police-in", content=record(), headers=police_key)
        assert r.status_code == 202, r.text
        assert (await http.get("/inbound/police-in")).status_code == 405  # not a push: the API answers
        assert (await http.get("/health")).status_code == 200
    assert seen == ["GET /inbound/police-in", "GET /health"]


async def test_a_node_without_room_answers_503_with_retry_after_and_stores_nothing(
        tmp_path: Path, police_key: Headers) -> None:
    rcv = Receiver()
    gw = Gateway(parse_config(http_config(tmp_path, rcv.url, max_records_in_progress=1)))
    body, go = record(case="C-SLOW"), asyncio.Event()

    async def slowly() -> AsyncIterator[bytes]:  # a sender still sending holds its slot
        yield body[:100]
        await go.wait()
        yield body[100:]

    async def one_in_progress() -> bool:
        return gw.pipeline is not None and gw.pipeline.admission.in_progress == 1

    async with serving(rcv.app(), rcv.port), serving(create_app(gw), free_port()) as base, \
            httpx.AsyncClient(base_url=base, headers=police_key) as http:
        first = asyncio.create_task(http.post("/inbound/police-in", content=slowly()))
        await wait_for(one_in_progress)
        busy = await http.post("/inbound/police-in", content=record(case="C-BUSY"))
        assert busy.status_code == 503 and busy.headers["retry-after"] == "2", busy.text
        assert busy.json()["rule"] == "gateway.busy" and "send the record again in 2 seconds" in busy.json()["error"]
        as_xml = await http.post("/inbound/police-in", content=record(case="C-BUSY"),
                                 headers={"Accept": "application/xml"})
        assert as_xml.status_code == 503 and as_xml.headers["retry-after"] == "2"
        assert etree.fromstring(as_xml.content).findtext("{*}Rule") == "gateway.busy"
        go.set()
        assert (await first).status_code == 202
        received = [e for e in await gw.store.audit_entries() if e.action == "received"]
        assert len(received) == 1, "a record refused as busy left nothing in the store"
        assert gw.metrics.registry.get_sample_value(
            "gateway_records_total", {"channel": "police-in", "outcome": "busy"}) == 2
        again = await http.post("/inbound/police-in", content=record(case="C-BUSY"))
        assert again.status_code == 202, again.text


async def test_an_upload_cut_off_mid_body_is_logged(tmp_path: Path, police_key: Headers) -> None:
    """A sender whose connection drops mid-body used to get a bare 400 and leave no trace; the log
    now says a record was cut off and that nothing of it was accepted."""
    gw = Gateway(parse_config(http_config(tmp_path, "http://127.0.0.1:9/x")))
    async with serving(create_app(gw), free_port()) as base:
        host, port = base.removeprefix("http://").split(":")
        body = record(case="C-CUT")
        reader, writer = await asyncio.open_connection(host, int(port))
        head = (f"POST /inbound/police-in HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {police_key['X-API-Key']}\r\n"
                f"Content-Type: application/xml\r\nContent-Length: {len(body) + 5000}\r\n\r\n").encode()
        writer.write(head + body[:200])
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

        async def logged() -> bool:
            return any(e.action == "refused" and "http.incomplete-body" in e.detail
                       for e in await gw.store.audit_entries())

        await wait_for(logged, 10, "the cut-off upload in the log")
        assert [e for e in await gw.store.audit_entries() if e.action == "received"] == []

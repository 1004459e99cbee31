"""The HTTP adapter's transport on real sockets: keep-alive, framing, peers that close, time out or
speak nonsense, and TLS. Each server here is a scripted asyncio server on loopback, so every test
controls exactly what bytes the receiver answers."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import adapters.http11
from adapters.http import HttpOutbound, OutboundSettings
from adapters.http11 import KeepAliveTransport
from gateway.model import OutboundMessage, Outcome

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


class Peer:
    """A scripted receiver: counts connections and requests, answers with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def peer(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[Peer, str]]:
    p = Peer(handler)
    server = await asyncio.start_server(p, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield p, f"{'https' if tls else 'http'}://127.0.0.1:{port}/receive"
    finally:
        server.close()


def answering(*answers: bytes, then_close: bool = False, log: list[bytes] | None = None) -> Handler:
    """Answer each request on a connection with the next of `answers` (the last one repeats)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        i = 0
        while True:
            req = await read_request(reader)
            if log is not None:
                log.append(req)
            writer.write(answers[min(i, len(answers) - 1)])
            await writer.drain()
            i += 1
            if then_close:
                return
    return handle


def transport(read_timeout: float = 5.0) -> KeepAliveTransport:
    return KeepAliveTransport(None, 2.0, read_timeout)


async def post(t: KeepAliveTransport, url: str, body: bytes = b"<r/>") -> httpx.Response:
    return await t.handle_async_request(httpx.Request("POST", url, content=body,
                                                      headers={"Idempotency-Key": "m-1:PROC"}))


async def test_one_connection_carries_many_requests_with_their_headers_and_bodies() -> None:
    log: list[bytes] = []
    async with peer(answering(OK, log=log)) as (p, url):
        t = transport()
        for i in range(3):
            r = await post(t, url, f"<r n='{i}'/>".encode())
            assert r.status_code == 200 and r.content == b"ok"
        await t.aclose()
    assert p.connections == 1 and len(log) == 3
    assert log[0].startswith(b"POST /receive HTTP/1.1\r\n") and b"Idempotency-Key: m-1:PROC" in log[0]
    assert b"Host: 127.0.0.1:" in log[0] and log[2].endswith(b"<r n='2'/>")


async def test_chunked_answer_is_read_whole() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    async with peer(answering(chunked)) as (p, url):
        t = transport()
        assert (await post(t, url)).content == b"abcdefg"
        assert (await post(t, url)).content == b"abcdefg"
        await t.aclose()
    assert p.connections == 1


async def test_connection_close_answer_leads_to_a_new_connection() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    async with peer(answering(closing, then_close=True)) as (p, url):
        t = transport()
        for _ in range(3):
            assert (await post(t, url)).status_code == 200
            await asyncio.sleep(0.05)  # the peer's close reaches us before the next request
        await t.aclose()
    assert p.connections == 3


async def test_peer_dropping_an_idle_kept_connection_is_noticed_before_sending() -> None:
    async with peer(answering(OK, then_close=True)) as (p, url):  # keep-alive answer, then hangs up
        t = transport()
        assert (await post(t, url)).status_code == 200
        await asyncio.sleep(0.1)
        assert (await post(t, url)).status_code == 200
        await t.aclose()
    assert p.connections == 2


async def test_answer_running_to_the_end_of_the_connection() -> None:
    unframed = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    async with peer(answering(unframed, then_close=True)) as (_, url):
        t = transport()
        assert (await post(t, url)).content == b"all of it"
        await t.aclose()


async def test_interim_100_continue_is_skipped() -> None:
    async with peer(answering(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")) \
            as (_, url):
        t = transport()
        assert (await post(t, url)).status_code == 201
        await t.aclose()


@pytest.mark.parametrize("answer, words", [
    (b"", "closed the connection before answering"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "in the middle of its answer"),
    (b"SMTP ready\r\n\r\n", "not valid HTTP"),
])
async def test_broken_answers_are_protocol_errors(answer: bytes, words: str) -> None:
    async with peer(answering(answer, then_close=True)) as (_, url):
        t = transport()
        with pytest.raises(httpx.RemoteProtocolError, match=words):
            await post(t, url)
        await t.aclose()


async def test_silent_peer_times_out_and_the_connection_is_not_reused() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with peer(silent) as (_, url):
        t = transport(read_timeout=0.3)
        with pytest.raises(httpx.ReadTimeout):
            await post(t, url)
        assert t._writer is None  # a late answer must never be read as the next request's


async def test_nobody_listening_is_a_connect_error() -> None:
    async with peer(answering(OK)) as (_, url):
        pass  # closed again: the port is free now
    with pytest.raises(httpx.ConnectError):
        await post(transport(), url)


async def test_oversized_answer_is_cut_and_its_connection_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapters.http11, "MAX_ANSWER", 10)
    big = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 50\r\n\r\n" + b"x" * 50
    async with peer(answering(big)) as (p, url):
        t = transport()
        r = await post(t, url)
        assert r.status_code == 400 and r.content == b""
        assert (await post(t, url)).status_code == 400
        await t.aclose()
    assert p.connections == 2


# -- through the adapter: outcomes and TLS --------------------------------------------------------

def message() -> OutboundMessage:
    return OutboundMessage(delivery_id="d-1", message_id="m-1", idempotency_key="m-1:PROC",
                           destination="PROC", case_number="C2026-0001", body=b"<r/>")


async def test_adapter_outcomes_over_the_transport() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in (b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy",
                       "HTTP/1.1 422 No\r\nContent-Length: 17\r\n\r\nCaseNumber 缺失".encode(),
                       b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\n<a/>"):
            await read_request(reader)
            writer.write(answer)
            await writer.drain()

    async with peer(handle) as (p, url):
        out = HttpOutbound(OutboundSettings(url=url))
        first, second, third = [await out.deliver(message()) for _ in range(3)]
        await out.aclose()
    assert first.outcome == Outcome.TRANSIENT and "HTTP 503" in first.detail and "busy" in first.detail
    assert second.outcome == Outcome.PERMANENT and "CaseNumber 缺失" in second.detail
    assert third.outcome == Outcome.DELIVERED and third.receipt == b"<a/>" and p.connections == 1


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address(
                "127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return server, str(tmp_path / "cert.pem")


async def test_tls_receiver_verified_by_its_ca_and_refused_without_it(tmp_path: Path) -> None:
    server_ctx, ca = _self_signed(tmp_path)
    async with peer(answering(OK), tls=server_ctx) as (p, url):
        trusted = HttpOutbound(OutboundSettings(url=url, ca_bundle=ca))
        assert (await trusted.deliver(message())).outcome == Outcome.DELIVERED
        assert (await trusted.deliver(message())).outcome == Outcome.DELIVERED
        await trusted.aclose()
        stranger = HttpOutbound(OutboundSettings(url=url))  # system CAs do not know this certificate
        refused = await stranger.deliver(message())
        await stranger.aclose()
    assert refused.outcome == Outcome.TRANSIENT and "CERTIFICATE_VERIFY_FAILED" in refused.detail
    assert p.connections == 1  # reused; the refused handshake never reached the receiver


async def test_a_configured_proxy_gets_the_request_in_absolute_form() -> None:
    """With `proxy` set the adapter goes through httpx's transport, which speaks to proxies."""
    log: list[bytes] = []
    async with peer(answering(OK, log=log)) as (_, peer_url):
        proxy = peer_url.removesuffix("/receive")
        out = HttpOutbound(OutboundSettings(url="http://receiver.invalid:8080/cases", proxy=proxy))
        result = await out.deliver(message())
        await out.aclose()
    assert result.outcome == Outcome.DELIVERED, result.detail
    assert log[0].startswith(b"POST http://receiver.invalid:8080/cases HTTP/1.1\r\n")
    assert b"Idempotency-Key: m-1:PROC" in log[0]


# -- streamed bodies (a record with its dossier files) ----------------------------------------------

async def _chunks(n: int, size: int, pause: float) -> AsyncIterator[bytes]:
    for i in range(n):
        yield bytes([65 + i % 26]) * size
        await asyncio.sleep(pause)


async def test_a_streamed_upload_that_keeps_moving_outlasts_the_read_timeout() -> None:
    got: list[bytes] = []
    async with peer(answering(OK, log=got)) as (_, url):
        t = KeepAliveTransport(None, 2.0, 0.3)
        body = _chunks(8, 4096, 0.1)  # 0.8 s in all, never 0.3 s without a chunk
        req = httpx.Request("POST", url, content=body, headers={"Content-Length": str(8 * 4096)})
        resp = await t.handle_async_request(req)
        assert resp.status_code == 200
        await t.aclose()
    assert got[0].endswith(b"".join(bytes([65 + i]) * 4096 for i in range(8)))


async def test_a_streamed_upload_times_out_when_the_receiver_goes_quiet() -> None:
    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with peer(never_answers) as (_, url):
        t = KeepAliveTransport(None, 2.0, 0.3)
        req = httpx.Request("POST", url, content=_chunks(2, 16, 0.0), headers={"Content-Length": "32"})
        with pytest.raises(httpx.ReadTimeout):
            await t.handle_async_request(req)
        await t.aclose()

"""A simulated legacy procuratorate that only speaks SOAP, built on spyne (not zeep), on loopback.

Two independent SOAP stacks meet: the gateway delivers with zeep, this service answers with
spyne's own WSDL and fault handling. It deduplicates by idempotency key, can be told to be down,
slow, or to answer Server or Client faults, and sends its decisions back to the gateway's SOAP
endpoint as a hand-written envelope with a WS-Security PasswordDigest token.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.sax.saxutils import escape, quoteattr

import httpx
from spyne import Application, Array, ByteArray, ComplexModel, Fault, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from gateway import standard, xmlsafe
from gateway.sim.records import CaseStep, to_xml

TNS = "urn:cn:procuratorate:legacy-case-service"
log = logging.getLogger("gateway.sim.soap")
logging.getLogger("spyne.application").setLevel(logging.CRITICAL)  # faults it is told to raise are not errors


class CaseReceipt(ComplexModel):
    __namespace__ = TNS
    Status = Unicode
    MessageId = Unicode
    Duplicate = Unicode


class DossierFile(ComplexModel):
    __namespace__ = TNS
    Name = Unicode
    MediaType = Unicode
    Content = ByteArray


@dataclass
class Arrival:
    key: str
    case_number: str
    record: bytes
    files: dict[str, bytes] = field(default_factory=dict)  # dossier files by name
    at: float = field(default_factory=time.time)


# what the legacy system does with a new record (and its idempotency key): the records it answers with
# a decision: a record, or a record with the files it lists (name -> bytes), sent back as attachments
Decide = Callable[[bytes, str], Sequence[bytes | tuple[bytes, dict[str, bytes]]]]
# told of each answer the gateway accepted: (the record sent, the gateway's reply envelope)
Sent = Callable[[bytes, bytes], None]


def indict(record: bytes, key: str = "") -> list[bytes]:
    """The procuratorate's default decision: a transfer for prosecution is answered by an indictment."""
    env = standard.envelope(xmlsafe.parse(record, source="received record"))
    if (env.stage, env.action) != ("prosecution-review", "transfer-for-prosecution"):
        return []
    return [to_xml(CaseStep(env.case_number, "trial", "indictment", "PROC"), "indicted")]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops bursts of connections (SYN retries of 1 s)
    allow_reuse_address = True


class _Quiet(WSGIRequestHandler):
    def setup(self) -> None:
        super().setup()
        # wsgiref writes headers and body separately; without NODELAY each reply waits for a delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class SoapAgency:
    """The legacy service; `mode` is one of up, slow, server-fault, client-fault."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, decide: Decide | None = None,
                 sent: Sent | None = None) -> None:
        self.host = host
        self.port = port
        self.mode = "up"
        self.slow_seconds = 2.0
        self.decide = decide
        self.sent = sent
        self.arrivals: list[Arrival] = []  # first arrival of each key, in order
        self.calls = 0
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._callback: tuple[str, str, str] | None = None
        self._outbox: queue.Queue[tuple[bytes, dict[str, bytes]] | None] = queue.Queue()
        self._sender: threading.Thread | None = None
        self.sent_back: list[bytes] = []
        self.callback_errors: list[str] = []
        self.app = WsgiApplication(self._application())

    # -- the spyne service ---------------------------------------------------------------
    def _application(self) -> Application:
        agency = self

        class LegacyCaseService(ServiceBase):
            @rpc(Unicode, Unicode, ByteArray, Array(DossierFile), _returns=CaseReceipt, _body_style="wrapped")
            def SubmitCaseRecord(ctx: Any, MessageId: str, CaseNumber: str, Record: Any,  # noqa: N802,N803
                                 Dossier: Any) -> CaseReceipt:  # noqa: N803
                files = {f.Name: b"".join(f.Content or []) for f in Dossier or []}
                return agency._receive(MessageId, CaseNumber, b"".join(Record or []), files)

        return Application(
            [LegacyCaseService],
            tns=TNS,
            name="LegacyCaseService",
            in_protocol=Soap11(validator="lxml"),
            out_protocol=Soap11(),
        )

    def _receive(self, key: str, case_number: str, record: bytes, files: dict[str, bytes]) -> CaseReceipt:
        with self._lock:
            self.calls += 1
            mode = self.mode
        if mode == "slow":
            time.sleep(self.slow_seconds)
        elif mode == "server-fault":
            raise Fault("Server", "the case database is temporarily unavailable")
        elif mode == "client-fault":
            raise Fault(
                "Client.Refused", f"case {case_number}: the dossier does not meet the acceptance standard"
            )
        with self._lock:
            if key in self._keys:
                return CaseReceipt(Status="accepted", MessageId=key, Duplicate="true")
            self._keys.add(key)
            self.arrivals.append(Arrival(key, case_number, record, files))
        if self.decide is not None:
            for answer in self.decide(record, key):
                self._outbox.put(answer if isinstance(answer, tuple) else (answer, {}))
        return CaseReceipt(Status="accepted", MessageId=key, Duplicate="false")

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def wsdl_url(self) -> str:
        return f"{self.url}?wsdl"

    def start(self) -> SoapAgency:
        self._server = make_server(self.host, self.port, self.app, server_class=_Server, handler_class=_Quiet)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="soap-agency", daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stop listening: callers get connection refused, as when the agency's server is off."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        self.down()
        if self._sender is not None:
            self._outbox.put(None)
            self._sender.join(5)
            self._sender = None

    def wsdl(self) -> bytes:
        """The WSDL spyne generates, for writing to a file when the gateway should not fetch it."""
        return bytes(httpx.get(self.wsdl_url, timeout=5).content)

    # -- decisions back to the gateway ----------------------------------------------------------
    def call_back(self, endpoint: str, username: str, password: str) -> None:
        """Send each decision to the gateway's SOAP endpoint (SubmitCaseRecord), in a worker thread."""
        self._callback = (endpoint, username, password)
        self._sender = threading.Thread(target=self._send_loop, name="soap-agency-callback", daemon=True)
        self._sender.start()

    def _send_loop(self) -> None:
        assert self._callback is not None
        endpoint, user, password = self._callback
        with httpx.Client(timeout=10) as http:
            while (item := self._outbox.get()) is not None:
                record, files = item
                for _ in range(20):  # the gateway may be busy; a legacy system retries its own sends
                    try:
                        r = http.post(
                            endpoint, content=submit_envelope(record, user, password, files=files),
                            headers=_HEADERS,
                        )
                        if r.status_code == 200:
                            self.sent_back.append(record)
                            if self.sent is not None:
                                self.sent(record, r.content)
                            break
                        self.callback_errors.append(r.text[:500])
                    except httpx.HTTPError as e:
                        self.callback_errors.append(str(e))
                    time.sleep(0.2)


_HEADERS = {
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": '"urn:cn:justice:case-exchange:soap:1/SubmitCaseRecord"',
}


def username_token(user: str, password: str) -> str:
    """A WS-Security UsernameToken with PasswordDigest, fresh Nonce and Created."""
    nonce = os.urandom(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    profile = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    return (
        f'<wsse:Security xmlns:wsse="{wsse}" xmlns:wsu="{wsu}"><wsse:UsernameToken>'
        f"<wsse:Username>{escape(user)}</wsse:Username>"
        f'<wsse:Password Type="{profile}#PasswordDigest">{digest}</wsse:Password>'
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security>"
    )


def submit_envelope(record: bytes, user: str, password: str, message_id: str | None = None,
                    files: dict[str, bytes] | None = None) -> bytes:
    """A SOAP 1.1 SubmitCaseRecord as a legacy system writes it by hand, its files inline."""
    mid = f"<cx:MessageId>{escape(message_id)}</cx:MessageId>" if message_id else ""
    attached = "".join(
        f'<cx:Attachment name={quoteattr(name)} mediaType="{_media_type(name)}">'
        f"{base64.b64encode(data).decode()}</cx:Attachment>" for name, data in (files or {}).items())
    return (
        f'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:cx="urn:cn:justice:case-exchange:soap:1"><soapenv:Header>{username_token(user, password)}'
        f"</soapenv:Header><soapenv:Body><cx:SubmitCaseRecord>{mid}"
        f"<cx:Record>{base64.b64encode(record).decode()}</cx:Record>{attached}"
        "</cx:SubmitCaseRecord></soapenv:Body></soapenv:Envelope>"
    ).encode()


def _media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def main() -> None:
    """Run the simulated procuratorate alone: `python -m gateway.sim.soap_agency --port 8091`."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8091)
    args = p.parse_args()
    agency = SoapAgency(args.host, args.port).start()
    print(f"legacy procuratorate SOAP service at {agency.url} (WSDL {agency.wsdl_url})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        agency.stop()


if __name__ == "__main__":
    main()

"""The node's port below HTTP: deadlines and caps per connection, and refused TLS handshakes on record.

uvicorn bounds only the idle time between two requests. A client that sends its request line and
headers a byte at a time, or stops in the middle of a body, holds a connection for as long as it
likes, so a few hundred of them take the node off the network (slowloris); and a TLS handshake
refused for a missing or foreign client certificate fails inside the SSL layer, before any
request, without a trace anywhere. Here uvicorn's httptools protocol gets a deadline for the
request line and headers, a minimum pace for the body, a size cap on the headers, a cap on
requests per connection and caps on open connections per node and per source address; the TLS
layer is asyncio's own, built here so that its handshake has the same deadline and each refusal
is counted (`gateway_tls_handshake_refusals_total`), logged, one line per peer, event and minute
with the count of the ones folded into it, and entered in the exchange log like a refused request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from asyncio.sslproto import SSLProtocol
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.config import ApiSettings
from gateway.metrics import Metrics
from gateway.refusals import Refusals

log = logging.getLogger("gateway.listener")

RETRY_AFTER = 5  # seconds a client refused for too many connections is told to wait


class Throttled:
    """At most one log line per (peer, event) a minute; the next one says how many were folded in,
    so a flood from one address stays a line a minute and other peers' lines still show. Past
    `peers` addresses in a minute, the others share one line, keeping memory and work bounded."""

    def __init__(self, every: float = 60.0, peers: int = 10_000) -> None:
        self.every, self.peers = every, peers
        self.seen: dict[tuple[str, str], tuple[float, int]] = {}  # (peer, event) -> (last line at, folded since)
        self.pruned = 0.0

    def warn(self, peer: str, event: str, detail: str = "") -> None:
        now = time.monotonic()
        if (peer, event) not in self.seen and len(self.seen) >= self.peers:
            if now - self.pruned >= self.every:  # forget the peers quiet for a minute, once a minute at most
                self.seen = {k: v for k, v in self.seen.items() if now - v[0] < self.every}
                self.pruned = now
            if len(self.seen) >= self.peers:
                peer = "other addresses"
        last, folded = self.seen.get((peer, event), (-1.0, 0))
        if last >= 0 and now - last < self.every:
            self.seen[(peer, event)] = (last, folded + 1)
            return
        self.seen[(peer, event)] = (now, 0)
        more = f"; {folded} more since the previous line" if folded else ""
        log.warning("%s from %s%s%s", event, peer, f": {detail}" if detail else "", more)


@dataclass
class Limits:
    """What every connection of one server shares: the settings, the open connections, the log."""

    api: ApiSettings
    tls: ssl.SSLContext | None = None
    metrics: Metrics | None = None
    refusals: Refusals | None = None  # the exchange log's, for refused TLS handshakes
    open: Counter[str] = field(default_factory=Counter)  # source address -> connections open
    total: int = 0
    notes: Throttled = field(default_factory=Throttled)
    entering: set[asyncio.Task[None]] = field(default_factory=set)  # exchange-log entries on their way

    def admit(self, peer: str) -> str | None:
        """Count a new connection; the cap it is over ("node", "address"), or None."""
        self.total += 1
        self.open[peer] += 1
        if self.api.max_connections is not None and self.total > self.api.max_connections:
            self.notes.warn(peer, "too many connections", f"{self.total - 1} connections open (max_connections)")
            return "node"
        cap = self.api.max_connections_per_address
        if cap is not None and self.open[peer] > cap:
            self.notes.warn(peer, "too many connections", f"{cap} connections open from this address "
                                                        "(max_connections_per_address)")
            return "address"
        return None

    def release(self, peer: str) -> None:
        self.total -= 1
        self.open[peer] -= 1
        if self.open[peer] <= 0:
            del self.open[peer]

    def tls_refused(self, peer: str, exc: BaseException | None) -> None:
        reason = refusal_reason(exc)
        if reason is None:
            return
        if self.metrics is not None:
            self.metrics.tls_refusals.labels(reason).inc()
        detail = str(getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc)
        self.notes.warn(peer, f"TLS handshake refused ({reason})", detail)
        if self.refusals is not None:
            task = asyncio.get_running_loop().create_task(self._enter(peer, f"tls.{reason}", detail))
            self.entering.add(task)
            task.add_done_callback(self.entering.discard)

    async def _enter(self, peer: str, rule: str, why: str) -> None:
        assert self.refusals is not None
        try:  # repeats of one peer's refusal within the interval become one entry with their count
            await self.refusals.refused("access-refused", f"client {peer}", peer, rule,
                                        {"client": peer, "why": f"TLS handshake refused: {why}"})
        except Exception as e:  # the store is down: the node log has the refusal already
            log.warning("could not enter a refused TLS handshake from %s in the exchange log: %s", peer, e)


def refusal_reason(exc: BaseException | None) -> str | None:
    """The metric's label for a handshake that failed with `exc`; None when the client just went away."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "bad_certificate"
    if isinstance(exc, ssl.SSLError):
        return {"PEER_DID_NOT_RETURN_A_CERTIFICATE": "no_certificate", "CERTIFICATE_VERIFY_FAILED": "bad_certificate",
                "HTTP_REQUEST": "plain_http"}.get(exc.reason or "", "other")
    if isinstance(exc, ConnectionAbortedError):  # asyncio's handshake deadline
        return "timeout"
    return None


def _host(peer: Any) -> str:
    return str(peer[0]) if isinstance(peer, tuple | list) and peer else "unknown"


def _answer(status: bytes, text: str) -> bytes:
    body = json.dumps({"detail": text}).encode()
    return b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (
        status, len(body), body)


def _over_cap(cap: str) -> Any:
    """The ASGI app answering every request on a connection over a cap: 503, Retry-After, closed."""
    whose = "from this address" if cap == "address" else "to the gateway"
    body = json.dumps({"detail": f"too many connections {whose}; try again later"}).encode()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
    return app


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each phase of a request the client controls.

    Phases: `headers` (from the connection's start, or a request's first byte, to its last header),
    `body` (until the request is complete) and `idle` (the app answers; uvicorn's keep-alive timer
    then bounds the wait for the next request)."""

    limits: ClassVar[Limits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.peer: str | None = None  # set while the connection counts against the caps
        self.phase = "headers"
        self.timer: asyncio.TimerHandle | None = None
        self.began = 0  # requests begun on this connection
        self.begun_at = 0.0  # loop time the current request's first byte came
        self.header_bytes = 0
        self.body_bytes = 0  # since the last check of the body's pace

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.peer = _host(self.client)
        over = self.limits.admit(self.peer)
        if over is not None:  # answered 503 once its request line and headers are in, then closed
            self.app = _over_cap(over)
        self._arm(self.loop.time() + self.limits.api.header_timeout, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.peer is not None:
            self.limits.release(self.peer)
            self.peer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        began, phase = self.began, self.phase
        super().data_received(data)
        if self.transport.is_closing() or self.phase == "idle":
            return
        # deadlines are armed only for a request still incomplete after a chunk: most come whole in one
        if self.phase == "headers":
            if phase != "body" and self.began - began <= 1:
                self.header_bytes += len(data)  # all of it was one request's line and headers
                if self.header_bytes > self.limits.api.max_header_bytes:
                    self.limits.notes.warn(self.peer or "unknown", "request headers too large",
                                           f"over {self.limits.api.max_header_bytes} bytes (max_header_bytes)")
                    self._cut(_answer(b"431 Request Header Fields Too Large", "request line and headers too large"))
                    return
            if self.timer is None:
                self._arm(self.begun_at + self.limits.api.header_timeout, self._headers_late)
        elif self.timer is None:
            self.body_bytes = 0
            self._arm(self.loop.time() + self.limits.api.body_timeout, self._body_pace)

    def _unsupported_upgrade_warning(self) -> None:
        """The node serves no WebSocket (uvicorn's would take the connection out of the caps' count): an
        Upgrade header is ignored and the request answered as plain HTTP, without uvicorn's two log lines."""

    # parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.began += 1
        self.phase, self.header_bytes = "headers", 0
        if self.timer is None:  # a kept-alive connection's next request (the first one's deadline runs already)
            self.begun_at = self.loop.time()

    def on_headers_complete(self) -> None:
        self.phase = "body"
        self._disarm()
        super().on_headers_complete()
        limit = self.limits.api.max_requests_per_connection
        if limit is not None and self.began >= limit and self.cycle is not None:
            self.cycle.keep_alive = False  # answered with `connection: close`; the client opens a new one

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.phase = "idle"
        self._disarm()
        super().on_message_complete()

    # deadlines
    def _arm(self, when: float, expired: Any) -> None:
        self._disarm()
        self.timer = self.loop.call_at(when, expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _headers_late(self) -> None:
        self.timer = None
        if self.phase != "headers" or self.transport.is_closing():
            return
        event = "request headers not complete in time" if self.began else "no request in time"
        self.limits.notes.warn(self.peer or "unknown", event, f"{self.limits.api.header_timeout:g} s (header_timeout)")
        answer = self.began and (self.cycle is None or self.cycle.response_complete)  # not amid another answer
        self._cut(_answer(b"408 Request Timeout", "request line and headers not received in time") if answer else None)

    def _body_pace(self) -> None:
        self.timer = None
        if self.phase != "body" or self.transport.is_closing():
            return
        api = self.limits.api
        waiting = self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue)
        if waiting or self.body_bytes >= max(1.0, api.body_min_rate * api.body_timeout):
            self.body_bytes = 0  # on pace, or the app has not asked for more yet: that is not the client's doing
            self._arm(self.loop.time() + api.body_timeout, self._body_pace)
            return
        self.limits.notes.warn(self.peer or "unknown", "request body too slow",
                               f"{self.body_bytes} bytes in {api.body_timeout:g} s (body_timeout, body_min_rate)")
        answer = self.cycle is not None and not self.cycle.response_started
        self._cut(_answer(b"408 Request Timeout", "request body not received in time") if answer else None)

    def _cut(self, answer: bytes | None) -> None:
        """Close the connection (after `answer`); the app, if it is reading the body, sees a disconnect."""
        self._disarm()
        self.phase = "idle"
        if answer is not None:
            self.transport.write(answer)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


class TlsLayer(SSLProtocol):
    """One connection's TLS, as asyncio itself would run it for `create_server(ssl=...)`, with the
    handshake under `header_timeout` and a refused handshake (which never reaches HTTP) recorded."""

    limits: ClassVar[Limits]
    http: ClassVar[type[LimitedHttp]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.inner = self.http(*args, **kwargs)
        assert self.limits.tls is not None
        # no waiter (as in asyncio's own server); typeshed wants a future and whole seconds, asyncio does not
        super().__init__(self.inner.loop, self.inner, self.limits.tls, None, server_side=True,  # type: ignore[arg-type]
                         ssl_handshake_timeout=self.limits.api.header_timeout)  # type: ignore[arg-type]
        self.remote = "unknown"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.remote = _host(transport.get_extra_info("peername"))
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.inner.transport is None:  # the handshake did not complete: HTTP never saw this connection
            self.limits.tls_refused(self.remote, exc)
        super().connection_lost(exc)


def protocol_class(limits: Limits) -> type[asyncio.BaseProtocol]:
    """The class uvicorn builds each connection's protocol from (`uvicorn.Config(http=...)`)."""

    class Http(LimitedHttp):
        pass

    Http.limits = limits
    if limits.tls is None:
        return Http

    class Tls(TlsLayer):
        pass

    Tls.limits, Tls.http = limits, Http
    return Tls

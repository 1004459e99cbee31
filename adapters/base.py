"""The adapter contract: plain values in and out, and one small typed context per channel.

An adapter never sees the gateway or its store. The runtime builds each channel a context that
carries exactly what an adapter may use, as httpx's transport gets a request and nothing else,
and as a Redpanda Connect plugin gets its parsed config and a narrow `Resources`:

- an outbound adapter gets an `OutboundContext` (its channel and receiving agency, the file store,
  a folder of its own) and has `deliver(message) -> DeliveryResult`, which never raises for a
  network or receiver problem but answers DELIVERED, TRANSIENT or PERMANENT;
- an inbound adapter gets an `InboundContext` (also the intake, the exchange log, cluster locks,
  drop marks, nonce claims, the agency's key and the limits) and either contributes HTTP routes
  (push) or runs a loop (pull), handing raw bytes to `context.intake`.

Each adapter module registers an `AdapterSpec` under the entry-point group `case_exchange.adapters`
(the built-in ones in this package's pyproject.toml), so other packages add adapters the same way;
the spec's settings models validate the configuration and generate its reference.
`adapters.testing` builds contexts with in-memory parts for tests.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from gateway.admission import Admission
from gateway.audit.chain import AuditEvent
from gateway.files import FileStore
from gateway.model import DeliveryResult, InboundRecord, OutboundMessage, Receipt, SentRecord
from gateway.verdict import Verdict
from gateway.xmllimits import DEFAULT as DEFAULT_XML_LIMITS
from gateway.xmllimits import XmlLimits

Intake = Callable[[InboundRecord], Awaitable[Receipt]]
Validate = Callable[[InboundRecord, bool], Awaitable[Verdict]]  # (record, conformance run) -> findings, nothing kept
Endpoint = Callable[[Request], Awaitable[Response]]


# -- what an inbound adapter may use ---------------------------------------------------------------
class DropMarks(Protocol):
    """Which files a pull channel already took in: its idempotency across polls, restarts and nodes."""

    async def seen(self, fingerprint: str) -> str | None:
        """The message id made from a file with this fingerprint, if any."""

    async def mark(self, fingerprint: str, message_id: str) -> None: ...

    async def outcome(self, message_id: str) -> tuple[bool, tuple[str, ...]] | None:
        """(accepted, reasons) of a message taken in earlier; None if there is no such message."""


class SentRecords(Protocol):
    """The records an agency sent, with their receipts, paged by the exchange log's sequence number."""

    async def __call__(self, agency: str, after: int, limit: int, *, only_rejected: bool) -> tuple[
            list[SentRecord], int]:
        """Up to `limit` records of `agency` logged after `after`; and the cursor to go on from."""


class RefusalLog(Protocol):
    """Refused requests: each kind logged once per interval with a count, failed logins slowed down."""

    async def refused(self, action: str, actor: str, source: str, rule: str, detail: dict[str, Any]) -> None: ...

    def failed_authentication(self, source: str) -> None: ...

    def retry_after(self, source: str) -> float | None:
        """Seconds before `source` is heard again after too many failed logins; None when it may go on."""


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int
    xml: XmlLimits = DEFAULT_XML_LIMITS  # what one XML file may hold (elements, attributes, depth, text)


@dataclass(frozen=True)
class OutboundContext:
    channel: str
    agency: str  # the receiving agency
    files: FileStore  # dossier files, streamed from here beside the record
    state_dir: Path  # a folder of this channel's own, kept across restarts (crash markers, caches)


@dataclass(frozen=True)
class InboundContext:
    channel: str
    agency: str  # the sending agency
    node: str
    files: FileStore  # where dossier files go as they arrive
    limits: Limits
    admission: Admission  # a pushed record takes a slot before its body is read, or is refused as busy
    intake: Intake  # the pipeline's entry: raw record in, receipt out
    audit: Callable[[AuditEvent], Awaitable[None]]  # one entry in the exchange log (a channel stopped, ...)
    refusals: RefusalLog  # refused requests, counted per source and reason
    lock: Callable[[str], AbstractAsyncContextManager[bool]]  # `async with lock(name) as mine:` cluster-wide
    drops: DropMarks
    claim_once: Callable[[str, float], Awaitable[bool]]  # one-time tokens, seen by every node of the cluster
    sent_records: SentRecords
    agency_key: str | None = None  # the agency's API key, if it has one
    validate: Validate | None = None  # the validation service (ValidateCaseRecord); None on a bare context
    conformance_run: Callable[[str], bool] | None = None  # True for the token of this agency's conformance run

    def check_key(self, presented: str | None) -> bool:
        """True when the agency has no key, or `presented` is it (compared in constant time)."""
        if self.agency_key is None:
            return True
        return bool(presented) and hmac.compare_digest(str(presented).encode(), self.agency_key.encode())


# -- adapters ------------------------------------------------------------------------------------------
class OutboundAdapter(Protocol):
    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Send one record; never raise for a network or receiver problem, answer it instead."""
        ...

    async def aclose(self) -> None: ...


class InboundAdapter:
    """Base for inbound adapters: override `routes` (push) or `run` (pull), or both."""

    channel: str
    sender: str

    def routes(self) -> list[BaseRoute]:
        return []

    async def run(self) -> None:
        return None

    def health(self) -> dict[str, object]:
        return {"ok": True}

    async def aclose(self) -> None:
        return None


class InboundFactory(Protocol):
    def __call__(self, settings: Any, context: InboundContext, /) -> InboundAdapter: ...


class OutboundFactory(Protocol):
    def __call__(self, settings: Any, context: OutboundContext, /) -> OutboundAdapter: ...


@dataclass(frozen=True)
class AdapterSpec:
    """What an adapter package registers: its name, what it is for, settings models and factories."""

    name: str
    summary: str
    inbound_settings: type[BaseModel] | None = None
    inbound: InboundFactory | None = None
    outbound_settings: type[BaseModel] | None = None
    outbound: OutboundFactory | None = None

    def settings_model(self, direction: str) -> type[BaseModel] | None:
        return self.inbound_settings if direction == "inbound" else self.outbound_settings


# -- push routes -----------------------------------------------------------------------------------------
class _Answering:
    """An endpoint as a bare ASGI app: request in, response out, nothing wrapped around it.

    Starlette wraps a function endpoint in per-request exception handling for HTTPException and
    friends; a push endpoint answers every error itself, so that wrapper is pure cost on the
    path every record takes.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


def push_route(path: str, endpoint: Endpoint, methods: list[str], name: str) -> Route:
    """The route of a push adapter's endpoint, which must answer every error with a Response."""
    return Route(path, _Answering(endpoint), methods=methods, name=name)

"""Each channel's adapter context, built from the node's store and configuration.

The adapter sees only what its context carries (`adapters.base`); this is the one place that
knows which store calls stand behind each part.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adapters.base import InboundContext, Intake, Limits, OutboundContext, Validate
from gateway.admission import Admission
from gateway.audit.chain import AuditEvent
from gateway.config import Agency, GatewayConfig
from gateway.files import FileStore, safe_name
from gateway.model import MessageStatus
from gateway.queries import Queries
from gateway.refusals import Refusals
from gateway.store.base import Store


class StoreDropMarks:
    """A pull channel's marks of the files it took in, kept in the store (shared by every node)."""

    def __init__(self, store: Store, channel: str) -> None:
        self.store = store
        self.channel = channel

    async def seen(self, fingerprint: str) -> str | None:
        return await self.store.file_seen(self.channel, fingerprint)

    async def mark(self, fingerprint: str, message_id: str) -> None:
        await self.store.mark_file(self.channel, fingerprint, message_id)

    async def outcome(self, message_id: str) -> tuple[bool, tuple[str, ...]] | None:
        m = await self.store.get_message(message_id)
        if m is None:
            return None
        return m.status == MessageStatus.ACCEPTED, tuple(m.reasons)


class Contexts:
    def __init__(self, config: GatewayConfig, store: Store, intake: Intake, queries: Queries,
                 refusals: Refusals, admission: Admission, validate: Validate | None = None,
                 conformance: Callable[[str, str], bool] | None = None) -> None:
        self.config = config
        self.store = store
        self.intake = intake
        self.data_dir = Path(config.gateway.data_dir)
        self.files = FileStore.for_data_dir(self.data_dir)
        self.queries = queries
        self.refusals = refusals
        self.admission = admission
        self.validate = validate
        self.conformance = conformance

    async def _audit(self, event: AuditEvent) -> None:
        await self.store.append_audit([event])

    def inbound(self, agency: Agency, channel: str) -> InboundContext:
        return InboundContext(
            channel=channel, agency=agency.code, node=self.config.gateway.node, files=self.files,
            limits=Limits(int(self.config.gateway.max_message_bytes), self.config.gateway.xml_limits()),
            admission=self.admission, intake=self.intake, audit=self._audit,
            refusals=self.refusals,
            lock=self.store.locked, drops=StoreDropMarks(self.store, channel), claim_once=self.store.claim_once,
            sent_records=self.queries.sent_records,
            agency_key=agency.api_key.resolve() if agency.api_key else None, validate=self.validate,
            conformance_run=self._conformance_run(agency.code),
        )

    def _conformance_run(self, agency: str) -> Callable[[str], bool] | None:
        check = self.conformance
        return None if check is None else lambda token: check(agency, token)

    def outbound(self, agency: Agency, channel: str) -> OutboundContext:
        return OutboundContext(channel, agency.code, self.files, self.data_dir / "outbox" / safe_name(channel))

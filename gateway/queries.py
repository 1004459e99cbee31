"""Read-side questions several audiences ask, answered once: the SOAP channel's GetReceipts and
GetNotices and the REST API's receipts page read the same records the same way."""

from __future__ import annotations

from gateway.evidence.service import documents
from gateway.model import DeliveryView, MessageStatus, Receipt, SentRecord, neutral_reason
from gateway.store.base import Store

PAGE_MAX = 500
_SCAN = 1000  # log entries read per round while looking for an agency's own records


class Queries:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def sent_records(self, agency: str, after: int, limit: int, *, only_rejected: bool = False
                           ) -> tuple[list[SentRecord], int]:
        """The records `agency` sent, logged after sequence number `after` (a stable cursor), with
        their receipts, each delivery's state and the signed evidence issued; at most `limit` (capped at PAGE_MAX)."""
        limit = max(1, min(limit, PAGE_MAX))
        found: list[SentRecord] = []
        while len(found) < limit:
            entries = await self.store.audit_entries(agency=agency, after_seq=after, limit=_SCAN)
            if not entries:
                break
            for e in entries:
                after = e.seq
                if e.action != "received" or e.actor != agency:
                    continue
                m = await self.store.get_message(e.message_id)
                if m is None or (only_rejected and m.status != MessageStatus.REJECTED):
                    continue
                receipt = Receipt.from_dict(m.receipt)
                deliveries = tuple(
                    DeliveryView(d.destination, str(d.state), neutral_reason(str(d.state)))
                    for d in await self.store.get_deliveries(receipt.message_id))
                evidence = tuple(await documents(self.store, receipt.message_id)) if receipt.evidence else ()
                found.append(SentRecord(receipt, deliveries, evidence))
                if len(found) >= limit:
                    break
        return found, after

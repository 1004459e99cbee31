"""Delivery workers: lease due deliveries, hand each to its destination's adapter, record the end.

The dispatcher wakes the moment a delivery is enqueued (the store signals it), so the push path
has no polling delay. Each destination has its own concurrency bound; a case's next record is
leasable only once its previous one to that destination is finished, so order holds per case
while one stuck case never blocks the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from adapters.base import OutboundAdapter
from gateway.model import (
    Attachment,
    DeliveryResult,
    DeliveryState,
    OutboundMessage,
    idempotency_key,
    is_evidence,
)
from gateway.retry import Redelivery
from gateway.store.roles import DeliveryQueue, Payloads, StaleLease
from gateway.store.rows import Finish, Lease, MessageRow

log = logging.getLogger("gateway.delivery")


class DispatchStore(DeliveryQueue, Payloads, Protocol):
    """What the dispatcher uses: the queue, the payloads a lease did not carry, and a message's dossier
    files for a lease that did not list them."""

    async def get_message(self, message_id: str) -> MessageRow | None: ...


@dataclass
class Destination:
    code: str
    adapter: OutboundAdapter
    redelivery: Redelivery
    concurrency: int
    in_flight: int = 0


class Dispatcher:
    def __init__(self, store: DispatchStore, destinations: list[Destination], lease_seconds: float,
                 on_attempt: Callable[[str, DeliveryState, float, float], None] | None = None) -> None:
        self.store = store
        self.destinations = {d.code: d for d in destinations}
        self.lease_seconds = lease_seconds
        # (destination, what the delivery became, seconds of the attempt, seconds since queued): metrics
        self.on_attempt = on_attempt
        # adds the signed evidence of a delivery to its Finish, so both are written at once (None: no evidence)
        self.evidence: Callable[[Lease, Finish], Finish] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        held = 0.0  # the last wait while deliveries were due yet none could be leased
        while not self._stopping.is_set():
            took = 0
            for dest in self.destinations.values():
                free = dest.concurrency - dest.in_flight
                # Lease in batches: while attempts are in flight their ends wake this loop again,
                # so wait for a quarter of the slots instead of one store round trip per slot.
                if free <= 0 or (dest.in_flight and free < dest.concurrency // 4):
                    continue
                try:
                    leases = await self.store.lease(dest.code, free, self.lease_seconds)
                except Exception:  # the store is down: wait and try again, never spin
                    log.exception("leasing deliveries for %s failed", dest.code)
                    await asyncio.sleep(1.0)
                    continue
                took += self._start(dest, leases)
                del leases  # the leases carry their bodies: only their attempts hold them from here
            if took:
                held = 0.0
                continue
            if any(d.in_flight for d in self.destinations.values()):
                # an attempt's end wakes the loop, and each lease also takes retries that fell due,
                # so the store is not asked for the next due time on every single delivery
                timeout = 1.0
            else:
                try:
                    due = await self.store.next_due()
                except Exception:  # the store is down (a database restart): the loop must outlive it
                    log.warning("asking the store for the next due delivery failed; asking again in 1 s",
                                exc_info=True)
                    due = time.time() + 1.0
                timeout = 5.0 if due is None else min(5.0, max(0.01, due - time.time()))
                if timeout <= 0.01:
                    # Due, yet nothing was leasable: each such case waits behind its earlier record, in
                    # flight on another node or process (whose end wakes this one) or dead. Asking again
                    # every 10 ms would cost each idle node two queries per 10 ms; back off to 1 s instead.
                    held = min(1.0, max(0.02, held * 2))
                    timeout = held
                else:
                    held = 0.0
            await self.store.wait_for_work(timeout)

    def _start(self, dest: Destination, leases: list[Lease]) -> int:
        for lease in leases:
            dest.in_flight += 1
            task = asyncio.create_task(self._attempt(dest, lease))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(leases)

    async def _attempt(self, dest: Destination, lease: Lease) -> None:
        started = time.time()
        slot_held = True

        def free_slot() -> None:
            # The receiver's part is over once its answer is in: the slot goes to the next delivery
            # while this one's outcome is being written (the case's next record still waits for
            # that write, as its row stays in flight until then).
            nonlocal slot_held
            if slot_held:
                slot_held = False
                dest.in_flight -= 1

        try:
            body = lease.body if lease.body is not None else await self.store.get_blob(lease.body_hash)
            if body is None:
                result = DeliveryResult.permanent(f"the stored payload {lease.body_hash} is missing")
            else:
                msg = OutboundMessage(
                    delivery_id=lease.delivery_id, message_id=lease.message_id,
                    idempotency_key=idempotency_key(
                        lease.message_id, dest.code, lease.delivery_id, lease.replay_of,
                        lease.body_hash if is_evidence(lease.content_type) else None),
                    destination=dest.code, replay_of=lease.replay_of,
                    case_number=lease.case_number, body=body, content_type=lease.content_type,
                    attempt=lease.attempt, file_name=lease.file_name,
                    attachments=lease.attachments if lease.attachments is not None
                    else await self._attachments(lease.message_id),
                )
                try:
                    async with asyncio.timeout(self.lease_seconds * 0.9):  # no extra task, unlike wait_for
                        result = await dest.adapter.deliver(msg)
                except TimeoutError:
                    result = DeliveryResult.transient(f"no answer within {self.lease_seconds * 0.9:.0f} s")
                except Exception as e:  # an adapter defect is a transient failure with its text, not a crash
                    log.exception("adapter for %s raised", dest.code)
                    result = DeliveryResult.transient(f"adapter error: {type(e).__name__}: {e}")
            free_slot()
            self.store.notify_work()
            finish = dest.redelivery.decide(lease, result, started)
            # evidence pushed to its sender is not itself evidenced (that would never end)
            if (self.evidence is not None and finish.state == DeliveryState.DELIVERED
                    and not is_evidence(lease.content_type)):
                finish = self.evidence(lease, finish)
            try:
                await self.store.finish(lease, finish)
            except StaleLease:
                log.warning("delivery %s: lease lost before the result was recorded; another attempt "
                            "will follow", lease.delivery_id)
            else:
                if self.on_attempt is not None:
                    now = time.time()
                    self.on_attempt(dest.code, finish.state, now - started, now - lease.created_at)
        except Exception:
            log.exception("recording delivery %s failed; the lease will expire and it will be retried",
                          lease.delivery_id)
        finally:
            free_slot()
            self.store.notify_work()

    async def _attachments(self, message_id: str) -> tuple[Attachment, ...]:
        """Dossier files stored with an accepted message (in its summary); a defect notice carries none."""
        m = await self.store.get_message(message_id)
        if m is None or m.status != "accepted":
            return ()
        return m.attachments()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking work; let attempts in flight finish for `grace` seconds, then give leases back."""
        self._stopping.set()
        self.store.notify_work()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for t in list(self._tasks):
            t.cancel()
        await self.store.release_leases()

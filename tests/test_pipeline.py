"""The pipeline end to end with in-memory adapters: accept, route, deliver, dedupe, order, retry."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory import MemoryOutbound
from gateway import heap
from gateway.admission import Admission
from gateway.config import GatewayConfig
from gateway.errors import Busy
from gateway.model import DeliveryResult, MessageStatus, OutboundMessage
from gateway.runtime import Gateway

from .support.records import record
from .support.waiting import wait_for


async def _started(config: GatewayConfig, **outs: MemoryOutbound) -> Gateway:
    gw = Gateway(config, outbound=outs)  # type: ignore[arg-type]
    await gw.start()
    return gw


async def test_record_is_delivered_to_routed_agency(config: GatewayConfig) -> None:
    proc = MemoryOutbound()
    gw = await _started(config, PROC=proc)
    try:
        receipt = await gw.inbound["police-in"].submit(record())  # type: ignore[attr-defined]
        assert receipt.status == MessageStatus.ACCEPTED
        assert receipt.destinations == ("PROC",)

        async def delivered() -> bool:
            return len(proc.received) == 1

        await wait_for(delivered)
        msg = proc.received[0]
        assert msg.message_id == receipt.message_id
        assert msg.idempotency_key == f"{receipt.message_id}:PROC"
        assert b"C2026-0001" in msg.body

        async def recorded() -> bool:
            ds = await gw.store.get_deliveries(receipt.message_id)
            return ds[0].state == "delivered"

        await wait_for(recorded)

        async def actions() -> list[str]:
            return [e.action for e in await gw.store.audit_entries(message_id=receipt.message_id)]

        async def evidenced() -> bool:
            return (await actions())[-1:] == ["evidence-delivery"]

        await wait_for(evidenced)  # signed evidence of submission and of delivery, each logged
        assert await actions() == ["received", "mapped", "validated", "routed", "queued", "evidence-submission",
                                   "delivered", "evidence-delivery"]
    finally:
        await gw.stop()


async def test_resend_gets_original_receipt(config: GatewayConfig) -> None:
    gw = await _started(config, PROC=MemoryOutbound())
    try:
        inbound = gw.inbound["police-in"]
        first = await inbound.submit(record(), sender_message_id="M-1")  # type: ignore[attr-defined]
        again = await inbound.submit(record(), sender_message_id="M-1")  # type: ignore[attr-defined]
        same_content = await inbound.submit(record())  # type: ignore[attr-defined]
        assert again.duplicate and again.message_id == first.message_id
        assert same_content.duplicate and same_content.message_id == first.message_id
        assert len(await gw.store.get_deliveries(first.message_id)) == 1
    finally:
        await gw.stop()


async def test_unroutable_and_spoofed_records_are_rejected_with_reasons(config: GatewayConfig) -> None:
    gw = await _started(config)
    try:
        inbound = gw.inbound["police-in"]
        r = await inbound.submit(record(stage="execution", action="offender-received"))  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED
        assert "no route" in r.reasons[0]
        r = await inbound.submit(record(stage="nowhere"))  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED and "[CODE-01] stage code 'nowhere'" in r.reasons[0]
        r = await inbound.submit(record(sender="COURT"))  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED and "standard.sender" in r.reasons[0]
        r = await inbound.submit(record(version="9.0"))  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED and "standard.version" in r.reasons[0]
    finally:
        await gw.stop()


async def test_transient_failures_retry_permanent_dead_letter(config: GatewayConfig) -> None:
    calls: dict[str, int] = {}

    def handler(m: OutboundMessage) -> DeliveryResult:
        calls[m.case_number] = calls.get(m.case_number, 0) + 1
        if m.case_number == "BAD-1":
            return DeliveryResult.permanent("schema says no")
        if calls[m.case_number] < 3:
            return DeliveryResult.transient("HTTP 503")
        return DeliveryResult.delivered()

    proc = MemoryOutbound(handler)
    gw = await _started(config, PROC=proc)
    try:
        inbound = gw.inbound["police-in"]
        ok = await inbound.submit(record(case="GOOD-1"))  # type: ignore[attr-defined]
        bad = await inbound.submit(record(case="BAD-1"))  # type: ignore[attr-defined]

        async def settled() -> bool:
            a = (await gw.store.get_deliveries(ok.message_id))[0].state
            b = (await gw.store.get_deliveries(bad.message_id))[0].state
            return a == "delivered" and b == "dead"

        await wait_for(settled)
        assert calls == {"GOOD-1": 3, "BAD-1": 1}
        dead = (await gw.store.get_deliveries(bad.message_id))[0]
        assert "schema says no" in dead.reason
        attempts = await gw.store.get_attempts((await gw.store.get_deliveries(ok.message_id))[0].id)
        assert [a.outcome for a in attempts] == ["retrying", "retrying", "delivered"]
    finally:
        await gw.stop()


async def test_order_per_case_and_stuck_case_blocks_only_itself(config: GatewayConfig) -> None:
    gate = asyncio.Event()
    order: list[str] = []

    async def handler(m: OutboundMessage) -> DeliveryResult:
        if m.case_number == "STUCK" and not gate.is_set():
            return DeliveryResult.transient("receiver busy")
        order.append(m.body.decode().split("<Note>")[1].split("</Note>")[0])
        return DeliveryResult.delivered()

    proc = MemoryOutbound(handler)
    gw = await _started(config, PROC=proc)
    try:
        inbound = gw.inbound["police-in"]
        for i in range(3):
            await inbound.submit(record(case="STUCK", extra=f"s{i}"))  # type: ignore[attr-defined]
        for i in range(3):
            await inbound.submit(record(case="FREE", extra=f"f{i}"))  # type: ignore[attr-defined]

        async def free_done() -> bool:
            return [x for x in order if x.startswith("f")] == ["f0", "f1", "f2"]

        await wait_for(free_done)
        assert not any(x.startswith("s") for x in order)
        gate.set()

        async def stuck_done() -> bool:
            return [x for x in order if x.startswith("s")] == ["s0", "s1", "s2"]

        await wait_for(stuck_done, 10)
    finally:
        await gw.stop()


def test_envelope_reads_the_roots_own_fields_like_the_xpath_it_replaces() -> None:
    """standard.envelope walks the root's children once; it must answer what string(c:X) and
    c:Receiver/text() answer: first occurrence, trimmed, nested look-alikes ignored."""
    from lxml import etree

    from gateway import standard

    xml = (f'<CaseRecord xmlns="{standard.NS}" version="1.2"><CaseNumber> C1 </CaseNumber>'
           "<Stage>trial</Stage><Action>judgment</Action><Sender>COURT</Sender>"
           "<Receiver>PROC</Receiver><Receiver> POLICE<!-- x -->JB </Receiver><Receiver/>"
           "<Content><Sender>NOT-ME</Sender><CaseNumber>C2</CaseNumber></Content>"
           "<Sender>SECOND</Sender></CaseRecord>")
    tree = etree.fromstring(xml.encode())
    env = standard.envelope(tree)
    ns = {"c": standard.NS}
    assert env == standard.Envelope(
        version="1.2",
        case_number=tree.xpath("string(c:CaseNumber)", namespaces=ns).strip(),
        stage="trial", action="judgment",
        sender=tree.xpath("string(c:Sender)", namespaces=ns).strip(),
        receivers=tuple(str(t).strip() for t in tree.xpath("c:Receiver/text()", namespaces=ns)),
    )
    assert env.case_number == "C1" and env.sender == "COURT" and env.receivers == ("PROC", "POLICE", "JB")


async def test_limits_of_the_configuration_refuse_in_both_languages(config: GatewayConfig) -> None:
    config.gateway.max_xml_depth = 16
    gw = await _started(config, PROC=MemoryOutbound(), POLICE=MemoryOutbound())
    try:
        deep = record().replace(b"<Note></Note>", b"<Note>" + b"<x>" * 20 + b"</x>" * 20 + b"</Note>")
        r = await gw.inbound["police-in"].submit(deep)  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED and r.reasons[0].startswith("[xml.too-deep] elements are nested")
        m = await gw.store.get_message(r.message_id)
        assert m is not None
        problem = m.summary["problems"][0]
        assert problem["line"] == 2 and problem["message_zh"] == "元素嵌套超过 16 层（记录的上限），未予读取"
    finally:
        await gw.stop()


async def test_schema_findings_are_listed_up_to_a_bound(config: GatewayConfig) -> None:
    gw = await _started(config, PROC=MemoryOutbound())
    try:
        strays = "".join(f"<Person id='s{i}' stray='1'><Role>witness</Role><Name>李四</Name></Person>"
                         for i in range(250))
        body = record().replace(b"<Persons>", f"<Persons>{strays}".encode())
        r = await gw.inbound["police-in"].submit(body)  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED and len(r.reasons) == 101
        assert "stray" in r.reasons[0] and "150 more findings of this check are not listed" in r.reasons[-1]
    finally:
        await gw.stop()


async def test_admission_bounds_records_and_bytes_and_lets_pulls_wait() -> None:
    busy: list[str] = []
    gate = Admission(records=2, budget=2 * 1024 * 1024, on_busy=busy.append)
    release = asyncio.Event()

    async def pushed(channel: str, size: int) -> None:  # a push adapter's slot, then its record's bytes
        with gate.slot(channel), gate.slot(channel, size):
            await release.wait()

    async def pulled(size: int) -> None:
        async with gate.room_for(size):
            await release.wait()

    def refused(channel: str, size: int = 0) -> Busy:
        with pytest.raises(Busy) as e, gate.slot(channel, size):
            pass
        return e.value

    first = asyncio.create_task(pushed("a", 5 * 1024 * 1024))  # one record of any size gets in
    await asyncio.sleep(0.01)
    assert (gate.in_progress, gate.bytes_in_progress) == (1, 5 * 1024 * 1024)  # counted once
    e = refused("b")  # over the bytes: refused before its body is read
    assert e.retry_after == 2 and "2 秒后重新发送" in e.message_zh and "again in 2 seconds" in e.message
    waiting = asyncio.create_task(pulled(10))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # a pulled record waits for room instead
    release.set()
    await asyncio.wait_for(asyncio.gather(first, waiting), 1)
    release.clear()
    small = [asyncio.create_task(pushed(c, 10)) for c in "cd"]
    await asyncio.sleep(0.01)
    refused("e")  # two pushed records at most
    release.set()
    await asyncio.gather(*small)
    assert (gate.in_progress, gate.bytes_in_progress) == (0, 0) and busy == ["b", "e"]


async def test_memory_is_given_back_once_after_large_records(monkeypatch: pytest.MonkeyPatch) -> None:
    if heap._LIBC is None:
        pytest.skip("malloc_trim is glibc's")
    trims: list[int] = []
    monkeypatch.setattr(heap, "trim", lambda: trims.append(1) or True)
    monkeypatch.setattr(heap, "_last", 0.0)
    heap.release_soon(100_000)  # a small record: nothing to give back
    await asyncio.sleep(0.1)
    assert trims == []
    for _ in range(3):
        heap.release_soon(heap.LARGE)
    await asyncio.sleep(0.1)
    assert trims == [1]  # once for the three
    assert heap.pin_mmap_threshold()

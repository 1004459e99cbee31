"""Evidence pushed to the sender's own outbound channel (`evidence_to_outbound`): a real HTTP receiver
stands in for the sender's system and gets the submission evidence, then the delivery evidence once the
destination confirms, each as signed (xmlsec1 and `gateway evidence verify` accept the bytes received),
each with an idempotency key of its own; the receipt's destinations stay the record's. Without the
setting nothing is pushed."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.memory import MemoryOutbound
from gateway.cli import app
from gateway.config import parse_config
from gateway.errors import GatewayError
from gateway.evidence.service import documents
from gateway.evidence.signer import verify
from gateway.model import EVIDENCE_CONTENT_TYPE, DeliveryResult, DeliveryState, MessageStatus, OutboundMessage
from gateway.runtime import Gateway

from .support.config import base_config
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving
from .support.stores import store_settings
from .support.waiting import wait_for
from .test_evidence import needs_xmlsec

XMLSEC = shutil.which("xmlsec1")


def _answer(m: OutboundMessage) -> DeliveryResult:
    return DeliveryResult.delivered("ok", receipt=b"<Ack/>")


def _config(data: Path, url: str, opt_in: bool, store: dict[str, object]) -> dict[str, object]:
    cfg = base_config(data, store=store)
    police = cfg["agencies"][0]
    police["outbound"] = {"name": "police-out", "adapter": "http", "settings": {"url": url, "read_timeout": 2}}
    police["evidence_to_outbound"] = opt_in
    return cfg


def _evidence_keys(rcv: Receiver) -> list[str]:
    return [k for k in rcv.key_bodies if ":evidence-" in k]


@needs_xmlsec
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_sender_receives_both_evidence_documents_as_signed(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    rcv = Receiver()
    proc = MemoryOutbound(_answer)
    cfg = _config(tmp_path / "data", rcv.url, True, store_settings(backend, request, monkeypatch))
    gw = Gateway(parse_config(cfg), outbound={"PROC": proc, "COURT": MemoryOutbound()})  # type: ignore[arg-type]
    async with serving(rcv.app(), rcv.port):
        await gw.start()
        try:
            r = await gw.inbound["police-in"].submit(record(case="EO-1"))  # type: ignore[attr-defined]
            assert r.status == MessageStatus.ACCEPTED and r.destinations == ("PROC",)
            await wait_for(lambda: len(_evidence_keys(rcv)) == 2, what="both evidence documents at the sender")
            docs = await documents(gw.store, r.message_id)
            assert [d.kind for d in docs] == ["submission", "delivery"]  # no evidence of the pushed evidence
            got = [rcv.key_bodies[k] for k in _evidence_keys(rcv)]
            assert got == [d.document for d in docs]  # byte for byte what was signed: no mapping touched it
            assert len(proc.received) == 1 and len(set(_evidence_keys(rcv))) == 2
            types = [h.get("content-type") for h in rcv.headers]
            assert types == [EVIDENCE_CONTENT_TYPE, EVIDENCE_CONTENT_TYPE]
            trusted = gw.evidence.signer.cert  # type: ignore[union-attr]
            assert [verify(b, trusted).kind for b in got] == ["submission", "delivery"]
            cert = tmp_path / "data" / "evidence-cert.pem"
            for i, body in enumerate(got):
                f = tmp_path / f"pushed-{i}.xml"
                f.write_bytes(body)
                assert XMLSEC is not None
                ok = subprocess.run([XMLSEC, "--verify", "--trusted-pem", str(cert), str(f)],
                                    capture_output=True, text=True, timeout=30)
                assert ok.returncode == 0, ok.stderr
                res = CliRunner().invoke(app, ["evidence", "verify", str(f), "--public-key", str(cert)])
                assert res.exit_code == 0 and "VALID" in res.output, res.output

            async def all_delivered() -> bool:
                return all(d.state == DeliveryState.DELIVERED for d in await gw.store.get_deliveries(r.message_id))

            await wait_for(all_delivered, what="the pushes recorded delivered")
            rows = await gw.store.get_deliveries(r.message_id)
            assert sorted((d.destination, d.state) for d in rows) == [
                ("POLICE", DeliveryState.DELIVERED), ("POLICE", DeliveryState.DELIVERED),
                ("PROC", DeliveryState.DELIVERED)]
            m = await gw.store.get_message(r.message_id)
            assert m is not None and m.receipt["destinations"] == ["PROC"]
        finally:
            await gw.stop()


async def test_without_the_setting_nothing_is_pushed(tmp_path: Path, request: pytest.FixtureRequest,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rcv = Receiver()
    cfg = _config(tmp_path / "data", rcv.url, False, store_settings("sqlite", request, monkeypatch))
    gw = Gateway(parse_config(cfg), outbound={"PROC": MemoryOutbound(_answer),  # type: ignore[arg-type]
                                              "COURT": MemoryOutbound()})
    async with serving(rcv.app(), rcv.port):
        await gw.start()
        try:
            r = await gw.inbound["police-in"].submit(record(case="EO-2"))  # type: ignore[attr-defined]

            async def both() -> bool:
                return len(await documents(gw.store, r.message_id)) == 2

            await wait_for(both, what="evidence of delivery")
            await asyncio.sleep(0.3)
            assert rcv.headers == []
            assert [d.destination for d in await gw.store.get_deliveries(r.message_id)] == ["PROC"]
        finally:
            await gw.stop()


def test_the_setting_needs_an_outbound_channel(tmp_path: Path) -> None:
    cfg = base_config(tmp_path / "data")
    del cfg["agencies"][0]["outbound"]
    cfg["agencies"][0]["evidence_to_outbound"] = True
    with pytest.raises((GatewayError, ValueError), match="evidence_to_outbound"):
        parse_config(cfg)


async def test_a_failed_write_keeps_neither_the_delivery_nor_the_pushed_evidence(
        tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queueing the pushed evidence fails inside the delivery's write: the delivery is not recorded
    either, and the retried attempt records both, the sender getting the delivery evidence once."""
    import gateway.store.sqlite.delivery as sqlite_delivery

    real = sqlite_delivery.to_sender
    failing = [True]

    def to_sender(*args: object) -> tuple[object, ...] | None:
        if failing[0]:
            raise RuntimeError("disk gone")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_delivery, "to_sender", to_sender)
    rcv = Receiver()
    cfg = _config(tmp_path / "data", rcv.url, True, store_settings("sqlite", request, monkeypatch))
    cfg["gateway"]["lease_seconds"] = 1.0  # type: ignore[index]
    proc = MemoryOutbound(_answer)
    gw = Gateway(parse_config(cfg), outbound={"PROC": proc, "COURT": MemoryOutbound()})  # type: ignore[arg-type]
    async with serving(rcv.app(), rcv.port):
        await gw.start()
        try:
            r = await gw.inbound["police-in"].submit(record(case="EO-3"))  # type: ignore[attr-defined]
            await wait_for(lambda: len(proc.received) >= 1, what="the first attempt")
            await asyncio.sleep(0.2)
            entries = await gw.store.audit_entries(message_id=r.message_id)
            assert not any(e.action == "evidence-delivery" for e in entries)
            states = {d.destination: d.state for d in await gw.store.get_deliveries(r.message_id)}
            assert states["PROC"] == DeliveryState.IN_FLIGHT  # its outcome was not recorded either
            assert len(_evidence_keys(rcv)) == 1  # the submission evidence only
            failing[0] = False
            await wait_for(lambda: len(_evidence_keys(rcv)) == 2, what="the delivery evidence after the retry")
            docs = await documents(gw.store, r.message_id)
            assert [d.kind for d in docs] == ["submission", "delivery"]
            assert rcv.key_bodies[_evidence_keys(rcv)[1]] == docs[1].document
        finally:
            await gw.stop()


async def test_a_refused_record_pushes_its_evidence_beside_the_defect_notice_once(
        tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    rcv = Receiver()
    cfg = _config(tmp_path / "data", rcv.url, True, store_settings("sqlite", request, monkeypatch))
    gw = Gateway(parse_config(cfg), outbound={"PROC": MemoryOutbound(_answer),  # type: ignore[arg-type]
                                              "COURT": MemoryOutbound()})
    async with serving(rcv.app(), rcv.port):
        await gw.start()
        try:
            r = await gw.inbound["police-in"].submit(b"<not-a-record/>")  # type: ignore[attr-defined]
            assert r.status == MessageStatus.REJECTED and r.destinations == ("POLICE",)  # the defect notice only
            # the defect notice, the submission evidence, and the evidence of the notice's own delivery
            await wait_for(lambda: len(rcv.key_bodies) == 3, what="defect notice and evidence at the sender")
            pushed = _evidence_keys(rcv)
            assert set(rcv.key_bodies) == {f"{r.message_id}:POLICE", *pushed} and len(pushed) == 2
            trusted = gw.evidence.signer.cert  # type: ignore[union-attr]
            sub, dlv = (verify(rcv.key_bodies[k], trusted) for k in pushed)
            assert (sub.kind, sub.facts["Decision"]) == ("submission", "rejected")
            assert (dlv.kind, dlv.facts["Destination"]) == ("delivery", "POLICE")
            again = await gw.inbound["police-in"].submit(b"<not-a-record/>")  # type: ignore[attr-defined]
            assert again.duplicate
            await asyncio.sleep(0.3)
            assert len(rcv.headers) == 3  # a resend pushes nothing again
        finally:
            await gw.stop()

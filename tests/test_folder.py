"""Folder adapter: the file-drop rules (completeness, dossier hashes, archive/error, idempotency,
atomic delivery) end to end through a real gateway, on local directories."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from adapters.filedrop import DropInbound
from adapters.folder import LocalFS
from gateway.files import FileStore
from gateway.model import Attachment, OutboundMessage
from gateway.runtime import Gateway
from gateway.store.rows import DeliveryRow

from .support.drops import drop, drop_config, same_name_in_two_cases, visible
from .support.records import dossier_record
from .support.waiting import wait_for


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    src, out = tmp_path / "police", tmp_path / "proc"
    src.mkdir()
    return src, out


def _config(tmp_path: Path, src: Path, out: Path, **inbound: Any) -> Any:
    return drop_config(
        tmp_path / "data",
        {"adapter": "folder", "settings": {"path": str(src), "poll_interval": 0.1, **inbound}},
        {"adapter": "folder", "settings": {"path": str(out)}},
    )


async def _messages(gw: Gateway) -> list[DeliveryRow]:
    """Deliveries made (one per accepted record here)."""
    return await gw.store.list_deliveries(limit=1000)


async def _received(gw: Gateway) -> int:
    """Records the gateway took in, accepted or not."""
    return sum(1 for e in await gw.store.audit_entries() if e.action == "received")


async def test_record_and_dossier_taken_once_delivered_whole(tmp_path: Path) -> None:
    src, out = _dirs(tmp_path)
    scan, photo = os.urandom(300_000), os.urandom(5_000)
    (src / "C1.scan.pdf").write_bytes(scan)
    (src / "C1.photo.jpg").write_bytes(photo)
    (src / "C1.xml").write_bytes(dossier_record("C2026-0001", {"C1.scan.pdf": scan, "C1.photo.jpg": photo}))
    gw = Gateway(_config(tmp_path, src, out))
    await gw.start()
    try:
        await wait_for(
            lambda: out.is_dir() and any(n.endswith(".xml") for n in visible(out)), what="delivery"
        )
        names = visible(out)
        record = next(n for n in names if n.endswith(".xml"))
        folder = out / record.removesuffix(".xml")  # a folder per message: names of two cases never meet
        assert visible(folder) == ["C1.photo.jpg", "C1.scan.pdf"]
        assert (folder / "C1.scan.pdf").read_bytes() == scan
        assert b"<CaseNumber>C2026-0001</CaseNumber>" in (out / record).read_bytes()
        await wait_for(lambda: visible(src) == [], what="source emptied")
        assert sorted(visible(src / "archive")) == ["C1.photo.jpg", "C1.scan.pdf", "C1.xml"]
        await asyncio.sleep(0.5)  # several more polls: nothing is taken again
        deliveries = await _messages(gw)
        assert len(deliveries) == 1 and deliveries[0].state == "delivered"
        msg = await gw.store.get_message(deliveries[0].message_id)
        assert msg is not None
        listed = {a["name"]: a["sha256"] for a in msg.summary["attachments"]}
        assert listed == {
            "C1.scan.pdf": hashlib.sha256(scan).hexdigest(),
            "C1.photo.jpg": hashlib.sha256(photo).hexdigest(),
        }
        assert FileStore.for_data_dir(tmp_path / "data").has(hashlib.sha256(scan).hexdigest())
    finally:
        await gw.stop()


async def test_damaged_dossier_file_goes_to_error_with_reason(tmp_path: Path) -> None:
    src, out = _dirs(tmp_path)
    (src / "C2.scan.pdf").write_bytes(b"not the scan the record means")
    (src / "C2.xml").write_bytes(dossier_record("C2026-0002", {"C2.scan.pdf": b"the real scan"}))
    gw = Gateway(_config(tmp_path, src, out))
    await gw.start()
    try:
        await wait_for(lambda: (src / "error" / "C2.xml.error.txt").exists(), what="error sidecar")
        why = (src / "error" / "C2.xml.error.txt").read_text()
        assert "C2.scan.pdf" in why and "SHA-256" in why
        assert sorted(visible(src / "error")) == ["C2.scan.pdf", "C2.xml", "C2.xml.error.txt"]
        assert await _messages(gw) == []
        refused = [e for e in await gw.store.audit_entries() if e.action == "refused"]
        assert refused and json.loads(refused[0].detail)["file"] == "C2.xml"
    finally:
        await gw.stop()


async def test_rejected_record_goes_to_error_with_receipt_reasons(tmp_path: Path) -> None:
    src, out = _dirs(tmp_path)
    drop(src, "C3", "C2026-0003", stage="execution", action="offender-received")  # known codes, no route
    gw = Gateway(_config(tmp_path, src, out))
    await gw.start()
    try:
        await wait_for(lambda: (src / "error" / "C3.xml.error.txt").exists(), what="error sidecar")
        why = (src / "error" / "C3.xml.error.txt").read_text()
        assert "rejected" in why and "no route" in why
    finally:
        await gw.stop()


async def test_done_file_mode_waits_for_the_marker(tmp_path: Path) -> None:
    src, out = _dirs(tmp_path)
    drop(src, "C4", "C2026-0004")
    gw = Gateway(_config(tmp_path, src, out, complete_when="done-file"))
    await gw.start()
    try:
        await asyncio.sleep(0.6)
        assert visible(src) == ["C4.scan.pdf", "C4.xml"] and await _messages(gw) == []
        (src / "C4.xml.done").write_bytes(b"")
        await wait_for(lambda: visible(src) == [], what="taken after the done-file")
        assert sorted(visible(src / "archive")) == ["C4.scan.pdf", "C4.xml", "C4.xml.done"]
        assert len(await _messages(gw)) == 1
    finally:
        await gw.stop()


async def test_growing_file_is_not_taken_until_it_stops_growing(tmp_path: Path) -> None:
    src, out = _dirs(tmp_path)
    (src / "C5.scan.pdf").write_bytes(b"scan")
    body = dossier_record("C2026-0005", {"C5.scan.pdf": b"scan"}, note="x" * 4000)
    gw = Gateway(_config(tmp_path, src, out, poll_interval=0.2))
    await gw.start()
    try:
        with (src / "C5.xml").open("wb") as f:
            for i in range(0, len(body), 200):  # 20 writes, 0.1 s apart: 2 s of growth
                f.write(body[i : i + 200])
                f.flush()
                await asyncio.sleep(0.1)
                assert await _received(gw) == 0, "taken while still growing"
        await wait_for(lambda: visible(src) == [], what="taken once complete")
        assert await _received(gw) == 1 and len(await _messages(gw)) == 1
        assert visible(src / "error") == []
    finally:
        await gw.stop()


class _FailingMoveFS(LocalFS):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    def rename(self, src: str, dst: str) -> None:
        if self.fail and "/archive/" in dst:
            raise PermissionError(13, "Permission denied", dst)
        super().rename(src, dst)


async def test_failed_move_does_not_ingest_twice(tmp_path: Path) -> None:
    """The crash/failure window between intake and moving the file away: the fingerprint catches it."""
    src, out = _dirs(tmp_path)
    drop(src, "C6", "C2026-0006")
    gw = Gateway(_config(tmp_path, src, out, poll_interval=3600))
    await gw.start()
    try:
        for task in gw._tasks:  # this test polls by hand; the adapter's own loop would race it
            if task.get_name() == "inbound-police-in":
                task.cancel()
        adapter = gw.inbound["police-in"]
        assert isinstance(adapter, DropInbound)
        fs = _FailingMoveFS()
        (src / "archive").mkdir(exist_ok=True)
        for _ in range(2):  # two polls: seen, then stable and taken; the move fails
            with contextlib.suppress(PermissionError):
                await adapter.poll_once(fs, gw.intake)
        assert visible(src) == ["C6.scan.pdf", "C6.xml"] and len(await _messages(gw)) == 1
        fs.fail = False
        taken = await adapter.poll_once(fs, gw.intake)
        assert taken == 0 and visible(src) == [] and visible(src / "archive") == ["C6.scan.pdf", "C6.xml"]
        assert len(await _messages(gw)) == 1
    finally:
        await gw.stop()


async def test_delivery_retry_after_rename_never_writes_twice(tmp_path: Path) -> None:
    """A crash after the record's rename but before the result is stored: the retry must not resend."""
    src, out = _dirs(tmp_path)
    gw = Gateway(_config(tmp_path, src, out))
    gw.build()
    files = FileStore.for_data_dir(tmp_path / "data")
    sha, size = files.put_stream([b"scan"])
    msg = OutboundMessage(
        "d1", "m1", "m1:PROC", "PROC", "C7", b"<r/>", attachments=(Attachment("C7.pdf", sha, size),)
    )
    adapter = gw.outbound["PROC"]
    first = await adapter.deliver(msg)
    assert first.outcome == "delivered" and visible(out) == ["m1.xml"] and visible(out / "m1") == ["C7.pdf"]
    (out / "m1.xml").rename(tmp_path / "taken-by-receiver.xml")
    again = await adapter.deliver(msg)
    assert again.outcome == "delivered" and "earlier attempt" in again.detail
    assert visible(out) == [] and visible(out / "m1") == ["C7.pdf"]


async def test_gb18030_record_survives_byte_exact_names(tmp_path: Path) -> None:
    src, out = _dirs(tmp_path)
    (src / "C8.scan.pdf").write_bytes(b"scan")
    body = dossier_record(
        "C2026-0008", {"C8.scan.pdf": b"scan"}, note="李四 故意伤害案 太原市公安局"
    ).decode()
    legacy = body.replace('encoding="UTF-8"', 'encoding="GB18030"').encode("gb18030")
    (src / "C8.xml").write_bytes(legacy)
    gw = Gateway(_config(tmp_path, src, out))
    await gw.start()
    try:
        def records() -> list[str]:  # the dossier file arrives first; the record is what is awaited
            return [n for n in visible(out) if n.endswith(".xml")] if out.is_dir() else []

        await wait_for(records, what="delivery")
        from lxml import etree

        delivered = etree.fromstring((out / records()[0]).read_bytes())
        assert "李四 故意伤害案 太原市公安局" in "".join(delivered.itertext())
        raw = await gw.store.get_blob(hashlib.sha256(legacy).hexdigest())
        assert raw == legacy  # the original bytes are kept as received
    finally:
        await gw.stop()


async def test_two_cases_with_the_same_dossier_file_name_both_arrive_intact(tmp_path: Path) -> None:
    """Every transfer carries a 起诉意见书.pdf: the receiver must get each case's own, not the last one."""
    out = tmp_path / "proc"
    gw = Gateway(drop_config(tmp_path / "data", {"adapter": "memory"},
                             {"adapter": "folder", "settings": {"path": str(out)}}))
    await gw.start()
    try:
        await same_name_in_two_cases(gw, out)
    finally:
        await gw.stop()


async def test_a_name_taken_at_the_receiver_is_never_overwritten(tmp_path: Path) -> None:
    """A template without {message_id} makes two records meet at one name: the second is a dead letter
    with the reason, the receiver's file stays as it was, and nothing is reported delivered that is not."""
    src, out = _dirs(tmp_path)
    cfg = drop_config(
        tmp_path / "data",
        {"adapter": "folder", "settings": {"path": str(src), "poll_interval": 0.1}},
        {"adapter": "folder", "settings": {"path": str(out), "attachment_name": "{name}"}},
    )
    gw = Gateway(cfg)
    gw.build()
    files = FileStore.for_data_dir(tmp_path / "data")
    a, b = b"case A's statement", b"case B's statement, longer"
    (sha_a, size_a), (sha_b, size_b) = files.put_stream([a]), files.put_stream([b])
    adapter = gw.outbound["PROC"]
    ok = await adapter.deliver(OutboundMessage("d1", "m1", "m1:PROC", "PROC", "A709", b"<r/>",
                                               attachments=(Attachment("statement.pdf", sha_a, size_a),)))
    assert ok.outcome == "delivered"
    refused = await adapter.deliver(OutboundMessage("d2", "m2", "m2:PROC", "PROC", "A711", b"<r/>",
                                                    attachments=(Attachment("statement.pdf", sha_b, size_b),)))
    assert refused.outcome == "permanent" and "already exists at the receiver" in refused.detail
    assert (out / "statement.pdf").read_bytes() == a and not (out / "m2.xml").exists()
    again = await adapter.deliver(OutboundMessage("d1", "m1", "m1:PROC", "PROC", "A709", b"<r/>",
                                                  attachments=(Attachment("statement.pdf", sha_a, size_a),)))
    assert again.outcome == "delivered"  # the same bytes under the same name: a retry, not a collision

"""SFTP adapter against a real OpenSSH sshd on loopback: pick-up rules, pinned host keys, crashes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.config import parse_config
from gateway.model import OutboundMessage
from gateway.runtime import Gateway
from gateway.sim.sshd import SshServer, keygen

from .support.drops import FolderReceiver, drop, drop_dict, same_name_in_two_cases, visible
from .support.nodes import Node
from .support.records import dossier_record
from .support.waiting import wait_for

pytestmark = pytest.mark.sshd


def _sftp_config(
    tmp_path: Path,
    server: SshServer,
    src: Path,
    out: Path,
    inbound: dict[str, Any] | None = None,
    outbound: dict[str, Any] | None = None,
    **gateway: Any,
) -> dict[str, Any]:
    src.mkdir(parents=True, exist_ok=True)
    return drop_dict(
        tmp_path / "data",
        {"adapter": "sftp", "settings": server.settings(src, **{"poll_interval": 0.2, **(inbound or {})})},
        {"adapter": "sftp", "settings": server.settings(out, **(outbound or {}))},
        **gateway,
    )


async def test_two_cases_with_the_same_dossier_file_name_both_arrive_intact_over_sftp(
    tmp_path: Path, sshd: SshServer
) -> None:
    out = tmp_path / "proc"
    data = _sftp_config(tmp_path, sshd, tmp_path / "police", out)
    data["agencies"][0]["inbound"][0] = {"name": "police-in", "adapter": "memory"}
    gw = Gateway(parse_config(data))
    await gw.start()
    try:
        await same_name_in_two_cases(gw, out)
    finally:
        await gw.stop()


async def _received(gw: Gateway) -> int:
    return sum(1 for e in await gw.store.audit_entries() if e.action == "received")


async def test_record_with_dossier_over_sftp_taken_once_and_written_atomically(
    tmp_path: Path, sshd: SshServer
) -> None:
    src, out = tmp_path / "police", tmp_path / "proc"

    gw = Gateway(parse_config(_sftp_config(tmp_path, sshd, src, out, outbound={"done_file": True})))
    scan = os.urandom(3_000_000)
    (src / "S1.scan.pdf").write_bytes(scan)
    (src / "S1.xml").write_bytes(dossier_record("C2026-0101", {"S1.scan.pdf": scan}, note="张三 盗窃案"))
    await gw.start()
    try:
        await wait_for(
            lambda: out.is_dir() and any(n.endswith(".xml.done") for n in visible(out)),
            15,
            "delivery with done-file",
        )
        names = visible(out)
        record = next(n for n in names if n.endswith(".xml"))
        assert sorted(names) == sorted([record, record + ".done"])
        folder = out / record.removesuffix(".xml")  # the record's dossier files, in a folder of its own
        assert visible(folder) == ["S1.scan.pdf"]
        assert (folder / "S1.scan.pdf").read_bytes() == scan
        assert "张三 盗窃案" in (out / record).read_text(encoding="utf-8")
        await wait_for(lambda: visible(src) == [], 5, "source emptied")
        assert sorted(visible(src / "archive")) == ["S1.scan.pdf", "S1.xml"]
        await asyncio.sleep(0.6)
        assert await _received(gw) == 1
        adapter = gw.inbound["police-in"]
        assert adapter.health()["ok"] is True

        adapter._transport.close()  # type: ignore[attr-defined]  # the connection drops
        drop(src, "S1b", "C2026-0106")
        await wait_for(lambda: visible(src) == [], 15, "taken after reconnecting")
        assert await _received(gw) == 2 and adapter.health()["state"] == "connected"
    finally:
        await gw.stop()


async def test_slow_writer_is_never_taken_early(tmp_path: Path, sshd: SshServer) -> None:
    """The sender's file grows for 10 s, a write every 0.2 s; polls every 0.5 s must not take it early."""
    src, out = tmp_path / "police", tmp_path / "proc"
    from gateway.config import parse_config

    gw = Gateway(parse_config(_sftp_config(tmp_path, sshd, src, out, inbound={"poll_interval": 0.5})))
    (src / "S2.scan.pdf").write_bytes(b"scan")
    body = dossier_record("C2026-0102", {"S2.scan.pdf": b"scan"}, note="y" * 5000)
    pieces = [body[i : i + len(body) // 50 + 1] for i in range(0, len(body), len(body) // 50 + 1)]
    await gw.start()
    try:
        started = time.monotonic()
        with (src / "S2.xml").open("wb") as f:
            for piece in pieces:
                f.write(piece)
                f.flush()
                await asyncio.sleep(0.2)
                assert await _received(gw) == 0, "the growing file was taken before it was complete"
        assert time.monotonic() - started >= 10
        await wait_for(lambda: visible(src) == [], 10, "taken once complete")
        assert await _received(gw) == 1 and visible(src / "error") == []
        assert len(await gw.store.list_deliveries()) == 1
    finally:
        await gw.stop()


async def test_file_renamed_into_place_is_taken_once(tmp_path: Path, sshd: SshServer) -> None:
    src, out = tmp_path / "police", tmp_path / "proc"
    from gateway.config import parse_config

    gw = Gateway(parse_config(_sftp_config(tmp_path, sshd, src, out, inbound={"complete_when": "renamed"})))
    (src / "S3.scan.pdf").write_bytes(b"scan")
    body = dossier_record("C2026-0103", {"S3.scan.pdf": b"scan"})
    await gw.start()
    try:
        with (src / "S3.xml.part").open("wb") as f:  # written under an ignored temporary name
            for i in range(0, len(body), 40):
                f.write(body[i : i + 40])
                f.flush()
                await asyncio.sleep(0.05)
        assert await _received(gw) == 0
        os.rename(src / "S3.xml.part", src / "S3.xml")
        await wait_for(lambda: visible(src) == [], 10, "taken after the rename")
        await asyncio.sleep(0.6)
        assert await _received(gw) == 1 and visible(src / "archive") == ["S3.scan.pdf", "S3.xml"]
    finally:
        await gw.stop()


async def test_changed_host_key_stops_the_channel_visibly(tmp_path: Path, sshd: SshServer) -> None:
    src, out = tmp_path / "police", tmp_path / "proc"
    other = keygen(tmp_path / "impostor")
    pub = Path(f"{other}.pub").read_text().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {pub[0]} {pub[1]}\n")
    from gateway.config import parse_config

    cfg = _sftp_config(
        tmp_path, sshd, src, out, inbound={"known_hosts": str(known)}, outbound={"known_hosts": str(known)}
    )
    drop(src, "S4", "C2026-0104")
    gw = Gateway(parse_config(cfg))
    app = create_app(gw)
    await gw.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:

            async def stopped() -> bool:
                r = await client.get("/ready")
                return bool(r.json()["checks"]["inbound:police-in"].get("state") == "stopped")

            await wait_for(stopped, 10, "channel stopped")
            r = await client.get("/ready")
            assert r.status_code == 503
            check = r.json()["checks"]["inbound:police-in"]
            assert (
                check["ok"] is False
                and "CHANGED" in check["error"]
                and "refusing to connect" in check["error"]
            )
        assert visible(src) == ["S4.scan.pdf", "S4.xml"] and await _received(gw) == 0
        assert any(e.action == "channel-stopped" for e in await gw.store.audit_entries())
        result = await gw.outbound["PROC"].deliver(
            OutboundMessage("d", "m", "m:PROC", "PROC", "C2026-0104", b"<r/>")
        )
        assert result.outcome == "transient" and "CHANGED" in result.detail
        assert not out.exists()
    finally:
        await gw.stop()


async def test_fingerprint_pin_accepts_the_right_key_only(tmp_path: Path, sshd: SshServer) -> None:
    from adapters.sftp import OutboundSettings, SftpOutbound
    from adapters.testing import outbound_context

    out = tmp_path / "proc"
    good = OutboundSettings.model_validate(
        {**sshd.settings(out), "known_hosts": None, "host_key_fingerprint": sshd.fingerprint()}
    )
    bad = good.model_copy(update={"host_key_fingerprint": "SHA256:" + "A" * 43})
    msg = OutboundMessage("d", "m", "m:PROC", "PROC", "C2026-0105", b"<r/>", attachments=())
    ok = await SftpOutbound(good, outbound_context(tmp_path / "data", channel="x")).deliver(msg)
    assert ok.outcome == "delivered" and visible(out) == ["m.xml"]
    refused = await SftpOutbound(bad, outbound_context(tmp_path / "data", channel="y")).deliver(msg)
    assert refused.outcome == "transient" and "not the pinned" in refused.detail


# -- kill -9 mid-download and mid-upload ------------------------------------------------------------------
def _sizes(data: Path, out: Path) -> dict[Path, int]:
    found = {}
    # the receiver's dossier files are written into a folder per record, its records beside them
    folders = [out, *(p for p in out.iterdir() if p.is_dir())] if out.is_dir() else []  # a race is harmless
    places = [(data / "files" / "tmp", lambda n: True), *((d, lambda n: n.startswith(".")) for d in folders)]
    for d, temp in places:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # the receiver takes what is complete
            for p in d.iterdir():
                if temp(p.name):
                    with contextlib.suppress(FileNotFoundError):
                        found[p] = p.stat().st_size
    return found


def _busy(data: Path, out: Path) -> str:
    """Which transfer is under way right now: a temporary file growing in the gateway's file store
    (download) or in the receiver's directory (upload); "" when none is."""
    before = _sizes(data, out)
    time.sleep(0.01)
    after = _sizes(data, out)
    for p, size in after.items():
        if size > before.get(p, -1):
            return "upload" if p.is_relative_to(out) else "download"  # dossier files go in a folder per record
    return ""


@pytest.mark.slow
def test_kill_9_mid_transfer_loses_nothing_and_sends_nothing_twice(tmp_path: Path, sshd: SshServer) -> None:
    src, out, data = tmp_path / "police", tmp_path / "proc", tmp_path / "data"
    cfg = _sftp_config(
        tmp_path, sshd, src, out, inbound={"poll_interval": 0.2}, lease_seconds=3.0, api={"port": 0}
    )
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps(cfg))
    rng = random.Random(7)
    dossier: dict[str, str] = {}
    cases = [f"C2026-02{i:02d}" for i in range(5)]
    for i, case in enumerate(cases):
        blob = rng.randbytes(24_000_000)
        dossier[f"K{i}.scan.pdf"] = hashlib.sha256(blob).hexdigest()
        (src / f"K{i}.scan.pdf").write_bytes(blob)
        (src / f"K{i}.xml").write_bytes(dossier_record(case, {f"K{i}.scan.pdf": blob}))
    receiver = FolderReceiver(out, tmp_path / "taken", dossier)
    receiver.start()
    node = Node("sftp-node", 0, config)
    kills: list[str] = []
    try:
        for i in range(6):
            want = ("download", "upload")[i % 2]
            node.start()
            deadline = time.monotonic() + 15
            busy = ""
            while busy != want and time.monotonic() < deadline and len(receiver.cases) < len(cases):
                busy = _busy(data, out)
            node.kill()
            kills.append(busy or "idle")
        node.start()
        deadline = time.monotonic() + 90
        while sum(receiver.cases.values()) < len(cases) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # room for a wrong second delivery to show up
        assert node.stop(20), "the node did not stop on SIGTERM"
    finally:
        receiver.stop_flag.set()
        receiver.join()
        node.kill()
    receiver.scan()
    assert "download" in kills and "upload" in kills, kills  # the kills did land mid-transfer
    assert receiver.problems == []
    assert receiver.cases == {c: 1 for c in cases}, node.log.read_text()[-3000:] if node.log else ""
    assert visible(src) == [] and len([n for n in visible(src / "archive") if n.endswith(".xml")]) == len(
        cases
    )
    with sqlite3.connect(data / "gateway.db") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT case_number) FROM messages").fetchone() == (5, 5)
        assert db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall() == [
            ("delivered", 5)
        ]

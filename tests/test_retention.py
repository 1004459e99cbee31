"""Retention: payloads of finished exchanges go, unfinished ones never, shared ones only when unused.

Store-level tests run on SQLite and PostgreSQL; the end-to-end test runs a gateway node with
dossier files on disk, then reads the message, replays it and verifies and exports the log.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from gateway.api.app import create_app
from gateway.audit.chain import AuditEvent
from gateway.config import RetentionSettings, parse_config
from gateway.files import FileStore
from gateway.model import Attachment, DeliveryState, InboundRecord, MessageStatus, new_id, sha256_hex
from gateway.retention import run_retention
from gateway.runtime import Gateway
from gateway.store import migrations
from gateway.store.base import Finish, NewDelivery, NewMessage, Store
from tests.support.config import base_config
from tests.support.records import dossier_record
from tests.support.stores import MakeStore, store_settings, write_old_database

FAR = 1e12  # a cutoff after everything: "finished before" holds for every finished message


async def put(store: Store, *, dests: tuple[str, ...] = ("PROC",), body: bytes | None = None,
              bodies: dict[str, bytes] | None = None, files: tuple[Attachment, ...] = (),
              status: MessageStatus = MessageStatus.ACCEPTED) -> tuple[str, str]:
    """A message with its raw payload, one delivery per destination; (message id, raw hash)."""
    raw = body or f"<r>{new_id()}</r>".encode()
    h = sha256_hex(raw)
    bodies = bodies or {}
    m = NewMessage(new_id(), "POLICE", "police-in", None, h, h, "C-1", "trial", "indictment", status, (),
                   time.time(), summary={"attachments": [asdict(a) for a in files]} if files else {})
    deliveries = [NewDelivery(d, sha256_hex(bodies[d]) if d in bodies else h) for d in dests]
    blobs = {sha256_hex(b): b for b in bodies.values()}
    await store.record_message(m, raw, blobs, deliveries, [AuditEvent("received", "POLICE", m.message_id, "C-1", h)])
    return m.message_id, h


async def settle(store: Store, destination: str, state: DeliveryState) -> None:
    """Take every due delivery to `destination` and end it in `state`."""
    while leases := await store.lease(destination, 50, 30):
        for lease in leases:
            await store.finish(lease, Finish(state, "test", next_attempt_at=time.time() + 3600))


async def prune_all(store: Store, limit: int = 500) -> list[int]:
    after, counts = None, []
    while True:
        batch = await store.prune_payloads(FAR, limit, after, "retention", "payload_days=1")
        counts.append(batch.messages)
        if batch.after is None:
            return counts
        after = batch.after


async def pruned_at(store: Store, mid: str) -> float | None:
    m = await store.get_message(mid)
    assert m is not None
    return m.payload_pruned_at


async def test_only_finished_messages_lose_payloads(store: Store) -> None:
    delivered, h_delivered = await put(store)
    await settle(store, "PROC", DeliveryState.DELIVERED)
    dead, h_dead = await put(store, dests=("COURT",))
    await settle(store, "COURT", DeliveryState.DEAD)
    waiting, h_waiting = await put(store, dests=("POLICE",))
    await settle(store, "POLICE", DeliveryState.RETRYING)  # retrying an hour from now
    queued, h_queued = await put(store, dests=("JUSTICE",))
    refused, h_refused = await put(store, dests=(), status=MessageStatus.REJECTED)

    assert await prune_all(store) == [2]
    for mid, h in ((delivered, h_delivered), (refused, h_refused)):
        assert await store.get_blob(h) is None
        assert await pruned_at(store, mid)
    for mid, h in ((dead, h_dead), (waiting, h_waiting), (queued, h_queued)):
        assert await store.get_blob(h) is not None, "an unfinished exchange lost its payload"
        assert await pruned_at(store, mid) is None
    pruned = [e for e in await store.audit_entries(limit=1000) if e.action == "payload-pruned"]
    assert sorted(e.message_id for e in pruned) == sorted([delivered, refused])
    assert all(e.actor == "retention" and "payload_days=1" in e.detail for e in pruned)
    assert await prune_all(store) == [0], "a second run finds nothing new"


async def test_cutoff_counts_from_the_last_delivery_not_arrival(store: Store) -> None:
    mid, h = await put(store)
    cutoff = time.time()
    await asyncio.sleep(0.01)
    await settle(store, "PROC", DeliveryState.DELIVERED)  # finished after the cutoff
    assert (await store.prune_payloads(cutoff, 100, None, "retention", "p")).messages == 0
    assert await store.get_blob(h) is not None
    assert (await store.prune_payloads(time.time(), 100, None, "retention", "p")).messages == 1


async def test_discarded_is_finished_dead_is_not(store: Store) -> None:
    mid, h = await put(store)
    await settle(store, "PROC", DeliveryState.DEAD)
    assert await prune_all(store) == [0]
    (d,) = await store.get_deliveries(mid)
    await store.discard(d.id, "operator:ops", "agency confirmed it has the record")
    assert await prune_all(store) == [1]
    assert await store.get_blob(h) is None


async def test_a_payload_another_message_still_needs_stays(store: Store) -> None:
    shared = b"<r>the same standard record, sent on by two messages</r>"
    first, _ = await put(store, bodies={"PROC": shared})
    await settle(store, "PROC", DeliveryState.DELIVERED)
    second, _ = await put(store, dests=("COURT",), bodies={"COURT": shared})
    first_batch = await store.prune_payloads(FAR, 100, None, "retention", "p")
    assert first_batch.messages == 1 and first_batch.blobs == 1  # first's raw only
    assert await store.get_blob(sha256_hex(shared)) == shared, "the second message's body was dropped"
    await settle(store, "COURT", DeliveryState.DELIVERED)
    second_batch = await store.prune_payloads(FAR, 100, None, "retention", "p")
    assert (second_batch.messages, second_batch.blobs) == (1, 2)
    assert second_batch.blob_bytes > len(shared)  # the shared body and second's raw
    assert await store.get_blob(sha256_hex(shared)) is None


async def test_dossier_files_are_listed_once_no_message_needs_them(store: Store) -> None:
    scan = Attachment("scan.pdf", "ab" * 32, 10, "application/pdf")
    other = Attachment("photo.jpg", "cd" * 32, 10, "image/jpeg")
    await put(store, files=(scan, other))
    await settle(store, "PROC", DeliveryState.DELIVERED)
    await put(store, dests=("COURT",), files=(scan,))  # the court hop carries the same scan
    batch = await store.prune_payloads(FAR, 100, None, "retention", "p")
    assert batch.files == 1
    assert await store.file_removals(100) == [other.sha256]
    await store.files_removed([other.sha256])
    assert await store.file_removals(100) == []
    await settle(store, "COURT", DeliveryState.DELIVERED)
    await store.prune_payloads(FAR, 100, None, "retention", "p")
    assert await store.file_removals(100) == [scan.sha256]


async def test_batches_walk_past_unfinished_messages(store: Store) -> None:
    ids = []
    for i in range(7):
        mid, _ = await put(store, dests=("PROC",) if i != 3 else ("COURT",))
        ids.append(mid)
    await settle(store, "PROC", DeliveryState.DELIVERED)  # the 4th (to COURT) stays queued
    assert await prune_all(store, limit=2) == [2, 1, 2, 1]
    pruned = {mid for mid in ids if await pruned_at(store, mid)}
    assert pruned == set(ids) - {ids[3]}


async def test_replay_of_a_pruned_message_is_refused(store: Store) -> None:
    mid, h = await put(store)
    await settle(store, "PROC", DeliveryState.DELIVERED)
    await prune_all(store)
    (d,) = await store.get_deliveries(mid)
    with pytest.raises(ValueError, match="retention"):
        await store.enqueue_replay(d.id, h, "operator:ops", "again")


async def test_counts_stay_exact_through_replays(store: Store) -> None:
    """A replay with the body the message already holds, then with a new one: after pruning, neither
    is left behind (a count off by one would keep a payload forever)."""
    mid, h = await put(store)
    await settle(store, "PROC", DeliveryState.DELIVERED)
    (d,) = await store.get_deliveries(mid)
    await store.enqueue_replay(d.id, h, "operator:ops", "same body")
    remapped = await store.put_blob(b"<r>mapped again with the pack's new version</r>")
    await store.enqueue_replay(d.id, remapped, "operator:ops", "new mapping")
    await settle(store, "PROC", DeliveryState.DELIVERED)
    batch = await store.prune_payloads(FAR, 100, None, "retention", "p")
    assert (batch.messages, batch.blobs) == (1, 2)
    assert await store.get_blob(h) is None and await store.get_blob(remapped) is None


async def test_upgrade_counts_what_older_messages_hold(backend: str, make_store: MakeStore) -> None:
    """A database written before retention existed: the migration counts its payloads, so the first
    run frees what is unused and keeps what a waiting message still needs, on both backends."""
    store = make_store("old")
    scan = {"name": "s.pdf", "sha256": "ef" * 32, "size": 1, "media_type": "application/pdf"}
    statements: list[tuple[str, tuple[object, ...]]] = []
    for mid, state, body in (("m1", "delivered", b"<a/>"), ("m2", "queued", b"<b/>")):
        h = sha256_hex(body)
        statements += [
            ("INSERT INTO blobs VALUES (?,?,?)", (h, len(body), body)),
            ("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
             (mid, "POLICE", "police-in", None, h, h, "C-1", "trial", "indictment", "accepted", "[]", 1.0, None,
              None, json.dumps({"attachments": [scan]}), "{}", "old")),
            ("INSERT INTO deliveries (id, message_id, destination, case_number, body_hash, content_type, state, "
             "reason, created_at, updated_at, next_attempt_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
             (mid + "-d", mid, "PROC", "C-1", h, "application/xml", state, "", 1.0, 1.0, 1.0)),
        ]
    write_old_database(store, backend, 2, statements)
    assert await store.upgrade() == list(range(3, migrations.latest(backend) + 1))
    await store.open()
    try:
        batch = await store.prune_payloads(FAR, 100, None, "retention", "p")
        assert (batch.messages, batch.blobs, batch.files) == (1, 1, 0)  # the scan: m2 still holds it
        assert await store.get_blob(sha256_hex(b"<b/>")) == b"<b/>"
        await settle(store, "PROC", DeliveryState.DELIVERED)
        batch = await store.prune_payloads(FAR, 100, None, "retention", "p")
        assert (batch.messages, batch.blobs, batch.files) == (1, 1, 1)
        assert await store.file_removals(10) == [scan["sha256"]]
    finally:
        await store.close()


async def test_files_no_message_took_in_are_removed_after_the_grace(store: Store, tmp_path: Path) -> None:
    """An upload refused after some of its files were stored leaves files no message holds."""
    files = FileStore(tmp_path / "orphans")
    held_sha, _ = files.put_stream([b"scan held by a message"])
    old_sha, old_size = files.put_stream([b"an old file of an upload that was refused"])
    new_sha, _ = files.put_stream([b"a file whose record may still be streaming in"])
    await put(store, files=(Attachment("scan.pdf", held_sha, 22, "application/pdf"),))
    assert await store.known_files([held_sha, old_sha, new_sha]) == {held_sha}
    week_ago = time.time() - 7 * 86400
    for sha in (held_sha, old_sha):
        os.utime(files.path_for(sha), (week_ago, week_ago))
    report = await run_retention(store, files, RetentionSettings(payload_days=30))
    assert (report.orphans, report.orphan_bytes) == (1, old_size)
    assert "1 file(s) of uploads whose record never arrived removed" in report.summary()
    assert files.has(held_sha) and files.has(new_sha) and not files.has(old_sha)
    assert set(files.hashes()) == {held_sha, new_sha}


async def test_sqlite_gives_freed_pages_back(tmp_path: Path) -> None:
    from gateway.store.sqlite import SQLiteStore

    path = tmp_path / "gw.db"
    store = SQLiteStore(path, durability="normal")
    await store.open()
    try:
        for i in range(60):
            await put(store, body=f"<r>{i}</r>".encode() + os.urandom(100_000))  # incompressible: kept as is
        await settle(store, "PROC", DeliveryState.DELIVERED)
        report = await run_retention(store, FileStore(tmp_path / "files"), RetentionSettings(payload_days=1),
                                     now=FAR)
        assert report.messages == 60 and report.blob_bytes > 60 * 100_000
        assert report.reclaimed_bytes > 60 * 90_000, report
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert path.stat().st_size < 2_000_000
        conn.close()
    finally:
        await store.close()


# -- a node, end to end --------------------------------------------------------------------------------
@pytest.fixture
async def node(tmp_path: Path, backend: str, request: pytest.FixtureRequest,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    data = base_config(tmp_path / "data", retention={"payload_days": 30})
    data["gateway"]["store"] = store_settings(backend, request, monkeypatch)
    data["access"] = {"operators": [{"name": "ops", "key": {"env": "OPS_KEY"}}],
                      "auditors": [{"name": "aud", "key": {"env": "AUD_KEY"}}]}
    monkeypatch.setenv("OPS_KEY", "ops-key")
    monkeypatch.setenv("AUD_KEY", "aud-key")
    gw = Gateway(parse_config(data))
    await gw.start()
    yield gw
    await gw.stop()


async def test_node_drops_payloads_and_files_and_keeps_history(node: Gateway, tmp_path: Path) -> None:
    files = FileStore.for_data_dir(node.config.gateway.data_dir)
    sha, size = files.put_stream([b"%PDF scanned confession " * 1000])
    body = dossier_record("C-RET-1", {"scan.pdf": (sha, size)})
    receipt = await node.intake(InboundRecord("police-in", "POLICE", body,
                                              attachments=(Attachment("scan.pdf", sha, size, "application/pdf"),)))
    assert receipt.status == MessageStatus.ACCEPTED, receipt.reasons
    for _ in range(200):
        ds = await node.store.get_deliveries(receipt.message_id)
        if ds and all(d.state == "delivered" for d in ds):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail(f"not delivered: {ds}")

    assert await node.retention() is not None  # 30 days: nothing is old enough yet
    assert await node.store.get_blob(receipt.content_hash) is not None

    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as api:
        ops = {"X-API-Key": "ops-key"}
        r = await api.post("/api/v1/retention/run", params={"days": 1e-9}, headers=ops)
        assert r.status_code == 200, r.text
        assert r.json()["messages"] == 1 and r.json()["blobs"] >= 2
        assert r.json()["files_waiting"] == 1, "a file stored moments ago must wait out the grace period"
        assert files.has(sha)
        os.utime(files.path_for(sha), (time.time() - 2 * 86400,) * 2)
        r = await api.post("/api/v1/retention/run", params={"days": 1e-9}, headers=ops)
        assert (r.json()["files"], r.json()["file_bytes"]) == (1, size)
        assert not files.has(sha)

        status = (await api.get(f"/api/v1/messages/{receipt.message_id}", headers=ops)).json()
        assert status["payload_pruned_at"] and status["case_number"] == "C-RET-1"
        (d,) = status["deliveries"]
        r = await api.post(f"/api/v1/deliveries/{d['id']}/replay", headers=ops, json={"reason": "again"})
        assert r.status_code == 409 and "retention" in r.json()["detail"]
        r = await api.post("/api/v1/retention/run", headers={"X-API-Key": "aud-key"})
        assert r.status_code == 403

    from gateway.audit.export import export_case
    from gateway.audit.verify import verify_store

    assert (await verify_store(node.store, node.signer.public)).ok  # type: ignore[union-attr]
    exported = await export_case(node.store, "C-RET-1", tmp_path / "bundle", node.signer)  # type: ignore[arg-type]
    manifest = json.loads((exported.directory / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["payloads_not_stored"] >= 2
    from gateway.audit.verify_bundle import verify_bundle

    report = verify_bundle(exported.directory)
    kept = len(list((exported.directory / "evidence").glob("*.xml")))  # signed evidence outlives retention
    assert kept >= 2
    assert report.ok and report.payloads_checked == kept and report.payloads_absent > 0, report.lines()

"""The Store contract, straight against each backend (SQLite and PostgreSQL), no pipeline around it."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.audit.chain import GENESIS, AuditEvent
from gateway.audit.verify_bundle import entry_hash_of
from gateway.model import DeliveryState, MessageStatus, new_id, sha256_hex
from gateway.store import migrations
from gateway.store.base import Finish, NewDelivery, NewMessage, StaleLease, Store
from tests.support.stores import MakeStore, set_schema_version


async def put(
    store: Store,
    case: str = "C-1",
    dests: tuple[str, ...] = ("PROC",),
    mid: str | None = None,
    body: bytes | None = None,
) -> str:
    raw = body or f"<r>{case}{new_id()}</r>".encode()
    h = sha256_hex(raw)
    m = NewMessage(
        new_id(),
        "POLICE",
        "police-in",
        mid,
        h,
        h,
        case,
        "trial",
        "indictment",
        MessageStatus.ACCEPTED,
        (),
        time.time(),
    )
    r = await store.record_message(
        m,
        raw,
        {},
        [NewDelivery(d, h) for d in dests],
        [AuditEvent("received", "POLICE", m.message_id, case, h)],
    )
    return r.message_id


async def chain_ok(store: Store) -> list[str]:
    entries = await store.audit_entries(limit=100_000)
    prev = GENESIS
    for i, e in enumerate(entries, 1):
        assert e.seq == i and e.prev_hash == prev and entry_hash_of(vars(e)) == e.entry_hash, f"chain broken at {e.seq}"
        prev = e.entry_hash
    assert (await store.audit_head()) == (len(entries), prev)
    return [e.node for e in entries]


def done(detail: str = "ok") -> Finish:
    return Finish(DeliveryState.DELIVERED, detail)


async def test_resend_gets_original_receipt(store: Store) -> None:
    first = await put(store, mid="M-1", body=b"<a/>")
    raw = b"<a-changed/>"
    m = NewMessage(
        new_id(),
        "POLICE",
        "police-in",
        "M-1",
        sha256_hex(raw),
        "",
        "C-1",
        "",
        "",
        MessageStatus.ACCEPTED,
        (),
        time.time(),
    )
    again = await store.record_message(m, raw, {}, [NewDelivery("PROC", "x")], [])
    assert again.duplicate and again.message_id == first
    by_content = await store.find_receipt("POLICE", None, sha256_hex(b"<a/>"))
    assert by_content is not None and by_content.message_id == first
    assert len(await store.get_deliveries(first)) == 1


async def test_order_per_case_one_lease_per_case(store: Store) -> None:
    a1, a2, b1 = await put(store, "A"), await put(store, "A"), await put(store, "B")
    leases = await store.lease("PROC", 10, 30)
    assert sorted(x.message_id for x in leases) == sorted([a1, b1])  # A's second waits for its first
    for x in leases:
        await store.finish(x, done())
    nxt = await store.lease("PROC", 10, 30)
    assert [x.message_id for x in nxt] == [a2]


async def test_expired_lease_is_retaken_and_stale_result_rejected(store: Store) -> None:
    await put(store)
    (old,) = await store.lease("PROC", 1, 0.2)
    assert await store.lease("PROC", 1, 30) == []
    await asyncio.sleep(0.3)
    (new,) = await store.lease("PROC", 1, 30)
    assert new.delivery_id == old.delivery_id and new.attempt == 2 and new.token != old.token
    with pytest.raises(StaleLease):
        await store.finish(old, done())
    await store.finish(new, done())
    d = await store.get_delivery(new.delivery_id)
    assert d is not None and d.state == "delivered"


async def test_dead_holds_later_records_until_replay_or_discard(store: Store) -> None:
    await put(store, "A")
    later = await put(store, "A")
    (first,) = await store.lease("PROC", 5, 30)
    await store.finish(first, Finish(DeliveryState.DEAD, "refused"))
    assert await store.lease("PROC", 5, 30) == []
    held = (await store.get_deliveries(later))[0]
    assert held.reason.startswith("held:") and first.delivery_id in held.reason
    new = await store.enqueue_replay(first.delivery_id, first.body_hash, "operator:ann", "fixed")
    replayed = await store.get_delivery(first.delivery_id)
    assert replayed is not None and replayed.state == "discarded"
    assert (await store.get_deliveries(later))[0].reason == "queued for delivery"
    ids = {x.delivery_id for x in await store.lease("PROC", 5, 30)}
    assert ids == {
        (await store.get_deliveries(later))[0].id
    }  # replay queues behind the case's waiting record
    assert new in {d.id for d in await store.list_deliveries(state="queued")}


async def test_a_replay_expecting_dead_is_refused_once_someone_replayed_it(store: Store) -> None:
    await put(store, "A")
    (first,) = await store.lease("PROC", 5, 30)
    await store.finish(first, Finish(DeliveryState.DEAD, "refused"))
    await store.enqueue_replay(first.delivery_id, first.body_hash, "operator:ann", "fixed", expect_state="dead")
    with pytest.raises(ValueError, match="someone else acted on it first"):
        await store.enqueue_replay(first.delivery_id, first.body_hash, "operator:bo", "fixed", expect_state="dead")
    assert len(await store.list_deliveries(destination="PROC")) == 2  # the dead one and one replay, not two


async def test_discard_unblocks_and_is_logged(store: Store) -> None:
    await put(store, "A")
    later = await put(store, "A")
    (first,) = await store.lease("PROC", 5, 30)
    await store.finish(first, Finish(DeliveryState.DEAD, "refused"))
    await store.discard(first.delivery_id, "operator:ann", "sent on paper")
    with pytest.raises(ValueError, match="only dead or waiting"):
        await store.discard(first.delivery_id, "operator:ann", "again")
    leases = await store.lease("PROC", 5, 30)
    assert [x.message_id for x in leases] == [later]
    actions = [e.action for e in await store.audit_entries()]
    assert actions.count("discarded") == 1 and "dead-lettered" in actions


async def test_release_leases_gives_work_back(store: Store) -> None:
    await put(store)
    (x,) = await store.lease("PROC", 1, 300)
    assert await store.release_leases() == 1
    (y,) = await store.lease("PROC", 1, 300)
    assert y.delivery_id == x.delivery_id and y.attempt == 1


async def test_audit_chain_unbroken_and_append_only(store: Store) -> None:
    for _ in range(5):
        await put(store)
    await store.append_audit([AuditEvent("note", "op", detail={"i": i}) for i in range(3)])
    nodes = await chain_ok(store)
    assert set(nodes) == {"node-a"}
    seq, head = await store.audit_head()
    await store.add_checkpoint(seq, head, "2026-01-01T00:00:00Z", "sig", "k1")
    assert [c.seq for c in await store.checkpoints()] == [seq]


async def test_an_agencys_last_conformance_run_is_its_newest_own_run(store: Store) -> None:
    from gateway.conformance import ACTION

    await store.append_audit([AuditEvent(ACTION, "COURT", detail={"passed": False}),
                              AuditEvent(ACTION, "POLICE", detail={"passed": False})])
    await store.append_audit([AuditEvent(ACTION, "COURT", detail={"passed": True}),
                              AuditEvent("note", "COURT", detail={"i": 1}),
                              AuditEvent(ACTION, "POLICE", detail={"passed": True})])
    court = await store.last_conformance_run("COURT")
    assert court is not None and (court.action, court.actor, court.detail) == (ACTION, "COURT", '{"passed":true}')
    police = await store.last_conformance_run("POLICE")
    assert police is not None and police.actor == "POLICE" and police.seq > court.seq
    assert await store.last_conformance_run("PROC") is None


async def test_keys_files_and_named_locks(store: Store) -> None:
    await store.put_api_key("h1", "agency", "POLICE", "POLICE")
    await store.put_api_key("h1", "operator", "ann", None)
    key = await store.find_api_key("h1")
    assert key is not None and key.role == "operator"
    assert await store.file_seen("sftp-in", "f1") is None
    await store.mark_file("sftp-in", "f1", "m1")
    await store.mark_file("sftp-in", "f1", "m2")
    assert await store.file_seen("sftp-in", "f1") == "m1"
    async with store.locked("sftp:police-in") as mine:
        assert mine
        assert not await store.try_lock("sftp:police-in")
    assert await store.try_lock("sftp:police-in")
    await store.unlock("sftp:police-in")


async def test_schema_version_mismatch_refused(make_store: MakeStore) -> None:
    s = make_store("node-a")
    assert await s.schema_version() == 0
    assert await s.upgrade() == list(range(1, migrations.SCHEMA_VERSION + 1))
    assert await s.upgrade() == []
    with pytest.raises(migrations.SchemaMismatch, match="older"):
        migrations.check(migrations.SCHEMA_VERSION - 1, "x", "sqlite")
    await set_schema_version(s, migrations.SCHEMA_VERSION + 1)
    with pytest.raises(migrations.SchemaMismatch, match="newer than version"):
        await s.open()


async def test_wake_up_time_reads_only_waiting_deliveries(store: Store) -> None:
    """next_due runs on every idle turn of the dispatcher: its plan must use the index of waiting
    deliveries, never walk the delivered history (which only grows)."""
    waiting = "SELECT MIN(next_attempt_at) FROM deliveries WHERE state IN ('queued','retrying')"
    if hasattr(store, "dsn"):
        import psycopg

        async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as c:
            await c.execute("SET enable_seqscan = off")  # the plan it would take on a large table
            cur = await c.execute(f"EXPLAIN {waiting}".encode())
            plan = " ".join(str(r[0]) for r in await cur.fetchall())
    else:
        import sqlite3

        with sqlite3.connect(store.path) as c:  # type: ignore[attr-defined]
            plan = " ".join(str(r[-1]) for r in c.execute(f"EXPLAIN QUERY PLAN {waiting}"))
    assert "deliveries_waiting" in plan, plan
    await put(store, "C-1")
    assert await store.next_due() is not None


# -- several nodes on one PostgreSQL database --------------------------------------------------------
@pytest.mark.postgres
async def test_nodes_share_work_once_and_one_chain(pg_dsn: str) -> None:
    from gateway.store.postgres import PostgresStore

    nodes = [PostgresStore(pg_dsn, node=f"n{i}") for i in range(3)]
    for n in nodes:
        await n.open()
    try:
        # concurrent intake on all nodes, with resends of the same message id landing on other nodes
        async def intake(i: int) -> list[str]:
            return [await put(nodes[i], f"C{k % 17}", mid=f"M{k}") for k in range(i, 150, 2)]

        got = await asyncio.gather(*(intake(i) for i in range(3)))
        assert len({mid for ids in got for mid in ids}) == 150  # M{k} sent twice -> one message each
        taken: list[str] = []

        async def work(n: PostgresStore) -> None:
            while True:
                leases = await n.lease("PROC", 8, 30)
                if not leases:
                    if await n.next_due() is None:
                        return
                    await asyncio.sleep(0.01)
                    continue
                for x in leases:
                    taken.append(x.delivery_id)
                    await n.finish(x, done())

        await asyncio.wait_for(asyncio.gather(*(work(n) for n in nodes)), 60)
        assert len(taken) == 150 == len(set(taken))
        logged = await chain_ok(nodes[0])
        assert {"n0", "n1", "n2"} <= set(logged)
        assert await nodes[1].try_lock("sftp:x") and not await nodes[2].try_lock("sftp:x")
    finally:
        for n in nodes:
            await n.close()


@pytest.mark.postgres
async def test_notify_wakes_an_idle_node(pg_dsn: str) -> None:
    from gateway.store.postgres import PostgresStore

    a, b = PostgresStore(pg_dsn, node="a"), PostgresStore(pg_dsn, node="b")
    await a.open()
    await b.open()
    try:
        await asyncio.sleep(0.2)
        await b.wait_for_work(0.01)  # swallow the wake-up of connecting
        t0 = time.monotonic()
        waiter = asyncio.create_task(b.wait_for_work(10))
        await asyncio.sleep(0.1)
        await put(a)
        await asyncio.wait_for(waiter, 5)
        assert time.monotonic() - t0 < 2, "the idle node waited for its timeout instead of the notification"
    finally:
        await a.close()
        await b.close()


@pytest.mark.postgres
async def test_a_node_vacuums_the_queue_as_deliveries_finish(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dead row versions and stale statistics slow every lease: a node vacuums the queue itself, autovacuum or not."""
    import psycopg

    from gateway.store.postgres import PostgresStore, connection

    monkeypatch.setattr(connection, "VACUUM_EVERY", 3)

    async def analyses() -> int:
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as c:
            await c.execute("SELECT pg_stat_clear_snapshot()")
            row = await (await c.execute(
                "SELECT least(analyze_count, vacuum_count) FROM pg_stat_user_tables WHERE relname = 'deliveries' "
                "AND schemaname = current_schema()")).fetchone()
            return int(row[0]) if row else 0

    s = PostgresStore(pg_dsn, node="n")
    await s.open()
    try:
        before = await analyses()
        for i in range(3):
            await put(s, f"C{i}")
        for x in await s.lease("PROC", 8, 30):
            await s.finish(x, done())
        deadline = time.monotonic() + 20  # the statistics collector reports with a short delay
        while await analyses() == before and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert await analyses() == before + 1
    finally:
        await s.close()


async def test_lease_carries_the_dossier_files_of_an_accepted_message(store: Store) -> None:
    """The dispatcher needs no message read per attempt: the lease lists the dossier files."""
    from dataclasses import asdict

    from gateway.model import Attachment

    scan = Attachment("S1.scan.pdf", "ab" * 32, 1234, "application/pdf")
    for status, summary in [
        (MessageStatus.ACCEPTED, {"attachments": [asdict(scan)]}),
        (MessageStatus.ACCEPTED, {}),
        (MessageStatus.REJECTED, {"attachments": [asdict(scan)]}),  # a defect notice carries none
    ]:
        raw = f"<r>{new_id()}</r>".encode()
        h = sha256_hex(raw)
        m = NewMessage(new_id(), "POLICE", "police-in", None, h, h, f"C-{new_id()}", "trial", "indictment",
                       status, (), time.time(), summary=summary)
        await store.record_message(m, raw, {}, [NewDelivery("PROC", h)], [])
    leases = await store.lease("PROC", 10, 30)
    assert [x.attachments for x in leases] == [(scan,), (), ()]


async def test_reads_are_rows_answered_as_the_api_always_answered_them(store: Store) -> None:
    """Typed rows on both backends; their JSON keeps the columns, in order, that the API has always sent
    (a delivery's receipt as text and last, its lease token never)."""
    mid = await put(store, "R", dests=("PROC", "COURT"))
    (lease,) = await store.lease("PROC", 1, 30)
    await store.finish(lease, Finish(DeliveryState.DELIVERED, "ok", receipt="收据".encode()))
    m = await store.get_message(mid)
    assert m is not None and m.status == MessageStatus.ACCEPTED and m.receipt["message_id"] == mid
    assert list(m.as_json()) == [
        "id", "sender", "channel", "sender_message_id", "content_hash", "canonical_hash", "case_number", "stage",
        "action", "status", "reasons", "received_at", "file_name", "operation", "summary", "receipt", "node",
        "payload_pruned_at"]
    d = await store.get_delivery(lease.delivery_id)
    assert d is not None and d.state == DeliveryState.DELIVERED and d.receipt == "收据"
    assert list(d.as_json()) == [
        "seq", "id", "message_id", "destination", "case_number", "body_hash", "content_type", "file_name", "state",
        "reason", "attempts", "created_at", "updated_at", "next_attempt_at", "lease_owner", "lease_expires_at",
        "delivered_at", "replay_of", "receipt"]
    assert [x.as_json()["state"] for x in await store.get_deliveries(mid)] == ["delivered", "queued"]
    (a,) = await store.get_attempts(lease.delivery_id)
    assert (a.attempt, a.outcome, a.detail) == (1, "delivered", "ok")
    depths = {(q.destination, q.state): q.count for q in await store.queue_depths()}
    assert depths == {("COURT", "queued"): 1, ("PROC", "delivered"): 1}
    assert list((await store.queue_depths())[0].as_json()) == ["destination", "state", "count", "oldest"]

"""Benchmark: what operators and auditors read, as the store grows to a province's year of traffic.

    .venv/bin/python bench/store_growth.py --records 1000000 --backend sqlite|postgres [--sizes 0,100000]

A real node (`python -m gateway CONFIG`, police pack in, procuratorate pack out, checkpoints
signed) takes a few police records (4.3 KB, GB18030) over HTTP and delivers them to a loopback
receiver; those records are the templates. The node stops, and the store is filled to each size
*through the store's own write path* (its writer, group commits, `Tx.audit`, so the hash chain
and signed checkpoints are the real ones; on PostgreSQL the writer's transaction with the rows
loaded by COPY, see `fill_postgres`, then ANALYZE, as autovacuum would) with copies of what
intake and delivery wrote for a template: the message, its three payloads (raw, canonical,
outbound body; each copy under its own case number, so nothing is shared that intake would not
share), the delivery, its attempt and its log entries. States as after a year: 96% delivered, 2%
dead-lettered, 2% waiting for a retry (due in a day, so the restarted node leaves them alone).

At each size the node starts again and every operator- and auditor-facing read is timed over
HTTP (median and fastest of 15, ms), with the bytes stored per record (database file(s) + files).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peer import police_record  # noqa: E402

from gateway.audit.chain import AuditEntry, AuditEvent, seal  # noqa: E402
from gateway.audit.signing import Sealer, Signer  # noqa: E402
from gateway.audit.verify_bundle import canonical_detail, entry_hash_of  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.model import new_id, sha256_hex  # noqa: E402
from gateway.store import make_store  # noqa: E402
from gateway.store.shared import audit_values, checkpoint_rows, iso_now  # noqa: E402
from tests.support.nodes import Node  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/"
OPERATOR_KEY = "bench-operator-key-" + "x" * 24
AUDITOR_KEY = "bench-auditor-key-" + "y" * 24
POLICE_KEY = "bench-police-key-" + "z" * 24
TEMPLATE_CASE = "A140105202T000001"
BATCH = 1000
REPEAT = 15


def config(data: Path, port: int, receiver: str, store: dict[str, Any]) -> dict[str, Any]:
    return {
        "gateway": {"node": "grow", "data_dir": str(data), "store": store, "checkpoint_every": 2000,
                    "api": {"host": "127.0.0.1", "port": port}},
        "access": {"operators": [{"name": "ops-bench", "key": {"env": "BENCH_OPERATOR_KEY"}}],
                   "auditors": [{"name": "audit-bench", "key": {"env": "BENCH_AUDITOR_KEY"}}]},
        "agencies": [
            {"code": "POLICE", "name": "City Police", "role": "police", "api_key": {"env": "BENCH_POLICE_KEY"},
             "inbound": [{"name": "police-in", "adapter": "http", "mapping": "police"}]},
            {"code": "PROC", "name": "City Procuratorate", "role": "procuratorate",
             "outbound": {"name": "proc-out", "adapter": "http", "mapping": "procuratorate",
                          "settings": {"url": receiver}}},
        ],
        "routes": [{"stage": "arrest-review", "action": "request-arrest-approval", "to": ["PROC"]}],
    }


# -- the template: what one record left in the store -----------------------------------------------

class Template:
    """Rows of one delivered record, read back from the store with plain SQL (column names kept)."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]], blobs: dict[str, bytes]) -> None:
        self.message = rows["messages"][0]
        self.delivery = rows["deliveries"][0]
        self.attempt = rows["attempts"][0]
        # a resend answered from the store is not part of a record's own story
        self.entries = [e for e in rows["audit_log"] if e["action"] != "duplicate"]
        self.blobs = blobs


def read_template(backend: str, where: str, message_id: str) -> Template:
    mark = "?" if backend == "sqlite" else "%s"
    queries = {
        "messages": f"SELECT * FROM messages WHERE id = {mark}",
        "deliveries": f"SELECT * FROM deliveries WHERE message_id = {mark}",
        "attempts": f"SELECT a.* FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.message_id = {mark}",
        "audit_log": f"SELECT * FROM audit_log WHERE message_id = {mark} ORDER BY seq",
    }
    rows: dict[str, list[dict[str, Any]]] = {}
    conn: Any = sqlite3.connect(where) if backend == "sqlite" else psycopg.connect(where)
    try:
        for table, sql in queries.items():
            cur = conn.execute(sql, (message_id,))
            names = [d[0] for d in cur.description]
            rows[table] = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        m, d = rows["messages"][0], rows["deliveries"][0]
        blobs = {}
        for h in (m["content_hash"], m["canonical_hash"], d["body_hash"]):
            got = conn.execute(f"SELECT data FROM blobs WHERE sha256 = {mark}", (h,)).fetchone()
            blobs[h] = bytes(got[0])
    finally:
        conn.close()
    return Template(rows, blobs)


def _swap(value: Any, subs: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for old, new in subs:
            value = value.replace(old, new)
    return value


class Copy:
    """One generated record: the template's rows under a new case number, ids and payload hashes."""

    def __init__(self, t: Template, i: int, state: str, now: float, due: float | None = None) -> None:
        case = f"A140105202{i:07d}"
        mid, did = new_id(), new_id()
        subs = [(TEMPLATE_CASE, case), (t.message["id"], mid), (t.delivery["id"], did),
                (str(t.message["sender_message_id"]), f"GROW-{i:09d}")]
        self.blobs: dict[str, bytes] = {}
        for h, data in t.blobs.items():
            enc = "gb18030" if h == t.message["content_hash"] else "utf-8"
            new = data.replace(TEMPLATE_CASE.encode(enc), case.encode(enc))
            self.blobs[sha256_hex(new)] = new
            subs.append((h, sha256_hex(new)))
        times = {"received_at": now, "created_at": now, "updated_at": now + 0.05, "next_attempt_at": now,
                 "delivered_at": now + 0.05, "started_at": now + 0.01, "ended_at": now + 0.05}
        self.message = {k: times.get(k, _swap(v, subs)) for k, v in t.message.items()}
        d = {k: times.get(k, _swap(v, subs)) for k, v in t.delivery.items() if k != "seq"}
        a = {k: times.get(k, _swap(v, subs)) for k, v in t.attempt.items() if k != "id"}
        finish = t.entries[-1]
        detail = json.loads(_swap(finish["detail"], subs))
        action = "delivered"
        if state != "delivered":
            d.update(delivered_at=None, receipt=None)
            detail.pop("receipt_sha256", None)
            if state == "dead":
                detail["detail"] = "HTTP 400 from the receiver: the record was refused"
                d["reason"] = f"dead-lettered after attempt 1: {detail['detail']}"
                action = "dead-lettered"
            else:
                due = now + 86400 if due is None else due
                detail["detail"] = "connection refused"
                d["reason"] = f"attempt 1 failed: connection refused; next attempt at {iso_now(due)}"
                d["next_attempt_at"] = due
                action = "delivery-failed"
            d["state"] = state
            a["outcome"] = state
            a["detail"] = detail["detail"]
        self.delivery, self.attempt = d, a
        self.events = [AuditEvent(e["action"], e["actor"], mid, case, _swap(e["payload_hash"], subs),
                                  json.loads(_swap(e["detail"], subs))) for e in t.entries[:-1]]
        self.events.append(AuditEvent(action, finish["actor"], mid, case, _swap(finish["payload_hash"], subs), detail))


def _insert(table: str, row: dict[str, Any], mark: str) -> str:
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join([mark] * len(row))})"


_ENTRY_COLUMNS = ("seq", "time", "node", "actor", "action", "message_id", "case_number", "payload_hash", "detail",
                  "prev_hash", "entry_hash")
_BLOB = ("INSERT INTO blobs (sha256, size, data, refs) VALUES (?,?,?,1) "
         "ON CONFLICT (sha256) DO UPDATE SET refs = blobs.refs + 1")
Statements = list[tuple[str, list[tuple[Any, ...]]]]


def _sqlite_op(statements: Statements, events: list[AuditEvent]) -> Callable[[Any], None]:
    def op(tx: Any) -> None:
        for sql, rows in statements:
            tx.conn.executemany(sql, rows)
        tx.audit(events)

    return op


def _pg_op(statements: Statements, events: list[AuditEvent]) -> Callable[[Any], Any]:
    async def op(tx: Any) -> None:
        async with tx.conn.cursor() as cur:
            for sql, rows in statements:
                await cur.executemany(sql, rows)
        await tx.audit(events)

    return op


def state_of(i: int) -> str:
    return "dead" if i % 50 == 7 else "retrying" if i % 50 == 21 else "delivered"


async def fill(cfg_path: Path, t: Template, start: int, stop: int, states: Callable[[int], str] = state_of,
               due: float | None = None) -> float:
    """Records start..stop-1 through the store's writer, each in the state `states` gives it (a retry
    due at `due`, by default in a day); seconds taken."""
    cfg = load_config(cfg_path)
    if cfg.gateway.store.backend == "postgres":
        return fill_postgres(cfg, t, start, stop, states, due)
    store: Any = make_store(cfg)
    signer = Signer.load_or_create(Path(cfg.gateway.data_dir) / "signing-key.pem")
    store.sealer = Sealer(signer, cfg.gateway.checkpoint_every, cfg.gateway.node, iso_now)
    await store.open()
    postgres = cfg.gateway.store.backend == "postgres"
    mark = "%s" if postgres else "?"
    t0 = time.perf_counter()
    try:
        for lo in range(start, stop, BATCH):
            now = time.time()
            copies = [Copy(t, i, states(i), now, due) for i in range(lo, min(stop, lo + BATCH))]
            statements = [(_BLOB.replace("?", mark), [(h, len(b), b) for c in copies for h, b in c.blobs.items()])]
            for table, rows in (("messages", [c.message for c in copies]), ("deliveries", [c.delivery for c in copies]),
                                ("attempts", [c.attempt for c in copies])):
                statements.append((_insert(table, rows[0], mark), [tuple(r.values()) for r in rows]))
            events = [e for c in copies for e in c.events]
            op = _pg_op(statements, events) if postgres else _sqlite_op(statements, events)
            await store._write(op)
        await store.seal_log([])
    finally:
        await store.close()
    if postgres:  # what autovacuum does once a tenth of a table changed; a bulk fill outruns it
        dsn = cfg.gateway.store.dsn
        assert dsn is not None
        with psycopg.connect(dsn.resolve(), autocommit=True) as c:
            c.execute("ANALYZE")
    return time.perf_counter() - t0


PG_BATCH = 5000
PG_CHUNK = 500  # records a generating process makes at once
_GEN: dict[str, Any] = {}  # what the generating processes inherit (fork): the template, states and due time


def _generate(lo: int, hi: int, now: float) -> tuple[list[tuple[Any, ...]], ...]:
    """Rows of records lo..hi-1 for COPY, and their events with the details already canonical."""
    t, states, due = _GEN["t"], _GEN["states"], _GEN["due"]
    copies = [Copy(t, i, states(i), now, due) for i in range(lo, hi)]
    return ([(h, len(b), b, 1) for c in copies for h, b in c.blobs.items()],
            [tuple(c.message.values()) for c in copies], [tuple(c.delivery.values()) for c in copies],
            [tuple(c.attempt.values()) for c in copies],
            [(e.action, e.actor, e.message_id, e.case_number, e.payload_hash, canonical_detail(e.detail))
             for c in copies for e in c.events])


def _seal(events: list[tuple[str, ...]], head: tuple[int, str, str], node: str, sealer: Sealer, sealed_to: int,
          force: bool) -> tuple[list[AuditEntry], tuple[int, str, str]]:
    """`gateway.store.shared.chain` for events whose details are canonical already (made in parallel)."""
    out = []
    for action, actor, mid, case, payload_hash, detail in events:
        seq, prev, prev_time = head
        content: dict[str, Any] = {"seq": seq + 1, "time": max(iso_now(), prev_time), "node": node, "actor": actor,
                   "action": action, "message_id": mid, "case_number": case, "payload_hash": payload_hash,
                   "detail": detail, "prev_hash": prev}
        out.append(AuditEntry(**content, entry_hash=entry_hash_of(content)))
        head = (seq + 1, out[-1].entry_hash, out[-1].time)
        if head[0] - sealed_to >= sealer.every:
            head = _checkpoint(out, head, node, sealer)
            sealed_to = head[0]
    if force and head[0] > sealed_to and head[0] > 0:
        head = _checkpoint(out, head, node, sealer)
    return out, head


def _checkpoint(out: list[AuditEntry], head: tuple[int, str, str], node: str, sealer: Sealer) -> tuple[int, str, str]:
    out.append(seal(sealer.event(head[0], head[1]), seq=head[0] + 1, time=max(iso_now(), head[2]), node=node,
                    prev_hash=head[1]))
    return out[-1].seq, out[-1].entry_hash, out[-1].time


def _copy(cur: psycopg.Cursor[Any], table: str, columns: Any, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)


def _copy_blobs(conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        _copy(cur, "blobs", ("sha256", "size", "data", "refs"), rows)


def fill_postgres(cfg: Any, t: Template, start: int, stop: int, states: Callable[[int], str],
                  due: float | None) -> float:
    """What `fill` does, in the transaction the store's writer commits (the chain's head locked, the
    entries hashed by the store's rule with a checkpoint signed every `checkpoint_every`, the head
    moved), with the records made by two processes and loaded by COPY, their payloads beside on a
    second connection (compressing them into TOAST is most of the database's work). Tables, indexes
    and triggers stay as the store keeps them: the delivery counts are kept by their trigger row by
    row. (As before, the daily statistics intake keeps are not: the bench writes no intake calls.)"""
    signer = Signer.load_or_create(Path(cfg.gateway.data_dir) / "signing-key.pem")
    node = cfg.gateway.node
    sealer = Sealer(signer, cfg.gateway.checkpoint_every, node, iso_now)
    dsn = cfg.gateway.store.dsn.resolve()
    columns = ([*t.message], [k for k in t.delivery if k != "seq"], [k for k in t.attempt if k != "id"])
    _GEN.update(t=t, states=states, due=due)
    t0 = time.perf_counter()
    blobs: Future[None] | None = None
    with (psycopg.connect(dsn) as conn, psycopg.connect(dsn) as side, ThreadPoolExecutor(1) as thread,
          ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool):
        los = list(range(start, stop, PG_CHUNK))
        ahead: deque[Future[Any]] = deque()
        batches = list(range(start, stop, PG_BATCH))
        for b, lo in enumerate(batches):
            parts: list[Any] = []
            while len(parts) < len(range(lo, min(stop, lo + PG_BATCH), PG_CHUNK)):
                while los and len(ahead) < 3 * PG_BATCH // PG_CHUNK:  # a bounded queue: memory stays flat
                    ahead.append(pool.submit(_generate, los[0], min(stop, los[0] + PG_CHUNK), time.time()))
                    los.pop(0)
                parts.append(ahead.popleft().result())
            if blobs is not None:
                blobs.result()
            blobs = thread.submit(_copy_blobs, side, [r for p in parts for r in p[0]])
            with conn.transaction(), conn.cursor() as cur:
                head = cur.execute("SELECT seq, entry_hash, time FROM audit_head WHERE id = 1 FOR UPDATE").fetchone()
                row = cur.execute("SELECT coalesce(max(seq) + 1, 0) FROM checkpoints").fetchone()
                assert head is not None and row is not None
                for k, table in enumerate(("messages", "deliveries", "attempts")):
                    _copy(cur, table, columns[k], [r for p in parts for r in p[k + 1]])
                entries, head = _seal([e for p in parts for e in p[4]], (head[0], head[1], head[2]), node, sealer,
                                      int(row[0]), b == len(batches) - 1)
                _copy(cur, "audit_log", _ENTRY_COLUMNS, [audit_values(e) for e in entries])
                cur.executemany("INSERT INTO checkpoints VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                                checkpoint_rows(entries))
                cur.execute("UPDATE audit_head SET seq = %s, entry_hash = %s, time = %s WHERE id = 1", head)
        if blobs is not None:
            blobs.result()
        # what autovacuum does once a tenth of a table changed; a bulk fill outruns it (and autovacuum
        # is off on the benchmark machine)
        conn.autocommit = True
        conn.execute("ANALYZE")
    return time.perf_counter() - t0


# -- the reads ------------------------------------------------------------------------------------

def reads(sample: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, path, key) of every operator- and auditor-facing read; `sample` names a message and case."""
    m, case = sample["message"], sample["case"]
    return [
        ("queues", "/api/v1/queues", OPERATOR_KEY),
        ("dead-letters", "/api/v1/dead-letters", OPERATOR_KEY),
        ("dead-letters PROC", "/api/v1/dead-letters?destination=PROC", OPERATOR_KEY),
        ("deliveries", "/api/v1/deliveries", OPERATOR_KEY),
        ("deliveries retrying", "/api/v1/deliveries?state=retrying", OPERATOR_KEY),
        ("metrics", "/metrics", OPERATOR_KEY),
        ("message status", f"/api/v1/messages/{m}", OPERATOR_KEY),
        ("message history", f"/api/v1/messages/{m}/history", OPERATOR_KEY),
        ("audit recent", "/api/v1/audit?recent=true", AUDITOR_KEY),
        ("audit recent 100", "/api/v1/audit?recent=true&limit=100", AUDITOR_KEY),
        ("audit by case", f"/api/v1/audit?case={case}", AUDITOR_KEY),
        ("audit by message", f"/api/v1/audit?message_id={m}", AUDITOR_KEY),
        ("audit by agency", "/api/v1/audit?agency=POLICE&limit=100", AUDITOR_KEY),
        ("audit since", f"/api/v1/audit?since={sample['since']}&limit=100", AUDITOR_KEY),
        ("audit checkpoints", "/api/v1/audit/checkpoints", AUDITOR_KEY),
        ("conformance", "/api/v1/conformance", OPERATOR_KEY),
    ]


def time_reads(url: str, sample: dict[str, str]) -> dict[str, tuple[float, float]]:
    """name -> (median, fastest) ms: on a shared machine the fastest shows the read's own cost."""
    out = {}
    with httpx.Client(base_url=url, timeout=120) as c:
        for name, path, key in reads(sample):
            ms = []
            for _ in range(REPEAT):
                t0 = time.perf_counter()
                r = c.get(path, headers={"Authorization": f"Bearer {key}"})
                ms.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {r.status_code} {r.text[:300]}")
            out[name] = (statistics.median(ms), min(ms))
    return out


def stored_bytes(backend: str, where: str, data: Path) -> int:
    files = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    if backend == "postgres":
        with psycopg.connect(where) as c:
            row = c.execute("SELECT pg_database_size(current_database())").fetchone()
            files += int(row[0]) if row else 0
    return files


async def template_records(node: Node, count: int) -> list[str]:
    ids = []
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as c:
        for k in range(count):
            case = TEMPLATE_CASE if k == 0 else f"A140105202T{k + 100:06d}"
            r = await c.post("/inbound/police-in", content=police_record(case),
                             headers={"Content-Type": "application/xml", "X-Message-Id": f"TPL-{k:09d}",
                                      "Authorization": f"Bearer {POLICE_KEY}"})
            r.raise_for_status()
            ids.append(r.json()["message_id"])
    return ids


def prepare(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """A new work folder: database, config, template records; or the kept one's state."""
    state_file = work / "state.json"
    if state_file.exists():
        return dict(json.loads(state_file.read_text()))
    data = work / "data"
    if args.backend == "postgres":
        db = getattr(args, "database", None) or f"grow_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG + "postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {db}")
        where = PG + db
        store: dict[str, Any] = {"backend": "postgres", "dsn": {"env": "BENCH_DSN"}}
    else:
        where = str(data / "gateway.db")
        store = {"backend": "sqlite", "durability": "full"}
    os.environ["BENCH_DSN"] = where
    port = free_port()
    cfg = work / "grow.yaml"
    receiver = Receiver()
    receiver.start()
    cfg.write_text(yaml.safe_dump(config(data, port, receiver.url, store)), encoding="utf-8")
    node = Node("grow", port, cfg, {**env, "BENCH_DSN": where})
    node.start()
    node.wait_ready(120)
    ids = asyncio.run(template_records(node, 3))
    deadline = time.time() + 60
    while sum(receiver.arrivals.values()) < len(ids) and time.time() < deadline:
        time.sleep(0.2)
    node.stop()
    receiver.stop()
    state = {"backend": args.backend, "where": where, "port": port, "ids": ids, "have": 0}
    state_file.write_text(json.dumps(state))
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--sizes", default="", help="sizes to time at (default: 0, 100000, --records)")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database", help="PostgreSQL: the database to create (default: grow_ and a random suffix)")
    ap.add_argument("--verify", action="store_true", help="then time `gateway audit verify --full`, add 1%% more "
                                                          "records, and time the incremental verification")
    ap.add_argument("--keep", help="work in this folder and keep it; run again on it to grow it further or to time "
                                   "its reads with another version of the gateway (default: a temporary folder)")
    args = ap.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")} if args.sizes else {0, min(100_000, args.records),
                                                                                args.records})
    work = Path(args.keep or tempfile.mkdtemp(prefix="store-growth-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {"BENCH_OPERATOR_KEY": OPERATOR_KEY, "BENCH_AUDITOR_KEY": AUDITOR_KEY, "BENCH_POLICE_KEY": POLICE_KEY}
    os.environ.update(env)
    state = prepare(args, work, env)
    backend, where, ids = state["backend"], state["where"], state["ids"]
    os.environ["BENCH_DSN"] = where
    env["BENCH_DSN"] = where
    cfg, data = work / "grow.yaml", work / "data"
    # the receiver is down from here on: nothing moves while the reads are timed
    subprocess.run([sys.executable, "-m", "gateway.store.cli", "upgrade", "--config", str(cfg)], check=True,
                   cwd=Path(__file__).resolve().parents[1], capture_output=True)
    t = read_template(backend, where, ids[0])
    node = Node("grow", state["port"], cfg, env)
    print(f"store growth, {backend}, work folder {work}, the store holds {state['have']:,} generated records",
          flush=True)
    rows = []
    for size in sizes:
        if size < state["have"]:
            continue
        if size > state["have"]:
            secs = asyncio.run(fill(cfg, t, state["have"], size))
            print(f"filled {state['have']:,} -> {size:,} records in {secs:.0f} s "
                  f"({(size - state['have']) / secs:,.0f} records/s)", flush=True)
            state["have"] = size
            (work / "state.json").write_text(json.dumps(state))
        node.start()
        node.wait_ready(600)
        sample = {"message": ids[0], "case": TEMPLATE_CASE, "since": iso_now(time.time() - 60)}
        time_reads(node.url, sample)  # warm: the first pass pays for opening and caching
        ms = time_reads(node.url, sample)
        node.stop()
        total = stored_bytes(backend, where, data)
        per = total / max(1, size + len(ids))
        rows.append((size, ms, total, per))
        print(f"  at {size:>9,} records: store {total / 1e6:,.0f} MB, {per / 1024:.1f} KB per record; slowest read "
              f"{max(ms.values())[0]:.1f} ms ({max(ms, key=lambda k: ms[k])})", flush=True)
    names = list(rows[0][1])
    print(f"\nms per read (median / fastest of {REPEAT}), {backend}")
    print(f"{'read':<22}" + "".join(f"{r[0]:>16,}" for r in rows))
    for n in names:
        print(f"{n:<22}" + "".join(f"{r[1][n][0]:>9.1f} /{r[1][n][1]:>5.1f}" for r in rows))
    print(f"{'KB stored per record':<22}" + "".join(f"{r[3] / 1024:>16.1f}" for r in rows))
    worst = max(m for m, _ in rows[-1][1].values())
    print(f"\nslowest read at {rows[-1][0]:,}: {worst:.1f} ms (target < 20 ms): {'met' if worst < 20 else 'NOT met'}")
    if args.verify:
        time_verify(cfg, t, state, work)


def verify_cli(cfg: Path, work: Path, *extra: str) -> float:
    pin = Signer.load_or_create(work / "data" / "signing-key.pem").key_id
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", "from gateway.cli import main; main()", "audit", "verify", "--config",
                        str(cfg), "--key-fingerprint", pin, "--live", "--state", str(work / "verified.json"), *extra],
                       cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"verify failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")
    said = re.findall(r"(\d+\.\d) s\b", re.sub(r"[│╭╮╰╯─\s]+", " ", r.stdout))
    return float(said[-1]) if said else time.perf_counter() - t0  # the verification's own time, not start-up


def time_verify(cfg: Path, t: Template, state: dict[str, Any], work: Path) -> None:
    have = state["have"]
    full = verify_cli(cfg, work, "--full")
    more = have + max(1, have // 100)
    asyncio.run(fill(cfg, t, have, more))
    state["have"] = more
    (work / "state.json").write_text(json.dumps(state))
    incremental = verify_cli(cfg, work)
    print(f"\ngateway audit verify at {have:,} records: --full {full:.1f} s; after {more - have:,} more records, "
          f"from the last verified checkpoint {incremental:.1f} s ({full / incremental:.0f}x less)")


if __name__ == "__main__":
    main()

"""Benchmark: what the case timeline costs.

1. At commit time: `bench/http_pipeline.py` (HTTP in -> durable SQLite -> HTTP out) run on the tree
   without the timeline (by default the commit this branch forked from, exported with `git archive`
   into a temporary folder) and on this tree, taking turns for `--rounds` rounds so load from
   elsewhere on the machine falls on both alike. Printed: the gateway's CPU per record and the
   sustained rate of each run, and the added microseconds per record (median of the rounds).
2. At the store, the timeline's own part of that cost, without the noise of three processes: the
   same records committed through `Store.record_message` (5 log entries each, as intake writes)
   and delivered through `lease`/`finish`, in alternating batches with and without their timeline
   entry, on SQLite (synchronous=FULL) and PostgreSQL; the process's CPU time per record. And
   the pipeline's part: taking the entry from a standard record (`timeline.entry`).
3. At read time: a store holding `--records` records in cases of `--per-case` records, written
   directly into its tables; the time to read one case's timeline (`Store.case_timeline`), on
   SQLite and, when a server answers, on PostgreSQL.

    python bench/case_timeline.py [--baseline REF] [--rounds N] [--pipeline-records N]
                                  [--batches N] [--per-batch N] [--records N] [--per-case N] [--reads N]
                                  [--skip-pipeline] [--skip-store] [--skip-read]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.store.base import Store  # noqa: E402

_FIGURES = re.compile(r"sustained: .*?delivered end to end ([\d,]+)/s.*?gateway CPU ([\d.]+) ms per record")


# -- 1. the cost at commit time ------------------------------------------------------------------------
def pipeline_run(tree: Path, records: int) -> tuple[float, float]:
    """(records/s, gateway CPU ms per record) of one http_pipeline run on `tree`, durability full."""
    out = subprocess.run([sys.executable, str(tree / "bench" / "http_pipeline.py"), "--records", str(records),
                          "--latency-records", "0", "--durability", "full"],
                         cwd=tree, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}).stdout
    m = _FIGURES.search(out)
    if m is None:
        raise SystemExit(f"no figures in the output of {tree}:\n{out}")
    return float(m.group(1).replace(",", "")), float(m.group(2))


def commit_cost(baseline: str, rounds: int, records: int) -> None:
    ref = subprocess.run(["git", "rev-parse", "--short", baseline], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        base = Path(tmp)
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        print(f"== cost at commit: bench/http_pipeline.py, {records} records, durability full; "
              f"before = {ref} (no timeline), after = this tree ==", flush=True)
        added, ratios = [], []
        for i in range(1, rounds + 1):
            before = pipeline_run(base, records)
            after = pipeline_run(ROOT, records)
            added.append((after[1] - before[1]) * 1000)
            ratios.append(after[1] / before[1])
            print(f"  round {i}: before {before[0]:,.0f}/s, {before[1] * 1000:.0f} µs CPU per record; "
                  f"after {after[0]:,.0f}/s, {after[1] * 1000:.0f} µs CPU per record; "
                  f"added {added[-1]:+.0f} µs ({(ratios[-1] - 1) * 100:+.1f}%)", flush=True)
        print(f"  median of {rounds} rounds: added {statistics.median(added):+.0f} µs CPU per record "
              f"({(statistics.median(ratios) - 1) * 100:+.1f}% of the per-record cost)", flush=True)


# -- 2. the store's part of the cost ---------------------------------------------------------------------
async def store_cost(make: Any, name: str, batches: int, per_batch: int) -> None:
    from gateway.audit.chain import AuditEvent
    from gateway.model import DeliveryState, MessageStatus, new_id, sha256_hex
    from gateway.store.rows import Finish, NewCaseEntry, NewDelivery, NewMessage

    store: Store = make()
    await store.open()
    entry = NewCaseEntry(("PROC",), (), (("prosecution-recommendation", "晋公诉字〔2026〕0042号"),), 3, 3_000_000)
    spent: dict[bool, list[float]] = {False: [], True: []}
    try:
        for b in range(batches * 2):
            with_entry = b % 2 == 1
            case_base = f"S{b:04d}-"
            t0 = time.process_time()

            async def one(i: int, case_base: str = case_base, with_entry: bool = with_entry) -> None:
                raw = f"<r>{new_id()}</r>".encode()
                h = sha256_hex(raw)
                case = case_base + str(i % 50)
                m = NewMessage(new_id(), "POLICE" if i % 2 else "PROC", "ch", None, h, h, case,
                               "prosecution-review", "transfer-for-prosecution", MessageStatus.ACCEPTED, (),
                               time.time(), timeline=entry if with_entry else None)
                events = [AuditEvent(a, "POLICE", m.message_id, case, h) for a in
                          ("received", "mapped", "validated", "routed", "queued")]
                await store.record_message(m, raw, {}, [NewDelivery("PROC", h)], events)

            for start in range(0, per_batch, 64):  # 64 at a time, as concurrent senders commit in groups
                await asyncio.gather(*(one(i) for i in range(start, min(start + 64, per_batch))))
            while leases := await store.lease("PROC", 100, 30):
                for lease in leases:
                    await store.finish(lease, Finish(DeliveryState.DELIVERED, "ok"))
            spent[with_entry].append((time.process_time() - t0) / per_batch * 1e6)
    finally:
        await store.close()
    plain, kept = statistics.median(spent[False]), statistics.median(spent[True])
    print(f"  {name}: {plain:.0f} µs CPU per record committed and delivered without its timeline entry, {kept:.0f} "
          f"µs with it (median of {batches} batches of {per_batch} each): added {kept - plain:+.0f} µs "
          f"({(kept / plain - 1) * 100:+.1f}%)", flush=True)


def entry_cost() -> None:
    import timeit

    from lxml import etree

    from gateway import timeline
    from gateway.sim.records import CaseStep, to_xml

    tree = etree.fromstring(to_xml(CaseStep("C-1", "prosecution-review", "transfer-for-prosecution", "POLICE")))
    n = 20_000
    took = min(timeit.repeat(lambda: timeline.entry(tree, ("PROC",), ()), number=n, repeat=5)) / n * 1e6
    print(f"  pipeline: taking the entry from a standard record (4 documents, 1 dossier file): {took:.1f} µs",
          flush=True)


async def store_costs(batches: int, per_batch: int) -> None:
    from gateway.store.postgres import PostgresStore
    from gateway.store.sqlite import SQLiteStore

    print("== the timeline's part at commit, measured at the store (records 64 at a time) ==", flush=True)
    entry_cost()
    with tempfile.TemporaryDirectory(prefix="bench-timeline-") as tmp:
        await store_cost(lambda: SQLiteStore(Path(tmp) / "gw.db", node="bench", durability="full"),
                         "SQLite (synchronous=FULL)", batches, per_batch)
    url = os.environ.get("GATEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as c:
            c.execute(f"CREATE SCHEMA {schema}")
    except Exception as e:
        print(f"  PostgreSQL: not measured (no server at {url}: {type(e).__name__})")
        return
    try:
        dsn = f"{url}?options=-csearch_path%3D{schema}"
        await store_cost(lambda: PostgresStore(dsn, node="bench"), "PostgreSQL (this process's CPU only)", batches,
                         per_batch)
    finally:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")


# -- 3. the read time -----------------------------------------------------------------------------------
_MESSAGE = ("id, sender, channel, content_hash, canonical_hash, case_number, stage, action, status, reasons, "
            "received_at, summary, receipt, node")
_ENTRY = ("message_id, case_number, received_at, sender, stage, action, status, receivers, rules, documents, files, "
          "file_bytes, answered_by, answered_at")
_FLOW = [("POLICE", "PROC", "arrest-review", "request-arrest-approval"), ("PROC", "POLICE", "arrest-review",
         "approve-arrest"), ("POLICE", "PROC", "prosecution-review", "transfer-for-prosecution"),
         ("PROC", "COURT", "trial", "indictment"), ("COURT", "PROC", "trial", "judgment")]


def generated(records: int, per_case: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]],
                                                    list[str]]:
    """(messages, timeline rows, receiver rows, case numbers): cases of `per_case` records each."""
    messages, entries, receivers, cases = [], [], [], []
    t = time.time() - 86400 * 365
    docs = json.dumps([["arrest-request", "晋公捕字〔2026〕0042号"]], ensure_ascii=False)
    for c in range(records // per_case):
        case = f"B{c:012d}"
        cases.append(case)
        ids = [uuid.uuid4().hex for _ in range(per_case)]
        for i, mid in enumerate(ids):
            t += 1.0
            sender, receiver, stage, action = _FLOW[i % len(_FLOW)]
            messages.append((mid, sender, "ch", "h" * 64, "", case, stage, action, "accepted", "[]", t, "{}", "{}",
                             "bench"))
            answer = ids[i + 1] if i + 1 < per_case else None
            entries.append((mid, case, t, sender, stage, action, "accepted", json.dumps([receiver]), "[]", docs, 3,
                            3_000_000, answer, t + 1.0 if answer else None))
            receivers.append((mid, receiver, t + 0.2))
    return messages, entries, receivers, cases


async def fill_sqlite(path: Path, rows: tuple[list[Any], list[Any], list[Any]]) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(f"INSERT INTO messages ({_MESSAGE}) VALUES ({', '.join('?' * 14)})", rows[0])
        conn.executemany(f"INSERT INTO case_timeline ({_ENTRY}) VALUES ({', '.join('?' * 14)})", rows[1])
        conn.executemany("INSERT INTO case_receivers VALUES (?, ?, ?)", rows[2])
    conn.execute("ANALYZE")
    conn.close()


async def fill_postgres(dsn: str, rows: tuple[list[Any], list[Any], list[Any]]) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        async with conn.cursor() as cur:
            for table, cols, data in (("messages", _MESSAGE, rows[0]), ("case_timeline", _ENTRY, rows[1]),
                                      ("case_receivers", "message_id, receiver, delivered_at",
                                       rows[2])):
                async with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for r in data:
                        await copy.write_row(r)
        await conn.commit()
        await conn.execute("ANALYZE")


async def time_reads(store: Store, cases: list[str], reads: int, per_case: int) -> list[float]:
    rng = random.Random(7)
    await store.case_timeline(cases[0])  # connections opened, statements prepared
    took = []
    for _ in range(reads):
        case = rng.choice(cases)
        t0 = time.perf_counter()
        rows = await store.case_timeline(case)
        took.append((time.perf_counter() - t0) * 1000)
        assert len(rows) == per_case and all(r.delivered for r in rows)
    return sorted(took)


async def read_time(records: int, per_case: int, reads: int) -> None:
    from gateway.store.sqlite import SQLiteStore

    data = generated(records, per_case)
    cases = data[3]
    print(f"== read time: one case of {per_case} records in a store of {records:,} records "
          f"({len(cases):,} cases), {reads} reads of random cases ==", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-timeline-") as tmp:
        path = Path(tmp) / "gateway.db"
        s = SQLiteStore(path, node="bench")
        await s.open()
        await s.close()
        await fill_sqlite(path, data[:3])
        s = SQLiteStore(path, node="bench")
        await s.open()
        try:
            _report("SQLite", await time_reads(s, cases, reads, per_case))
        finally:
            await s.close()
    await _postgres(data, reads, per_case)


async def _postgres(data: tuple[Any, ...], reads: int, per_case: int) -> None:
    url = os.environ.get("GATEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        from gateway.store.postgres import PostgresStore

        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as c:
            c.execute(f"CREATE SCHEMA {schema}")
    except Exception as e:
        print(f"  PostgreSQL: not measured (no server at {url}: {type(e).__name__})")
        return
    dsn = f"{url}?options=-csearch_path%3D{schema}"
    try:
        s = PostgresStore(dsn, node="bench")
        await s.open()
        await s.close()
        await fill_postgres(dsn, data[:3])
        s = PostgresStore(dsn, node="bench")
        await s.open()
        try:
            _report("PostgreSQL", await time_reads(s, data[3], reads, per_case))
        finally:
            await s.close()
    finally:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")


def _report(backend: str, took: list[float]) -> None:
    p99 = statistics.quantiles(took, n=100, method="inclusive")[98]
    print(f"  {backend}: median {statistics.median(took):.2f} ms, p99 {p99:.2f} ms, max {took[-1]:.2f} ms "
          "per case read (timeline rows with their receivers' delivered times)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="", help="the tree without the timeline (default: merge-base with main)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pipeline-records", type=int, default=5000)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--per-case", type=int, default=20)
    ap.add_argument("--reads", type=int, default=500)
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--skip-read", action="store_true")
    ap.add_argument("--skip-store", action="store_true")
    ap.add_argument("--batches", type=int, default=5, help="store part: batches with and without the entry, each")
    ap.add_argument("--per-batch", type=int, default=1000)
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    if not a.skip_store:
        asyncio.run(store_costs(a.batches, a.per_batch))
    if not a.skip_read:
        asyncio.run(read_time(a.records, a.per_case, a.reads))
    if not a.skip_pipeline:
        base = a.baseline or subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True,
                                            text=True, check=True).stdout.strip()
        commit_cost(base, a.rounds, a.pipeline_records)


if __name__ == "__main__":
    main()

"""Benchmark: scanning 100,000 open time-limit clocks for the ones due a warning, SQLite and PostgreSQL.

Fills a fresh store with N running clocks (deadlines spread over the next 60 days, `--due` of them
due a warning now) and times, median of `--repeat` runs:

  * find: the scanner's query for the clocks due (what every node runs every `scan_seconds`);
  * gauges: the overdue/approaching counts per agency and limit behind /metrics;
  * issue: one whole scan that renders, claims and queues the due warnings (once; it changes them);
  * commit: what keeping clocks adds to each record in the store, in process: `--records` transfers
    for prosecution recorded (a clock waits for the delivery) and delivered (it starts), with the
    clocks kept and switched off, taking turns for `--rounds` rounds; microseconds per record.

Target: find under 1 s with 100,000 open clocks on this machine. The cost at commit over the whole
node is measured by `bench/http_pipeline.py --clocks off on`.

    .venv/bin/python bench/clocks.py [--clocks 100000] [--due 1000] [--records 3000] [--rounds 3]
                                     [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from gateway.clockkeeper import ClockKeeper
from gateway.clockscan import Scanner
from gateway.clocksettings import ClockSettings, setup
from gateway.clocktime import FakeClock
from gateway.mapping import load_pack
from gateway.model import new_id
from gateway.store.base import Store

PG = "postgresql://postgres@127.0.0.1:5432/"
DAY = 86400.0


def rows(n: int, due: int, now: float) -> list[tuple[Any, ...]]:
    """Running prosecution-review clocks: `due` of them past their warning point, the rest later."""
    out = []
    for i in range(n):
        due_at = now - 3600 if i < due else now + 3 * DAY + (i % 60) * DAY
        warn = due_at - 2 * DAY if i >= due else now - 2 * DAY
        out.append((new_id(), f"C2026-{i:06d}", "prosecution-review", "prosecution-review", "PROC", new_id(), 1,
                    "running", now - DAY, now - DAY, "2026-12-01", due_at, warn, warn))
    return out


INSERT = ("INSERT INTO clocks (id, case_number, limit_id, terms, agency, message_id, period, state, created_at, "
          "started_at, last_day, due_at, warn_at, next_warn_at) VALUES ({})")


async def fill(store: Store, backend: str, where: str, data: list[tuple[Any, ...]]) -> None:
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(where)
        conn.executemany(INSERT.format(", ".join("?" * 14)), data)
        conn.commit()
        conn.execute("ANALYZE")
        conn.close()
    else:
        with psycopg.connect(where) as c:
            with c.cursor() as cur:
                cur.executemany(INSERT.format(", ".join(["%s"] * 14)), data)
            c.execute("ANALYZE clocks")


async def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


async def bench(backend: str, n: int, due: int, repeat: int) -> None:
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-clocks-") as tmp:
        db = ""
        if backend == "sqlite":
            from gateway.store.sqlite import SQLiteStore

            where = str(Path(tmp) / "gateway.db")
            store: Any = SQLiteStore(where, durability="normal")
        else:
            from gateway.store.postgres import PostgresStore

            db = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG + "postgres", autocommit=True) as c:
                c.execute(f"CREATE DATABASE {db}")
            where = PG + db
            store = PostgresStore(where)
        try:
            await store.open()
            t0 = time.perf_counter()
            await fill(store, backend, where, rows(n, due, now))
            filled = time.perf_counter() - t0
            clocks = setup(ClockSettings(batch=5000), "<bench>", Path("."), {"PROC"})
            keeper = ClockKeeper(clocks, {"PROC": "procuratorate"}, "bench", FakeClock(now))
            store.clock_keeper = keeper
            find, found = await timed(lambda: store.clocks_due(now, 5000), repeat)
            gauges, counts = await timed(lambda: store.clock_counts(now), repeat)
            scanner = Scanner(store, keeper, keeper.clock, lambda _code: load_pack("identity"), "bench")
            t0 = time.perf_counter()
            issued = await scanner.scan_once()
            issue = time.perf_counter() - t0
            again, _ = await timed(lambda: store.clocks_due(now, 5000), 1)
            print(f"{backend:>8}: {n:,} open clocks (filled in {filled:.1f} s), {len(found):,} due: "
                  f"find {find * 1000:.1f} ms, gauges {gauges * 1000:.1f} ms ({sum(c[2] for c in counts):,} "
                  f"overdue), issue {len(issued):,} warnings in {issue:.2f} s "
                  f"({issue / max(1, len(issued)) * 1e6:.0f} µs each), find after {again * 1000:.1f} ms; "
                  f"target find < 1000 ms: {'met' if find < 1.0 else 'MISSED'}", flush=True)
        finally:
            await store.close()
            if db:
                with psycopg.connect(PG + "postgres", autocommit=True) as c:
                    c.execute(f"DROP DATABASE {db} WITH (FORCE)")


async def commit_cost(backend: str, records: int, rounds: int) -> None:
    """Seconds per record of record_message + lease + finish(delivered), clocks off and on, alternating."""
    from gateway.audit.chain import AuditEvent
    from gateway.model import DeliveryState, MessageStatus, sha256_hex
    from gateway.store.base import Finish, NewDelivery, NewMessage

    clocks = setup(ClockSettings(), "<bench>", Path("."), {"PROC"})
    figures: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}  # this process's CPU (SQLite: all of the store's work)
    for r in range(rounds):
        for mode in ("off", "on"):
            with tempfile.TemporaryDirectory(prefix="bench-commit-") as tmp:
                store, db = await _store(backend, Path(tmp))
                try:
                    await store.open()
                    if mode == "on":
                        store.clock_keeper = ClockKeeper(clocks, {"PROC": "procuratorate", "POLICE": "police"},
                                                         "bench")
                    body = b"<CaseRecord>" + os.urandom(2048).hex().encode() + b"</CaseRecord>"
                    t0, c0 = time.perf_counter(), time.process_time()
                    for start in range(0, records, 250):
                        batch = []
                        for i in range(start, min(records, start + 250)):
                            raw = body + f"{r}-{i}".encode()
                            h = sha256_hex(raw)
                            m = NewMessage(new_id(), "POLICE", "police-in", None, h, h, f"C2026-{i:06d}",
                                           "prosecution-review", "transfer-for-prosecution", MessageStatus.ACCEPTED,
                                           (), time.time())
                            batch.append(store.record_message(m, raw, {}, [NewDelivery("PROC", h)], [
                                AuditEvent("received", "POLICE", m.message_id, m.case_number, h)]))
                        await asyncio.gather(*batch)
                        while leases := await store.lease("PROC", 250, 60):
                            await asyncio.gather(*(store.finish(x, Finish(DeliveryState.DELIVERED, "ok"))
                                                   for x in leases))
                    figures[mode].append((time.perf_counter() - t0) / records)
                    cpu[mode].append((time.process_time() - c0) / records)
                    if mode == "on":
                        n = len(await store.list_clocks(state="running", now=time.time(), limit=records))
                        assert n == records, n
                finally:
                    await store.close()
                    await _drop(db)
    for what, f in (("wall", figures), ("CPU of this process", cpu)):
        off, on = statistics.median(f["off"]), statistics.median(f["on"])
        print(f"{backend:>8}: record + deliver, {records:,} records x {rounds} rounds, {what}: clocks off "
              f"{off * 1e6:.0f} µs, on {on * 1e6:.0f} µs per record: {(on - off) * 1e6:+.0f} µs "
              f"({(on / off - 1) * 100:+.1f}%); each round "
              + ", ".join(f"{(b - a) * 1e6:+.0f}" for a, b in zip(f["off"], f["on"], strict=True)) + " µs",
              flush=True)


async def _store(backend: str, tmp: Path) -> tuple[Any, str]:
    if backend == "sqlite":
        from gateway.store.sqlite import SQLiteStore

        return SQLiteStore(str(tmp / "gateway.db"), durability="normal"), ""
    from gateway.store.postgres import PostgresStore

    db = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG + "postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    return PostgresStore(PG + db), db


async def _drop(db: str) -> None:
    if db:
        with psycopg.connect(PG + "postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE {db} WITH (FORCE)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clocks", type=int, default=100_000, help="open clocks of the scan phase (0: skip it)")
    ap.add_argument("--due", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--records", type=int, default=3000, help="records of the commit-cost phase (0: skip it)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the commit-cost phase")
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for backend in args.backends if args.clocks else ():
        asyncio.run(bench(backend, args.clocks, args.due, args.repeat))
    for backend in args.backends if args.records else ():
        asyncio.run(commit_cost(backend, args.records, args.rounds))


if __name__ == "__main__":
    main()

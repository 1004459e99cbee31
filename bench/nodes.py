"""End-to-end records/s with 1, 2 and 3 gateway processes on PostgreSQL, and 1 on SQLite.

Each run: fresh database, N real `python -m gateway` nodes on loopback, R records POSTed over
HTTP spread over all nodes, delivered over HTTP to a loopback receiver. The figure is records
accepted *and* delivered per second, from the first POST to the last delivery confirmed.

    .venv/bin/python bench/nodes.py --records 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.nodes import Cluster, send_records  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402
from tests.support.records import record  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/"


def _delivered_pg(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT count(*) FROM deliveries WHERE state = 'delivered'").fetchone()
        return int(row[0]) if row else 0


def _delivered_sqlite(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as c:
        try:
            return int(c.execute("SELECT count(*) FROM deliveries WHERE state = 'delivered'").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


async def run(backend: str, nodes: int, records: int, work: Path) -> tuple[float, float]:
    """(records/s end to end, CPU ms per record spent in the gateway processes)."""
    receiver = Receiver()
    receiver.start()
    env: dict[str, str] = {}
    if backend == "postgres":
        db = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG + "postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {db}")
        dsn = PG + db
        env["GATEWAY_BENCH_DSN"] = dsn
        store: dict[str, object] = {"backend": "postgres", "dsn": {"env": "GATEWAY_BENCH_DSN"}}

        def count() -> int:
            return _delivered_pg(dsn)
    else:
        path = work / "gateway.db"
        store = {"backend": "sqlite", "path": str(path), "durability": "full"}

        def count() -> int:
            return _delivered_sqlite(path)

    cluster = Cluster.create(nodes, work, store, receiver.url, env=env, lease_seconds=30)
    try:
        await asyncio.to_thread(cluster.start)
        bodies = [(f"B-{i:06d}", record(case=f"C-{i % 500:04d}", extra=f"b{i}")) for i in range(records)]
        t0 = time.perf_counter()
        await send_records(cluster, bodies, concurrency=8 * nodes)
        while await asyncio.to_thread(count) < records:
            await asyncio.sleep(0.05)
        rate = records / (time.perf_counter() - t0)
    finally:
        cpu0 = _children_cpu()
        cluster.stop()
        receiver.stop()
        if backend == "postgres":
            with psycopg.connect(PG + "postgres", autocommit=True) as c:
                c.execute(f"DROP DATABASE {db} WITH (FORCE)")
    return rate, (_children_cpu() - cpu0) * 1000 / records  # the nodes are reaped at stop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--runs", default="sqlite:1,postgres:1,postgres:2,postgres:3")
    args = ap.parse_args()
    print(f"{args.records} records per run, HTTP in, HTTP out, one delivery each; {os.cpu_count()} CPUs")
    for spec in args.runs.split(","):
        backend, n = spec.split(":")
        with tempfile.TemporaryDirectory() as d:
            rate, cpu = asyncio.run(run(backend, int(n), args.records, Path(d)))
        print(
            f"{backend:8s} {n} node(s): {rate:8.1f} records/s end to end, "
            f"{cpu:5.1f} ms CPU per record in the gateway processes",
            flush=True,
        )


if __name__ == "__main__":
    main()

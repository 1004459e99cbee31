"""End-to-end records/s with 1, 2 and 3 gateway processes on PostgreSQL, and 1 on SQLite.

Each run: fresh database, N real `python -m gateway` nodes on loopback, R records POSTed over
HTTP spread over all nodes, delivered over HTTP to a loopback receiver. The figure is records
accepted *and* delivered per second, from the first POST to the last delivery confirmed. CPU per
record is what the nodes' processes (workers included) spent over that same span, read from
/proc, and on PostgreSQL also what the server's processes serving the run's database spent (when
the server runs on this machine; it competes for the same cores): start-up (imports, schemas,
packs) is not charged to the records, so adding a node does not add its start-up cost to the figure.

    .venv/bin/python bench/nodes.py --records 1000
    .venv/bin/python bench/nodes.py --records 1000 --baseline /path/to/other/checkout   # before/after
    .venv/bin/python bench/nodes.py --runs sqlite:1,sqlite:1:auto,postgres:1:2          # workers per node
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


_TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(roots: list[int]) -> float:
    """CPU seconds (user + system) of these processes and all their descendants alive now."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(d.name)] = int(fields[1])
        cpu[int(d.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(p for p, pp in parent.items() if pp == pid)
    return total


def _db_cpu(db: str) -> float:
    """CPU seconds of the PostgreSQL server processes serving database `db` (on this machine), alive now."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if f" {db} " not in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                continue
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


async def run(backend: str, nodes: int, records: int, work: Path, workers: str | None = None,
              root: Path | None = None) -> tuple[float, float, float]:
    """(records/s end to end, CPU ms per record spent in the gateway processes, CPU ms per record of
    the PostgreSQL server processes serving the run)."""
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

    extra = {"root": root} if root is not None else {}
    cluster = Cluster.create(nodes, work, store, receiver.url, env=env, lease_seconds=30, workers=workers, **extra)
    try:
        await asyncio.to_thread(cluster.start)
        pids = [n.proc.pid for n in cluster.nodes if n.proc is not None]
        bodies = [(f"B-{i:06d}", record(case=f"C-{i % 500:04d}", extra=f"b{i}")) for i in range(records)]
        await asyncio.sleep(1.0)  # the nodes' start-up tasks (conformance data, checkpoints) settle first
        cpu0, db0 = _tree_cpu(pids), _db_cpu(db) if backend == "postgres" else 0.0
        t0 = time.perf_counter()
        await send_records(cluster, bodies, concurrency=8 * nodes)
        while await asyncio.to_thread(count) < records:
            await asyncio.sleep(0.05)
        rate = records / (time.perf_counter() - t0)
        cpu = _tree_cpu(pids) - cpu0
        db_cpu = _db_cpu(db) - db0 if backend == "postgres" else 0.0
    finally:
        cluster.stop()
        receiver.stop()
        if backend == "postgres":
            with psycopg.connect(PG + "postgres", autocommit=True) as c:
                c.execute(f"DROP DATABASE {db} WITH (FORCE)")
    return rate, cpu * 1000 / records, db_cpu * 1000 / records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--runs", default="sqlite:1,postgres:1,postgres:2,postgres:3",
                    help="BACKEND:NODES[:WORKERS] runs, comma-separated")
    ap.add_argument("--baseline", type=Path, help="another checkout: each run is made with its code too, "
                    "alternating, so both sets of figures come from the same hour")
    args = ap.parse_args()
    print(f"{args.records} records per run, HTTP in, HTTP out, one delivery each; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")
    codes: list[tuple[str, Path | None]] = [("this", None)]
    if args.baseline:
        codes.insert(0, ("baseline", args.baseline.resolve()))
    figures: dict[tuple[str, str], tuple[float, float, float]] = {}
    for spec in args.runs.split(","):
        backend, n, *w = spec.split(":")
        for label, root in codes:
            with tempfile.TemporaryDirectory() as d:
                rate, cpu, db_cpu = asyncio.run(
                    run(backend, int(n), args.records, Path(d), w[0] if w else None, root))
            figures[(label, spec)] = rate, cpu, db_cpu
            workers = f" x {w[0]} workers" if w else ""
            print(
                f"{label:8s} {backend:8s} {n} node(s){workers}: {rate:8.1f} records/s end to end, "
                f"{cpu:5.2f} ms CPU per record in the gateway processes"
                + (f", {db_cpu:5.2f} ms in PostgreSQL's processes" if backend == "postgres" else ""),
                flush=True,
            )
    for label, _ in codes:
        base = figures.get((label, "sqlite:1"))
        one = figures.get((label, "postgres:1"))
        if base and one:
            print(f"{label}: postgres 1 node / sqlite 1 node = {one[0] / base[0]:.2f} (records/s)")
        three = figures.get((label, "postgres:3"))
        if one and three:
            print(f"{label}: CPU per record, postgres 3 nodes / 1 node = {three[1] / one[1]:.2f}")


if __name__ == "__main__":
    main()

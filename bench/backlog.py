"""Benchmark: a receiver's outage is over; how fast the backlog drains, and whether memory stays flat.

    .venv/bin/python bench/backlog.py --records 100000 --backend sqlite|postgres

A real node (police pack in, procuratorate pack out) takes a few police records over HTTP; they
are the templates of bench/store_growth.py, which then writes RECORDS copies through the store's
own writer as intake and a failed first attempt leave them while the receiver is down: accepted,
logged, retrying, their next attempt due now. Then the receiver comes up and the node starts:
it prints the drain rate (records delivered per second, from the node's start to the last
delivery confirmed) and the node's RSS sampled every half second during the drain, with its peak
(VmHWM). Leases are paged (a destination's free slots at a time), so RSS must not follow the
backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import store_growth as sg  # noqa: E402

from tests.support.nodes import Node  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402
from tests.support.serving import serving  # noqa: E402


def delivered(backend: str, where: str) -> int:
    sql = "SELECT count(*) FROM deliveries WHERE state = 'delivered'"
    if backend == "sqlite":
        with sqlite3.connect(f"file:{where}?mode=ro", uri=True) as c:
            return int(c.execute(sql).fetchone()[0])
    with psycopg.connect(where) as c:
        row = c.execute(sql).fetchone()
        return int(row[0]) if row else 0


def kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def drain(node: Node, backend: str, where: str, target: int, receiver: Receiver) -> None:
    async with serving(receiver.app(), receiver.port):
        t0 = time.perf_counter()
        await node.start_and_wait()
        assert node.proc is not None
        pid = node.proc.pid
        samples: list[tuple[float, int, float]] = []
        done = 0
        while done < target:
            await asyncio.sleep(0.5)
            done = await asyncio.to_thread(delivered, backend, where)
            samples.append((time.perf_counter() - t0, done, kb(pid, "VmRSS") / 1024))
            if len(samples) % 20 == 0:
                print(f"  {samples[-1][0]:6.0f} s  delivered {done:>8,}  RSS {samples[-1][2]:6.1f} MB", flush=True)
        secs = time.perf_counter() - t0
        peak = kb(pid, "VmHWM") / 1024
        node.stop()
    rss = [s[2] for s in samples]
    tenth = max(1, len(rss) // 10)
    print(f"\ndrained {target:,} records in {secs:.0f} s: {target / secs:,.0f} records/s ({backend})")
    print(f"RSS during the drain: first tenth {min(rss[:tenth]):.0f}-{max(rss[:tenth]):.0f} MB, "
          f"last tenth {min(rss[-tenth:]):.0f}-{max(rss[-tenth:]):.0f} MB, peak (VmHWM) {peak:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder)")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="backlog-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {"BENCH_OPERATOR_KEY": sg.OPERATOR_KEY, "BENCH_AUDITOR_KEY": sg.AUDITOR_KEY,
           "BENCH_POLICE_KEY": sg.POLICE_KEY}
    os.environ.update(env)
    state = sg.prepare(args, work, env)
    where = state["where"]
    os.environ["BENCH_DSN"] = env["BENCH_DSN"] = where
    cfg = work / "grow.yaml"
    t = sg.read_template(args.backend, where, state["ids"][0])
    print(f"backlog, {args.backend}, work folder {work}", flush=True)
    secs = asyncio.run(sg.fill(cfg, t, 0, args.records, lambda i: "retrying", due=time.time()))
    print(f"{args.records:,} records accepted while the receiver was down, written in {secs:.0f} s", flush=True)
    receiver = Receiver()  # the receiver comes back: on the port the node was configured with
    receiver.port = int(sg.yaml.safe_load(cfg.read_text())["agencies"][1]["outbound"]["settings"]["url"]
                        .split(":")[2].split("/")[0])
    node = Node("backlog", state["port"], cfg, env)
    asyncio.run(drain(node, args.backend, where, args.records + len(set(state["ids"])), receiver))


if __name__ == "__main__":
    main()

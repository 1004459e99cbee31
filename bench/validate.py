"""Benchmark: validation requests per second against submissions per second, on the same node in the same run.

The validation service (POST /api/v1/validate) judges a record with the same steps as a submission
(POST /inbound/police-in) but writes nothing: no transaction, no fsync, no delivery. Both are fed the
same 5 KB records by one load generator process over 64 keep-alive connections, in alternating
rounds (validate, submit, validate, submit, ...) against one gateway node with a durable SQLite store
(synchronous=FULL) and an HTTP receiver, so load from elsewhere on the machine falls on both alike.
Per round it prints requests/s and the gateway's CPU per request, then the median ratio.

    python bench/validate.py [--requests N] [--rounds N] [--durability full|normal]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_pipeline import (  # noqa: E402
    BENCH_KEY,
    RECORD_BYTES,
    _run,
    _undelivered,
    config_yaml,
    cpu_seconds,
    make_record,
    post,
    receiver,
    wait_port,
)

from tests.support.ports import free_port  # noqa: E402

PATHS = {"validate": ("/api/v1/validate", 200), "submit": ("/inbound/police-in", 202)}


def load(port: int, kind: str, prefix: str, count: int, connections: int, out: str) -> None:
    """Send `count` records to `kind`'s path as fast as the node answers; count the expected answers."""
    path, expected = PATHS[kind]
    bodies = [(f"{prefix}-{i:06d}", make_record(f"{prefix}-{i:06d}")) for i in range(count)]
    failures = 0

    async def conn(queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not queue.empty():
            case, body = queue.get_nowait()
            status, answer = await post(reader, writer, path, body, {"X-API-Key": BENCH_KEY, "X-Message-Id": case})
            if status != expected or (kind == "validate" and b'"accepted":true' not in answer):
                failures += 1
                print(f"{kind} {case}: HTTP {status} {answer[:300]!r}", file=sys.stderr)
        writer.close()

    async def main() -> None:
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for item in bodies:
            queue.put_nowait(item)
        started = time.perf_counter()
        await asyncio.gather(*(conn(queue) for _ in range(connections)))
        Path(out).write_text(json.dumps({"seconds": time.perf_counter() - started, "failures": failures}))

    _run(main())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "receiver":
        receiver(int(sys.argv[2]), sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        port, kind, prefix, count, conns, out = sys.argv[2:8]
        load(int(port), kind, prefix, int(count), int(conns), out)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000, help="requests per kind and round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of validate then submit")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--durability", default="full", choices=["full", "normal"])
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}; "
          f"{RECORD_BYTES // 1024} KB records, {args.connections} connections, SQLite synchronous="
          f"{args.durability.upper()}; gateway, receiver and load generator are separate processes", flush=True)
    me = [sys.executable, __file__]
    env = {**os.environ, "BENCH_POLICE_KEY": BENCH_KEY}
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        work = Path(tmp)
        gw_port, rcv_port = free_port(), free_port()
        cfg = work / "gateway.yaml"
        text = config_yaml(work / "data", gw_port, rcv_port, args.durability)
        # the service's per-agency share would refuse a benchmark's flood: lifted here, as for one big client
        cfg.write_text(text.replace("  api: {", "  validations_per_second: 1000000\n  api: {", 1), encoding="utf-8")
        rcv = subprocess.Popen([*me, "receiver", str(rcv_port), str(work / "arrivals.json")], env=env,
                               stdout=subprocess.DEVNULL)
        wait_port(rcv_port, rcv, "receiver")
        with (work / "gateway.log").open("wb") as log:
            gw = subprocess.Popen([sys.executable, "-m", "gateway", str(cfg)], env=env, stderr=log)
        wait_port(gw_port, gw, "gateway")
        time.sleep(0.5)
        rounds: list[dict[str, tuple[float, float]]] = []
        try:
            for r in range(1, args.rounds + 1):
                figures = {}
                for kind in ("validate", "submit"):
                    out = work / f"{kind}-{r}.json"
                    before = cpu_seconds(gw.pid)
                    subprocess.run([*me, "load", str(gw_port), kind, f"R{r}{kind[0].upper()}", str(args.requests),
                                    str(args.connections), str(out)], env=env, check=True)
                    res = json.loads(out.read_text())
                    deadline = time.time() + 300  # submissions' deliveries drain before the next kind runs
                    while _undelivered(work / "data" / "gateway.db") and time.time() < deadline:
                        time.sleep(0.1)
                    cpu_ms = 1000 * (cpu_seconds(gw.pid) - before) / args.requests
                    rate = args.requests / res["seconds"]
                    figures[kind] = (rate, cpu_ms)
                    note = " (with its delivery to the receiver)" if kind == "submit" else ""
                    fails = f"; {res['failures']} unexpected answers" if res["failures"] else ""
                    print(f"  round {r} {kind:>8}: {rate:8,.0f} requests/s, gateway CPU {cpu_ms:.2f} ms per "
                          f"request{note}{fails}", flush=True)
                rounds.append(figures)
        finally:
            rcv.send_signal(signal.SIGTERM)
            rcv.wait(30)
            gw.send_signal(signal.SIGTERM)
            gw.wait(60)
    ratios = [f["validate"][0] / f["submit"][0] for f in rounds]
    cpu = [f["validate"][1] / f["submit"][1] for f in rounds]
    v = statistics.median(f["validate"][0] for f in rounds)
    s = statistics.median(f["submit"][0] for f in rounds)
    print(f"\nmedian of {len(rounds)} rounds: validation {v:,.0f} requests/s, submission {s:,.0f} requests/s; "
          f"validation x{statistics.median(ratios):.2f} the submissions' rate, "
          f"x{statistics.median(cpu):.2f} their gateway CPU per request")


if __name__ == "__main__":
    main()

"""Benchmark: HTTP in -> gateway -> HTTP out on loopback, durable SQLite store, 5 KB records.

Three processes, so the figures are honest: the gateway (`python -m gateway CONFIG`), a
receiving legacy system, and a load generator. The receiver and load generator speak raw
HTTP/1.1 with keep-alive on asyncio streams so that they take as little of the machine's CPU
as possible from the gateway. For each durability (full, normal) it prints:

  * sustained throughput: records pushed by 64 connections as fast as the gateway takes them,
    counted from the first send to the last delivery at the receiver;
  * latency at 100 records/s offered: p50/p99 from the moment the sender starts the POST to the
    moment the receiver has the record (arrival at the gateway to delivery, plus one hop).

`--client` compares the HTTP adapter's ways out in one invocation: `http11` is the adapter as it
is; `httpx` lends out httpx.AsyncHTTPTransports of one kept connection each in its place;
`httpx-pool` shares one httpx.AsyncHTTPTransport of `max_connections` per destination. The
clients take turns (A B A B ...) for `--rounds` rounds, so load from elsewhere on the machine
falls on all alike, and a summary gives each round's ratios. `--clocks on off` does the same with
the statutory time-limit clocks kept (each record starts a prosecution-review clock, in the
intake and delivery writes) and switched off, for what keeping them costs per record.

`--evidence off on` measures what signed evidence costs: the same node without and with it
(`gateway.evidence.enabled`), taking turns the same way; the summary's CPU ratio is the gateway CPU
per record with evidence (a signed submission document and a signed delivery document per record)
against without.

    python bench/http_pipeline.py [--records N] [--latency-records N] [--durability full normal]
                                  [--client http11 httpx httpx-pool] [--evidence off on] [--clocks off on] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.ports import free_port  # noqa: E402

RECORD_BYTES = 5 * 1024
BENCH_KEY = "bench-police-key-0123456789abcdef"  # the node refuses keys short enough to guess


def make_record(case: str) -> bytes:
    """A record of about 5 KB that passes the standard's acceptance rules, with Chinese text in
    the note as real files carry."""
    from gateway.sim.records import CaseStep, to_xml

    step = CaseStep(case, "prosecution-review", "transfer-for-prosecution", "POLICE")
    filler = "犯罪嫌疑人张三于2026年3月在太原市迎泽区醉酒驾驶机动车，血液酒精含量为156mg/100ml。"
    note = ""
    while len(to_xml(step, note)) < RECORD_BYTES:
        note += filler
    return to_xml(step, note)


# -- raw HTTP/1.1 on asyncio streams -------------------------------------------------------------

async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return lines[0], headers, body


async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes,
               headers: dict[str, str]) -> tuple[int, bytes]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/xml\r\n"
                 f"Content-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
    status, _, answer = await read_message(reader)
    return int(status.split()[1]), answer


# -- the receiving legacy system -----------------------------------------------------------------

def receiver(port: int, out: str) -> None:
    """Answer every POST with a receipt; remember when each case arrived; write it all at SIGTERM."""
    arrivals: dict[str, float] = {}
    seen: dict[bytes, bytes] = {}
    repeats = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal repeats
        try:
            while True:
                _, headers, _ = await read_message(reader)
                now = time.time()
                key = headers.get(b"idempotency-key", b"")
                if key in seen:
                    repeats += 1
                else:
                    seen[key] = b'{"received":"' + key + b'"}'
                    arrivals.setdefault(headers.get(b"x-case-number", b"").decode(), now)
                receipt = seen[key]
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(receipt)).encode() + b"\r\n\r\n" + receipt)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        print("ready", flush=True)
        await stop.wait()
        server.close()
        Path(out).write_text(json.dumps({"arrivals": arrivals, "repeats": repeats}))

    _run(main())


# -- the load generator ----------------------------------------------------------------------------

def load(port: int, prefix: str, count: int, rate: float, connections: int, out: str) -> None:
    """Send `count` records over `connections` keep-alive connections, paced at `rate`/s (0: flat out)."""
    bodies = [(f"{prefix}-{i:06d}", make_record(f"{prefix}-{i:06d}")) for i in range(count)]
    send_all(port, "/inbound/police-in", bodies, rate, connections, {"X-API-Key": BENCH_KEY}, out, ok=(202,))


def send_all(port: int, path: str, bodies: list[tuple[str, bytes]], rate: float, connections: int,
             headers: dict[str, str], out: str, ok: tuple[int, ...] = (200, 202)) -> None:
    """POST each (case, body) to `path` over `connections` keep-alive connections, paced at `rate`/s
    (0: flat out); write when each was sent, the refusals and the span to `out` as JSON."""
    sent: dict[str, float] = {}
    count = len(bodies)
    failures = 0

    async def conn(queue: asyncio.Queue[tuple[str, bytes]], t0: float) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        loop = asyncio.get_running_loop()
        while not queue.empty():
            n = count - queue.qsize()
            case, body = queue.get_nowait()
            if rate:
                await asyncio.sleep(max(0.0, t0 + n / rate - loop.time()))
            sent[case] = time.time()
            status, answer = await post(reader, writer, path, body, {**headers, "X-Message-Id": case})
            if status not in ok:
                failures += 1
                print(f"{case}: HTTP {status} {answer[:300]!r}", file=sys.stderr)
        writer.close()

    async def main() -> None:
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for item in bodies:
            queue.put_nowait(item)
        t0 = asyncio.get_running_loop().time()
        started = time.time()
        await asyncio.gather(*(conn(queue, t0) for _ in range(connections)))
        Path(out).write_text(json.dumps({"sent": sent, "failures": failures, "started": started,
                                         "ended": time.time()}))

    _run(main())


def _run(coro: object) -> None:
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]


# -- the orchestra ---------------------------------------------------------------------------------

def config_yaml(data: Path, port: int, receiver_port: int, durability: str, evidence: bool = True,
                clocks: bool = True) -> str:
    return ("" if clocks else "clocks: {enabled: false}\n") + f"""
gateway:
  node: bench
  data_dir: {data}
  store: {{durability: {durability}}}
  api: {{host: 127.0.0.1, port: {port}}}
  evidence: {{enabled: {"true" if evidence else "false"}}}
agencies:
  - code: POLICE
    name: City Police
    role: police
    api_key: {{env: BENCH_POLICE_KEY}}
    inbound: [{{name: police-in, adapter: http}}]
  - code: PROC
    name: City Procuratorate
    role: procuratorate
    outbound:
      name: proc-out
      adapter: http
      concurrency: 16
      settings: {{url: "http://127.0.0.1:{receiver_port}/receive", max_connections: 16}}
routes:
  - {{stage: prosecution-review, action: transfer-for-prosecution, to: [PROC]}}
"""


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


def percentile(values: list[float], p: float) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1]


def gateway_node(client: str, config: str) -> int:
    """`python -m gateway CONFIG`, with the HTTP adapter's way out chosen by `client`."""
    if client != "http11":
        import httpx

        import adapters.http

        def single(ctx: Any, connect_timeout: float, read_timeout: float) -> httpx.AsyncHTTPTransport:
            return httpx.AsyncHTTPTransport(verify=ctx, limits=httpx.Limits(
                max_connections=1, max_keepalive_connections=1, keepalive_expiry=60.0))

        adapters.http.KeepAliveTransport = single  # type: ignore[assignment,misc]
        if client == "httpx-pool":
            plain_init = adapters.http.HttpOutbound.__init__

            def pooled(self: adapters.http.HttpOutbound, settings: Any, transport: Any = None,
                       files: Any = None) -> None:
                plain_init(self, settings, transport, files)
                if transport is None:  # one pool per destination, shared by every delivery
                    n = settings.max_connections
                    self._given = httpx.AsyncHTTPTransport(verify=self._verify, limits=httpx.Limits(
                        max_connections=n, max_keepalive_connections=n, keepalive_expiry=60.0))

            adapters.http.HttpOutbound.__init__ = pooled  # type: ignore[method-assign]
    from gateway.__main__ import main as gateway_main

    return gateway_main(["gateway", config])


def run(durability: str, records: int, latency_records: int, work: Path, profile: str | None,
        client: str = "http11", evidence: bool = True, clocks: bool = True) -> dict[str, float]:
    """One gateway node through both phases; returns the sustained phase's figures."""
    me = [sys.executable, __file__]
    env = {**os.environ, "BENCH_POLICE_KEY": BENCH_KEY}
    gw_port, rcv_port = free_port(), free_port()
    data = work / f"data-{durability}-{client}-{gw_port}"
    cfg = work / f"gateway-{durability}.yaml"
    cfg.write_text(config_yaml(data, gw_port, rcv_port, durability, evidence, clocks), encoding="utf-8")
    arrivals_file = work / f"arrivals-{durability}.json"
    rcv = subprocess.Popen([*me, "receiver", str(rcv_port), str(arrivals_file)], env=env,
                           stdout=subprocess.DEVNULL)
    wait_port(rcv_port, rcv, "receiver")
    gw_cmd = [*me, "gateway", client, str(cfg)]
    if profile:
        spy = str(Path(sys.executable).with_name("py-spy"))
        gw_cmd = [spy, "record", "-f", "raw", "-o", f"{profile}-{durability}-{client}.txt", "-r", "200", "--",
                  *gw_cmd]
    with (work / f"gateway-{durability}.log").open("wb") as log:
        gw = subprocess.Popen(gw_cmd, env=env, stderr=log)
    wait_port(gw_port, gw, "gateway")
    time.sleep(0.5)
    gw_pid = gw.pid
    if profile:  # py-spy runs the gateway as its child: count the gateway's CPU, not the sampler's
        gw_pid = int(Path(f"/proc/{gw.pid}/task/{gw.pid}/children").read_text().split()[0])
    phases = [(name, count, rate, conns) for name, count, rate, conns in
              [("sustained", records, 0.0, 64), ("latency @100/s", latency_records, 100.0, 8)] if count]
    results = {}
    cpu: dict[str, float] = {}
    cpu_main: dict[str, float] = {}
    others: dict[str, float] = {}  # load generator + receiver
    busy: dict[str, float] = {}  # the whole machine, in cores
    for name, count, rate, conns in phases:
        out = work / f"load-{durability}-{name[:3]}.json"
        before, before_main = cpu_seconds(gw_pid), cpu_seconds(gw_pid, main_thread=True)
        before_others = cpu_seconds(rcv.pid) + children_cpu_seconds()
        before_busy, t0 = machine_busy_seconds(), time.monotonic()
        subprocess.run([*me, "load", str(gw_port), f"{durability[:1].upper()}{name[:3].upper()}", str(count),
                        str(rate), str(conns), str(out)], env=env, check=True)
        results[name] = json.loads(out.read_text())
        deadline = time.time() + 300  # the queue drains after the last send; the next phase starts empty
        while _undelivered(data / "gateway.db") and time.time() < deadline:
            time.sleep(0.1)
        cpu[name] = cpu_seconds(gw_pid) - before
        cpu_main[name] = cpu_seconds(gw_pid, main_thread=True) - before_main
        others[name] = cpu_seconds(rcv.pid) + children_cpu_seconds() - before_others
        busy[name] = (machine_busy_seconds() - before_busy) / (time.monotonic() - t0)
        time.sleep(0.5)
    rcv.send_signal(signal.SIGTERM)
    rcv.wait(30)
    gw.send_signal(signal.SIGINT if profile else signal.SIGTERM)
    gw.wait(60)
    got = json.loads(arrivals_file.read_text())
    arrivals: dict[str, float] = got["arrivals"]
    print(f"\n== durability {durability} (SQLite synchronous={durability.upper()}), "
          f"{RECORD_BYTES // 1024} KB records, client {client}, signed evidence {'on' if evidence else 'off'}, "
          f"clocks {'on' if clocks else 'off'} ==")
    figures: dict[str, float] = {}
    for name, res in results.items():
        sent = res["sent"]
        lat = sorted((arrivals[c] - t) * 1000 for c, t in sent.items() if c in arrivals)
        missing = len(sent) - len(lat)
        span = max(arrivals[c] for c in sent if c in arrivals) - res["started"]
        intake = len(sent) / (res["ended"] - res["started"])
        if name == "sustained":
            figures = {"rate": len(lat) / span, "cpu_ms": 1000 * cpu[name] / len(sent)}
        print(f"{name:>16}: {len(sent)} records, intake {intake:,.0f}/s, delivered end to end "
              f"{len(lat) / span:,.0f}/s; latency p50 {percentile(lat, 50):.1f} ms, p99 "
              f"{percentile(lat, 99):.1f} ms, max {lat[-1]:.1f} ms; refused {res['failures']}, "
              f"not delivered {missing}; gateway CPU {1000 * cpu[name] / len(sent):.2f} ms per record "
              f"({1000 * cpu_main[name] / len(sent):.2f} on the event loop's thread), load generator and "
              f"receiver {1000 * others[name] / len(sent):.2f} ms; machine busy {busy[name]:.2f} of "
              f"{os.cpu_count()} cores")
    print(f"{'receiver':>16}: {got['repeats']} repeated idempotency keys", flush=True)
    return figures


def cpu_seconds(pid: int, main_thread: bool = False) -> float:
    """CPU time (user + system) a process, or its main thread, has used: the figure other load on the
    machine inflates least. The main thread runs the event loop (HTTP, pipeline, delivery); the
    others are the store's writer and helper threads."""
    stat = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time of this script's finished children (the load generator runs as one)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idling (and I/O wait), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _undelivered(db: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM deliveries WHERE state != 'delivered'").fetchone()[0])
    finally:
        conn.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "receiver":
        receiver(int(sys.argv[2]), sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        port, prefix, count, rate, conns, out = sys.argv[2:8]
        load(int(port), prefix, int(count), float(rate), int(conns), out)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "gateway":
        sys.exit(gateway_node(sys.argv[2], sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000, help="records in the throughput phase")
    ap.add_argument("--latency-records", type=int, default=2_000, help="records in the 100/s phase")
    ap.add_argument("--durability", nargs="+", default=["full", "normal"], choices=["full", "normal"])
    ap.add_argument("--profile", metavar="PREFIX", help="record the gateway with py-spy into PREFIX-*.svg")
    ap.add_argument("--client", nargs="+", default=["http11"], choices=["http11", "httpx", "httpx-pool"],
                    help="the HTTP adapter's way out; several take turns, round by round")
    ap.add_argument("--evidence", nargs="+", default=["on"], choices=["on", "off"],
                    help="signed evidence of submission and delivery; 'off on' compares, round by round")
    ap.add_argument("--clocks", nargs="+", default=["on"], choices=["on", "off"],
                    help="time-limit clocks kept or switched off; several take turns, round by round")
    ap.add_argument("--rounds", type=int, default=1, help="times each client runs, alternating")
    args = ap.parse_args()
    variants = [(c, e, k) for c in args.client for e in args.evidence for k in args.clocks]
    labels = [c + (f"/evidence-{e}" if len(args.evidence) > 1 else "")
              + (f"/clocks-{k}" if len(args.clocks) > 1 else "") for c, e, k in variants]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, Python "
          f"{sys.version.split()[0]}; gateway, receiver and load generator are separate processes")
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        for durability in args.durability:
            rounds = [{label: run(durability, args.records, args.latency_records, Path(tmp), args.profile, c,
                                  e == "on", k == "on") for label, (c, e, k) in zip(labels, variants, strict=True)}
                      for _ in range(args.rounds)]
            if len(labels) > 1 and args.records:
                summary(durability, labels, rounds)


def summary(durability: str, clients: list[str], rounds: list[dict[str, dict[str, float]]]) -> None:
    """Sustained figures per round, and each client's against the first's in the same round."""
    first = clients[0]
    print(f"\n== durability {durability}, sustained, per round (ratio: against {first} in the same round) ==")
    for i, r in enumerate(rounds, 1):
        print(f"  round {i}: " + "; ".join(
            f"{c} {r[c]['rate']:,.0f}/s {r[c]['cpu_ms']:.2f} ms/record"
            + (f" (x{r[c]['rate'] / r[first]['rate']:.2f} rate, x{r[c]['cpu_ms'] / r[first]['cpu_ms']:.2f} CPU)"
               if c != first else "") for c in clients))
    for c in clients[1:]:
        rates = [r[c]["rate"] / r[first]["rate"] for r in rounds]
        cpus = [r[c]["cpu_ms"] / r[first]["cpu_ms"] for r in rounds]
        added = [1000 * (r[c]["cpu_ms"] - r[first]["cpu_ms"]) for r in rounds]
        print(f"  {c} against {first}, median of {len(rounds)} rounds: x{statistics.median(rates):.2f} records/s, "
              f"x{statistics.median(cpus):.2f} gateway CPU per record ({statistics.median(added):+.0f} µs)")


if __name__ == "__main__":
    main()

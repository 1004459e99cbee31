"""Benchmark: the gateway against a peer relay (Node-RED 4), same records, same load, same receiver.

The peer is the relay an integrator would build in an afternoon: a Node-RED flow `http in -> xml
-> function -> http request -> http response`, in memory, with no validation, no durability and
no log. The gateway does ten times the work on each record: police pack in (GB18030 legacy XML,
legacy XSD), the standard's schema and rules, the procuratorate pack out, SQLite with
`synchronous=FULL`, the hash-chained exchange log, and delivery with an idempotency key.

Both run in turns (A B A B ...) for `--rounds` rounds, so load from elsewhere on the machine falls
on both alike, each with:

  * sustained: `--records` police records (about 4.3 KB each, GB18030, a unique case number
    each) pushed by 16 keep-alive connections as fast as they are taken; delivered records/s
    counted at the receiver from the first send to the last arrival;
  * latency at `--rate` records/s offered: p50/p99 from the start of the POST to the record's
    arrival at the receiver;
  * CPU per record of the relay's own process(es), from /proc.

The load generator and receiver are the ones of `bench/http_pipeline.py` (raw HTTP/1.1 on
asyncio streams: they cost the machine less than wrk plus a Lua script that makes unique case
numbers). Node-RED 4 is installed with npm into `~/.cache/case-exchange/node-red` if missing
(outside the repository; the machine has Node.js 20).

`--workers 1,auto` runs the gateway once per setting of `gateway.workers` in each round (CPU then
counts all its worker processes) and prints each one's ratio to Node-RED.

    python bench/peer.py [--records N] [--latency-records N] [--rate R] [--rounds N] [--only gateway|node-red]
                         [--workers 1,auto]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import http_pipeline as hp  # noqa: E402

from tests.support.ports import free_port  # noqa: E402

NODE_RED_HOME = Path(os.environ.get("NODE_RED_HOME", Path.home() / ".cache" / "case-exchange" / "node-red"))
NODE_RED = NODE_RED_HOME / "node_modules" / ".bin" / "node-red"
RECORD_BYTES = 4400
SAMPLE_CASE = "A1401052026030001"


def police_record(case: str) -> bytes:
    """The police pack's arrest request sample, GB18030, padded to about 4.3 KB with the offence
    description (Chinese text, as real files carry), under its own case number."""
    from gateway.mapping import load_pack

    text = (load_pack("police").samples / "valid" / "01-request-arrest-approval.xml").read_bytes().decode("gb18030")
    text = text.replace(SAMPLE_CASE, case)
    filler = "犯罪嫌疑人王建国于2026年3月1日晚在太原市小店区长治路醉酒驾驶机动车，经检验血液酒精含量为156mg/100ml。"
    description = "醉酒驾驶机动车"
    while len(text.replace(description, description + filler, 1).encode("gb18030")) < RECORD_BYTES:
        text = text.replace(description, description + filler, 1)
    return text.encode("gb18030")


def gateway_config(data: Path, port: int, receiver_port: int, workers: str = "1") -> str:
    return f"""
gateway:
  node: bench
  workers: {workers}
  data_dir: {data}
  store: {{durability: full}}
  api: {{host: 127.0.0.1, port: {port}}}
agencies:
  - code: POLICE
    name: City Police
    role: police
    api_key: {{env: BENCH_POLICE_KEY}}
    inbound: [{{name: police-in, adapter: http, mapping: police}}]
  - code: PROC
    name: City Procuratorate
    role: procuratorate
    outbound:
      name: proc-out
      adapter: http
      mapping: procuratorate
      concurrency: 16
      settings: {{url: "http://127.0.0.1:{receiver_port}/receive", max_connections: 16}}
routes:
  - {{stage: arrest-review, action: request-arrest-approval, to: [PROC]}}
"""


# The relay: parse the XML, pick the case number, hand the record on, answer once it is delivered.
NODE_RED_FUNCTION = """
const root = msg.payload && msg.payload.AJXX;
const cn = root && root.TYAJBH && root.TYAJBH[0];
msg.case_number = cn;
msg.headers = {"Content-Type": "application/xml", "X-Case-Number": cn, "Idempotency-Key": cn};
msg.payload = msg.raw;
return msg;
"""


def node_red_flow(receiver_port: int) -> list[dict[str, object]]:
    def node(id_: str, type_: str, wires: list[str], **kw: object) -> dict[str, object]:
        x = 100 + 150 * len(placed)  # a flow node has a place on the canvas, or it is taken for a config node
        placed.append(id_)
        return {"id": id_, "type": type_, "z": "flow", "x": x, "y": 100, "wires": [wires], **kw}

    placed: list[str] = []

    return [
        {"id": "flow", "type": "tab", "label": "relay"},
        node("in", "http in", ["keep"], url="/records", method="post", upload=False),
        node("keep", "change", ["xml"], rules=[{"t": "set", "p": "raw", "pt": "msg", "to": "payload",
                                                 "tot": "msg"}]),
        node("xml", "xml", ["fn"], property="payload", attr="", chr=""),
        node("fn", "function", ["req"], func=NODE_RED_FUNCTION, outputs=1),
        node("req", "http request", ["answer"], method="POST", ret="txt",
             url=f"http://127.0.0.1:{receiver_port}/receive", persist=True),
        node("answer", "change", ["out"], rules=[
            {"t": "set", "p": "statusCode", "pt": "msg", "to": "202", "tot": "num"},
            {"t": "set", "p": "payload", "pt": "msg", "to": "case_number", "tot": "msg"}]),
        node("out", "http response", [], statusCode="", headers={}),
    ]


NODE_RED_SETTINGS = """
module.exports = {
    flowFile: "flows.json",
    httpAdminRoot: false,
    httpNodeRoot: "/",
    logging: { console: { level: "warn" } },
    editorTheme: { tours: false },
    disableEditor: true,
};
"""


def ensure_node_red() -> None:
    if NODE_RED.exists():
        return
    NODE_RED_HOME.mkdir(parents=True, exist_ok=True)
    print(f"installing Node-RED 4 with npm into {NODE_RED_HOME} ...", flush=True)
    if not (NODE_RED_HOME / "package.json").exists():
        subprocess.run(["npm", "init", "-y"], cwd=NODE_RED_HOME, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "node-red@4"], cwd=NODE_RED_HOME, check=True)


def node_red_version() -> str:
    pkg = NODE_RED_HOME / "node_modules" / "node-red" / "package.json"
    return str(json.loads(pkg.read_text())["version"])


Started = tuple[subprocess.Popen[bytes], int]


def start_gateway(work: Path, port: int, receiver_port: int, env: dict[str, str], workers: str = "1") -> Started:
    data = work / f"gateway-data-{port}"
    cfg = work / f"gateway-{port}.yaml"
    cfg.write_text(gateway_config(data, port, receiver_port, workers), encoding="utf-8")
    with (work / f"gateway-{port}.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", str(cfg)], env=env, stderr=log)
    hp.wait_port(port, proc, "gateway")
    return proc, proc.pid


def start_node_red(work: Path, port: int, receiver_port: int, env: dict[str, str]) -> Started:
    user = work / f"node-red-{port}"
    user.mkdir()
    (user / "flows.json").write_text(json.dumps(node_red_flow(receiver_port)), encoding="utf-8")
    (user / "settings.js").write_text(NODE_RED_SETTINGS, encoding="utf-8")
    with (work / f"node-red-{port}.log").open("wb") as log:
        proc = subprocess.Popen([str(NODE_RED), "--userDir", str(user), "--port", str(port), "--settings",
                                 str(user / "settings.js")], env=env, stdout=log, stderr=log)
    hp.wait_port(port, proc, "node-red")
    time.sleep(1.0)  # the flow deploys after the port opens
    return proc, _node_pid(proc.pid)


def _node_pid(pid: int) -> int:
    """`node-red` is a script that may exec node or run it as a child: count the node process."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return int(kids[0]) if kids else pid


def load_phase(port: int, path: str, prefix: str, count: int, rate: float, conns: int, out: Path,
               headers: dict[str, str]) -> dict[str, object]:
    subprocess.run([sys.executable, __file__, "load", str(port), path, prefix, str(count), str(rate), str(conns),
                    str(out), json.dumps(headers)], check=True)
    return dict(json.loads(out.read_text()))


def load(port: int, path: str, prefix: str, count: int, rate: float, conns: int, out: str, headers: str) -> None:
    """The load generator of http_pipeline, with police records and a path of the relay's."""
    bodies = [(f"{prefix}{i:07d}", police_record(f"{prefix}{i:07d}")) for i in range(count)]
    hp.send_all(port, path, bodies, rate, conns, json.loads(headers), out)


def _ready(port: int) -> None:
    """Until the gateway answers GET /ready, and a moment more for its other workers."""
    import urllib.request

    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                if r.status == 200:
                    time.sleep(2.0)
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("gateway not ready")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (a gateway's worker processes), from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return hp.cpu_seconds(pid) + sum(tree_cpu_seconds(int(k)) for k in kids)


def run(kind: str, work: Path, records: int, latency_records: int, rate: float, tag: str) -> dict[str, float]:
    """`kind`: node-red, or gateway:WORKERS."""
    env = {**os.environ, "BENCH_POLICE_KEY": hp.BENCH_KEY}
    port, rcv_port = free_port(), free_port()
    arrivals_file = work / f"arrivals-{kind}-{tag}.json"
    rcv = subprocess.Popen([sys.executable, hp.__file__, "receiver", str(rcv_port), str(arrivals_file)], env=env,
                           stdout=subprocess.DEVNULL)
    hp.wait_port(rcv_port, rcv, "receiver")
    if kind.startswith("gateway"):
        proc, pid = start_gateway(work, port, rcv_port, env, kind.partition(":")[2] or "1")
        _ready(port)  # with workers, the port opens (in the parent) before they serve
        path, headers = "/inbound/police-in", {"X-API-Key": hp.BENCH_KEY}
    else:
        proc, pid = start_node_red(work, port, rcv_port, env)
        path, headers = "/records", {}
    time.sleep(0.5)
    figures: dict[str, float] = {}
    results = {}
    cpu: dict[str, float] = {}
    for phase, count, phase_rate, conns in (("sustained", records, 0.0, 16), ("latency", latency_records, rate, 8)):
        if not count:
            continue
        before = tree_cpu_seconds(pid)
        prefix = f"{'G' + kind.partition(':')[2] if kind.startswith('gateway') else 'N'}{tag}{phase[0].upper()}"
        results[phase] = load_phase(port, path, prefix, count, phase_rate, conns, work / f"load-{prefix}.json",
                                    headers)
        _drain(kind, work, port)
        cpu[phase] = tree_cpu_seconds(pid) - before
    rcv.send_signal(signal.SIGTERM)
    rcv.wait(30)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
    got = json.loads(arrivals_file.read_text())
    arrivals: dict[str, float] = got["arrivals"]
    for phase, res in results.items():
        sent: dict[str, float] = res["sent"]  # type: ignore[assignment]
        lat = sorted((arrivals[c] - t) * 1000 for c, t in sent.items() if c in arrivals)
        if not lat:
            raise SystemExit(f"{kind}: nothing arrived at the receiver in the {phase} phase")
        span = max(arrivals[c] for c in sent if c in arrivals) - float(res["started"])  # type: ignore[arg-type]
        figures[f"{phase}_rate"] = len(lat) / span
        figures[f"{phase}_p50"] = hp.percentile(lat, 50)
        figures[f"{phase}_p99"] = hp.percentile(lat, 99)
        figures[f"{phase}_cpu_ms"] = 1000 * cpu[phase] / len(sent)
        figures[f"{phase}_missing"] = len(sent) - len(lat)
        figures[f"{phase}_refused"] = float(res["failures"])  # type: ignore[arg-type]
    figures["repeats"] = float(got["repeats"])
    return figures


def _drain(kind: str, work: Path, port: int) -> None:
    """The next phase starts empty. Node-RED answers only once it has delivered, so its last answer
    ends its phase; the gateway answers at commit and delivers after, so wait for its queue."""
    if kind.startswith("gateway"):
        deadline = time.time() + 300
        while hp._undelivered(work / f"gateway-data-{port}" / "gateway.db") and time.time() < deadline:
            time.sleep(0.1)
    time.sleep(0.5)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        port, path, prefix, count, rate, conns, out, headers = sys.argv[2:10]
        load(int(port), path, prefix, int(count), float(rate), int(conns), out, headers)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=5_000, help="records in the sustained phase")
    ap.add_argument("--latency-records", type=int, default=1_000, help="records in the fixed-rate phase")
    ap.add_argument("--rate", type=float, default=100.0, help="offered records/s in the latency phase")
    ap.add_argument("--rounds", type=int, default=2, help="A B rounds")
    ap.add_argument("--only", choices=["gateway", "node-red"], help="run one side only")
    ap.add_argument("--workers", default="1", help="gateway.workers settings to run, comma-separated (1,auto)")
    args = ap.parse_args()
    gateways = [f"gateway:{w}" for w in args.workers.split(",")]
    kinds = {"gateway": gateways, "node-red": ["node-red"]}.get(args.only or "", ["node-red", *gateways])
    if "node-red" in kinds:
        ensure_node_red()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; Python {sys.version.split()[0]}"
          + (f"; Node-RED {node_red_version()}" if "node-red" in kinds else "")
          + f"; {len(police_record('X'))} byte GB18030 police records")
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        for r in range(1, args.rounds + 1):
            this: dict[str, dict[str, float]] = {}
            for kind in kinds:
                f = run(kind, Path(tmp), args.records, args.latency_records, args.rate, f"{r}")
                this[kind] = f
                print(f"round {r} {kind:>14}: sustained {f['sustained_rate']:,.0f} records/s delivered, "
                      f"{f['sustained_cpu_ms']:.2f} ms CPU per record; at {args.rate:.0f}/s offered p50 "
                      f"{f.get('latency_p50', 0):.1f} ms p99 {f.get('latency_p99', 0):.1f} ms; refused "
                      f"{f['sustained_refused'] + f.get('latency_refused', 0):.0f}, not delivered "
                      f"{f['sustained_missing'] + f.get('latency_missing', 0):.0f}, repeated keys "
                      f"{f['repeats']:.0f}", flush=True)
            rounds.append(this)
    if "node-red" not in kinds:
        return
    for g in gateways:
        ratios = [r[g]["sustained_rate"] / r["node-red"]["sustained_rate"] for r in rounds]
        cpu = [r[g]["sustained_cpu_ms"] / r["node-red"]["sustained_cpu_ms"] for r in rounds]
        print(f"\n{g} / Node-RED delivered records/s per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.2f}; CPU per record {g} / Node-RED median "
              f"{statistics.median(cpu):.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

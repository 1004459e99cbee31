"""Benchmark: peak memory of one gateway node under the requests that used to exhaust it.

A real node (`python -m gateway CONFIG`, SQLite, loopback, delivering over HTTP to a receiver in
this process) is started fresh for each scenario, so each peak is that scenario's own:

  * attribute bomb over HTTP: one request as large as the parser takes one start tag (just under
    10 MB, within the 32 MB size limit) with 200,000 attributes on one element of a valid record;
  * the same record over SOAP, inline: as base64 in <Record>, and as XML in <RecordXml>;
  * 200 concurrent valid 1 MB records, each POSTed as multipart/form-data with one dossier file;
    a record answered 503 is sent again after its Retry-After, as a legacy client does;
  * one valid record at the size limit (32 MB of Chinese text in four notes) over HTTP;
  * eight valid records of 8 MB (a long note), one after another over HTTP: whether the node gives
    the memory of each back.

For each it prints the node's peak RSS (VmHWM from /proc/PID/status, the kernel's own high-water
mark) and its RSS a few seconds after the last answer, with the answers the senders got.

    .venv/bin/python bench/memory.py [--only http,soap-base64,soap-xml,concurrent,largest,sequential] [--attributes N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.sim.records import CaseStep, to_xml  # noqa: E402
from gateway.sim.soap_agency import username_token  # noqa: E402

MB = 1024 * 1024
TAG_LIMIT = 10_000_000  # libxml2's bound on one start tag without XML_PARSE_HUGE
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:cn:justice:case-exchange:soap:1"
SOAP_PASSWORD = "bench-soap-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def valid_record(case: str, note: str = "", files: list[tuple[str, bytes]] | None = None) -> bytes:
    body = to_xml(CaseStep(case, "prosecution-review", "transfer-for-prosecution", "POLICE"), note)
    if files:
        listed = "".join(f"<File id='f{i}'><Name>{name}</Name><MediaType>application/pdf</MediaType>"
                         f"<Size>{len(data)}</Size><SHA256>{hashlib.sha256(data).hexdigest()}</SHA256></File>"
                         for i, (name, data) in enumerate(files))
        body = re.sub(rb"<Dossier>.*</Dossier>", f"<Dossier>{listed}</Dossier>".encode(), body)
    return body


def attribute_bomb(attributes: int, tag_bytes: int, element: str) -> bytes:
    """A record whose `element` carries `attributes` attributes, its start tag about `tag_bytes` long."""
    width = max(1, (tag_bytes - 8 - attributes * 10) // attributes)
    value = "x" * width
    attrs = " ".join(f'a{i}="{value}"' for i in range(attributes))
    return valid_record("BOMB-1").replace(f"<{element}>".encode(), f"<{element} {attrs}>".encode(), 1)


def soap_envelope(op: str) -> bytes:
    token = username_token("POLICE", SOAP_PASSWORD)
    return (f'<s:Envelope xmlns:s="{SOAP11}" xmlns:cx="{TNS}"><s:Header>{token}</s:Header><s:Body>{op}</s:Body>'
            "</s:Envelope>").encode()


# -- a receiver that takes every delivery ---------------------------------------------------------

class Receiver:
    """Answers every POST with 200, on its own thread and event loop."""

    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, limit=64 * MB), self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


# -- a node ---------------------------------------------------------------------------------------

def config_yaml(data: Path, port: int, receiver: int, settings: dict[str, str]) -> str:
    extra = "".join(f"  {k}: {v}\n" for k, v in settings.items())
    return f"""
gateway:
  node: bench-memory
  data_dir: {data}
  store: {{durability: normal}}
  api: {{host: 127.0.0.1, port: {port}}}
{extra}agencies:
  - code: POLICE
    name: City Police
    role: police
    inbound:
      - {{name: police-in, adapter: http, settings: {{require_key: false}}}}
      - {{name: police-soap, adapter: soap, settings: {{password: {{env: BENCH_SOAP_PASSWORD}}}}}}
  - code: PROC
    name: City Procuratorate
    role: procuratorate
    outbound:
      name: proc-out
      adapter: http
      settings: {{url: "http://127.0.0.1:{receiver}/receive", dossier: multipart}}
routes:
  - {{stage: prosecution-review, action: transfer-for-prosecution, to: [PROC]}}
"""


class Node:
    def __init__(self, work: Path, receiver: int, settings: dict[str, str]) -> None:
        self.port = free_port()
        cfg = work / "gateway.yaml"
        cfg.write_text(config_yaml(work / "data", self.port, receiver, settings), encoding="utf-8")
        self.log = (work / "gateway.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", str(cfg)], stderr=self.log,
                                     env={**os.environ, "BENCH_SOAP_PASSWORD": SOAP_PASSWORD},
                                     cwd=Path(__file__).resolve().parent.parent)
        for _ in range(600):
            if self.proc.poll() is not None:
                raise SystemExit("the gateway exited at start:\n" + (work / "gateway.log").read_text()[-2000:])
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("the gateway did not start")
        time.sleep(1.0)  # start-up settles (checkpoint task, first store writes)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        return status_kb(self.proc.pid, "VmRSS") / 1024

    def peak_mb(self) -> float:
        return status_kb(self.proc.pid, "VmHWM") / 1024

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# -- the scenarios --------------------------------------------------------------------------------

async def send_http(node: Node, bomb: bytes) -> Counter[str]:
    async with httpx.AsyncClient(timeout=600) as c:
        r = await c.post(f"{node.url}/inbound/police-in", content=bomb,
                         headers={"Content-Type": "application/xml"})
    return Counter([_outcome(r)])


async def send_soap(node: Node, bomb: bytes, form: str) -> Counter[str]:
    if form == "base64":
        op = f"<cx:SubmitCaseRecord><cx:Record>{base64.b64encode(bomb).decode()}</cx:Record></cx:SubmitCaseRecord>"
    else:
        inner = bomb.split(b"?>", 1)[1].decode()
        op = f"<cx:SubmitCaseRecord><cx:RecordXml>{inner}</cx:RecordXml></cx:SubmitCaseRecord>"
    async with httpx.AsyncClient(timeout=600) as c:
        r = await c.post(f"{node.url}/soap/police-soap", content=soap_envelope(op),
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f"{TNS}/SubmitCaseRecord"})
    return Counter([_outcome(r)])


async def send_concurrent(node: Node, count: int, record_mb: float) -> Counter[str]:
    """`count` senders at once, each a valid record of `record_mb` MB with one dossier file."""
    scan = os.urandom(64 * 1024)
    filler = "犯罪嫌疑人张三于2026年3月在太原市迎泽区醉酒驾驶机动车，血液酒精含量为156mg/100ml。"
    note = filler * int(record_mb * MB / len(filler.encode()))
    outcomes: Counter[str] = Counter()

    async def one(c: httpx.AsyncClient, i: int) -> None:
        body = valid_record(f"MEM-{i:04d}", note, [("scan.pdf", scan)])
        files = {"record": (f"MEM-{i:04d}.xml", body, "application/xml"), "file": ("scan.pdf", scan, "application/pdf")}
        for _ in range(100):
            try:
                r = await c.post(f"{node.url}/inbound/police-in", files=files,
                                 headers={"X-Message-Id": f"MEM-{i:04d}"})
            except httpx.TransportError as e:  # a kept-alive connection closed under the request: resend
                outcomes[f"connection lost ({type(e).__name__}), sent again"] += 1
                await asyncio.sleep(1.0)
                continue
            outcomes[_outcome(r)] += 1
            if r.status_code != 503:
                return
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))

    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=600, limits=limits) as c:
        await asyncio.gather(*(one(c, i) for i in range(count)))
    return outcomes


FILLER = "犯罪嫌疑人张三于2026年3月在太原市迎泽区醉酒驾驶机动车，血液酒精含量为156mg/100ml。"


def long_record(case: str, total_mb: float, notes: int = 1) -> bytes:
    """A valid record of about `total_mb` MB: its text in `notes` notes (each under the 10 MB text bound)."""
    one = FILLER * int(total_mb * MB / notes / len(FILLER.encode()))
    body = valid_record(case, one)
    extra = f"<Note>{one}</Note>" * (notes - 1)
    return body.replace(b"</Note></Content>", f"</Note>{extra}</Content>".encode(), 1)


async def send_sequential(node: Node, count: int, record_mb: float, notes: int = 1) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=600) as c:
        for i in range(count):
            r = await c.post(f"{node.url}/inbound/police-in", content=long_record(f"SEQ-{i:02d}", record_mb, notes),
                             headers={"Content-Type": "application/xml"})
            outcomes[_outcome(r)] += 1
    return outcomes


def _outcome(r: httpx.Response) -> str:
    text = r.text
    m = re.search(r'"(?:status)"\s*:\s*"(\w+)"|<(?:\w+:)?Status>(\w+)<', text)
    rule = re.search(r"\[rule ([\w.-]+)\]|\[([\w.-]+)\]|<(?:\w+:)?Rule>([\w.-]+)<|\"rule\":\s*\"([\w.-]+)\"", text)
    what = next((g for g in (m.groups() if m else ()) if g), "")
    why = next((g for g in (rule.groups() if rule else ()) if g), "")
    return " ".join(x for x in (str(r.status_code), what, why) if x)


def measure(name: str, work: Path, receiver: Receiver, send: Callable[[Node], Counter[str]],
            settings: dict[str, str]) -> None:
    node = Node(work, receiver.port, settings)
    try:
        idle = node.rss_mb()
        stop = threading.Event()
        polled = [idle]

        def poll() -> None:  # VmHWM is the kernel's exact peak; polling VmRSS shows it is this scenario's
            while not stop.wait(0.05):
                try:
                    polled.append(node.rss_mb())
                except (FileNotFoundError, KeyError):
                    return

        sampler = threading.Thread(target=poll, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        outcomes = send(node)
        took = time.perf_counter() - t0
        time.sleep(3.0)  # deliveries settle, the allocator gives back what it will
        stop.set()
        sampler.join()
        peak, after = node.peak_mb(), node.rss_mb()
    finally:
        node.stop()
    answers = ", ".join(f"{n} x {what}" for what, n in outcomes.most_common())
    print(f"{name:<44} peak RSS {peak:7.0f} MB (polled {max(polled):5.0f}), idle before {idle:4.0f} MB, "
          f"after {after:5.0f} MB; {took:5.1f} s; answers: {answers}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="http,soap-base64,soap-xml,concurrent,largest,sequential")
    ap.add_argument("--attributes", type=int, default=200_000)
    ap.add_argument("--tag-bytes", type=int, default=TAG_LIMIT - 100_000,
                    help="length of the bomb's start tag; default just under libxml2's 10 MB bound")
    ap.add_argument("--element", default="CaseNumber",
                    help="element of the record that carries the attributes (CaseNumber: the standard allows "
                         "none there, so each one is a schema finding; Note: allowed, so the record passes)")
    ap.add_argument("--concurrent", type=int, default=200)
    ap.add_argument("--record-mb", type=float, default=1.0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a gateway setting for the node, e.g. max_records_in_progress=8 (repeatable)")
    args = ap.parse_args()
    settings = dict(kv.split("=", 1) for kv in args.set)
    bomb = attribute_bomb(args.attributes, args.tag_bytes, args.element)
    print(f"{os.cpu_count()} CPUs; node: SQLite, loopback, fresh per scenario; attribute bomb "
          f"{len(bomb) / MB:.1f} MB with {args.attributes:,} attributes on <{args.element}>", flush=True)
    receiver = Receiver()
    receiver.start()
    scenarios: dict[str, tuple[str, Callable[[Node], Counter[str]]]] = {
        "http": ("attribute bomb, HTTP", lambda n: asyncio.run(send_http(n, bomb))),
        "soap-base64": ("attribute bomb, SOAP inline base64 <Record>",
                        lambda n: asyncio.run(send_soap(n, bomb, "base64"))),
        "soap-xml": ("attribute bomb, SOAP inline <RecordXml>", lambda n: asyncio.run(send_soap(n, bomb, "xml"))),
        "concurrent": (f"{args.concurrent} concurrent {args.record_mb:g} MB multipart records",
                       lambda n: asyncio.run(send_concurrent(n, args.concurrent, args.record_mb))),
        "largest": ("one 32 MB record (the size limit), HTTP", lambda n: asyncio.run(send_sequential(n, 1, 31.9, 4))),
        "sequential": ("eight 8 MB records, one after another, HTTP", lambda n: asyncio.run(send_sequential(n, 8, 8))),
    }
    try:
        for key in args.only.split(","):
            name, send = scenarios[key]
            with tempfile.TemporaryDirectory(prefix="bench-memory-") as d:
                measure(name, Path(d), receiver, send, settings)
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()

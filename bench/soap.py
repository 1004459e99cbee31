"""Benchmark: deliveries to a legacy SOAP service (spyne, own process) through zeep, on loopback.

Prints:
  * the WSDL load (once per adapter) and how often zeep parsed a WSDL during all deliveries;
  * the zeep client's own cost per call without the network: building the request envelope and
    reading the reply (the part a faster client could save);
  * deliveries/s of the adapter (zeep's sync Client in its own thread pool) against zeep's
    AsyncClient over httpx on the event loop, at the same concurrency;
  * deliveries/s end to end: records into a gateway (SQLite store) until the service has them all;
  * inbound memory: the peak RSS the SOAP endpoint adds while taking one large record inline
    (base64) and as an MTOM part, in multiples of the record's size (each in a fresh process).

    python bench/soap.py [--deliveries N] [--concurrency C] [--record-mb M]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import zeep
import zeep.wsdl.wsdl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.soap import OutboundSettings  # noqa: E402
from adapters.soap.outbound import SoapOutbound  # noqa: E402
from adapters.testing import outbound_context  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.model import OutboundMessage  # noqa: E402
from gateway.runtime import Gateway  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

NS = "urn:cn:justice:case-exchange:1"
WSDL_PARSES = 0
_init = zeep.wsdl.wsdl.Document.__init__


def _counting_init(self: Any, *a: Any, **k: Any) -> None:
    global WSDL_PARSES
    WSDL_PARSES += 1
    _init(self, *a, **k)


zeep.wsdl.wsdl.Document.__init__ = _counting_init  # type: ignore[method-assign]


def record(i: int, case: str) -> bytes:
    note = "x" * 2000
    return (f'<?xml version="1.0" encoding="UTF-8"?><CaseRecord xmlns="{NS}" version="1.0">'
            f"<CaseNumber>{case}</CaseNumber><Stage>prosecution-review</Stage>"
            f"<Action>transfer-for-prosecution</Action><Sender>POLICE</Sender>"
            f"<Content><Note>{i} {note}</Note></Content></CaseRecord>").encode()


def message(i: int) -> OutboundMessage:
    case = f"BENCH-{i % 97:04d}"
    return OutboundMessage(f"d{i}", f"m{i}", f"m{i}:PROC", "PROC", case, record(i, case))


async def adapter_rate(adapter: SoapOutbound, n: int, conc: int, offset: int) -> float:
    sem = asyncio.Semaphore(conc)

    async def one(i: int) -> None:
        async with sem:
            r = await adapter.deliver(message(offset + i))
            assert r.outcome == "delivered", r.detail

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - t0)


async def async_client_rate(wsdl: str, n: int, conc: int, offset: int) -> float:
    """The alternative the adapter does not use: zeep's AsyncClient over httpx on the event loop."""
    from zeep.transports import AsyncTransport

    transport = AsyncTransport(client=httpx.AsyncClient(limits=httpx.Limits(max_connections=conc)))
    client = zeep.AsyncClient(wsdl, transport=transport)
    sem = asyncio.Semaphore(conc)

    async def one(i: int) -> None:
        m = message(offset + i)
        async with sem:
            await client.service.SubmitCaseRecord(MessageId=m.idempotency_key, CaseNumber=m.case_number,
                                                  Record=m.body)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    rate = n / (time.perf_counter() - t0)
    await transport.aclose()
    return rate


def zeep_overhead(adapter: SoapOutbound, reply: Any, n: int) -> tuple[float, float]:
    client, service = adapter._client, adapter._service
    assert client is not None
    binding = service._binding
    op = binding.get("SubmitCaseRecord")
    fields = adapter.request_fields(message(0))
    t0 = time.perf_counter()
    for _ in range(n):
        client.create_message(service, "SubmitCaseRecord", **fields)
    build = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        binding.process_reply(client, op, reply)
    parse = (time.perf_counter() - t0) / n
    return build * 1e6, parse * 1e6


async def end_to_end(wsdl: str, n: int, conc: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config({
            "gateway": {"node": "bench", "data_dir": tmp, "store": {"durability": "normal"}},
            "agencies": [
                {"code": "POLICE", "name": "Police", "role": "police",
                 "inbound": [{"name": "police-in", "adapter": "memory"}]},
                {"code": "PROC", "name": "Procuratorate", "role": "procuratorate",
                 "outbound": {"name": "proc-out", "adapter": "soap", "concurrency": conc,
                              "settings": {"wsdl": wsdl, "case_field": "CaseNumber"}}},
            ],
            "routes": [{"stage": "prosecution-review", "to": ["PROC"]}],
        })
        gw = Gateway(cfg)
        await gw.start()
        try:
            inbound = gw.inbound["police-in"]
            t0 = time.perf_counter()
            mids = [(await inbound.submit(record(i, f"E2E-{i % 97:04d}"))).message_id  # type: ignore[attr-defined]
                    for i in range(n)]
            while True:
                depths = await gw.store.queue_depths()
                waiting = sum(d.count for d in depths if d.state != "delivered")
                if waiting == 0:
                    break
                await asyncio.sleep(0.02)
            rate = n / (time.perf_counter() - t0)
            assert len(mids) == n
            return rate
        finally:
            await gw.stop()


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


async def memory_probe(kind: str, size: int) -> None:
    """In a fresh process: one SubmitCaseRecord of `size` bytes; print the endpoint's extra peak RSS."""
    import base64
    import gc
    import os

    from starlette.applications import Starlette

    from adapters.soap import InboundSettings
    from adapters.soap.inbound import SoapInbound
    from adapters.testing import inbound_context
    from gateway.model import InboundRecord, MessageStatus, Receipt

    got: list[int] = []

    async def intake(r: InboundRecord) -> Receipt:
        got.append(len(r.body))
        return Receipt("m", "h", MessageStatus.ACCEPTED, received_at=time.time())

    context = inbound_context(tempfile.mkdtemp(), channel="probe", agency="POLICE", intake=intake,
                              max_message_bytes=64 * 1024 * 1024)
    adapter = SoapInbound(InboundSettings(require_token=False, client_cert_sha256=["00"]), context, None, None)
    adapter.pins = set()  # no authentication in the probe: only the envelope handling is measured
    app = Starlette(routes=adapter.routes())
    soap = "http://schemas.xmlsoap.org/soap/envelope/"
    head = f'<s:Envelope xmlns:s="{soap}" xmlns:cx="urn:cn:justice:case-exchange:soap:1"><s:Body>' \
           "<cx:SubmitCaseRecord><cx:Record>"
    tail = "</cx:Record></cx:SubmitCaseRecord></s:Body></s:Envelope>"
    if kind == "inline":
        body = head.encode() + base64.b64encode(os.urandom(size)) + tail.encode()
        ctype = "text/xml; charset=utf-8"
    else:
        inc = '<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:rec"/>'
        body = (f"--B\r\nContent-Type: application/xop+xml; type=\"text/xml\"\r\nContent-ID: <root>\r\n\r\n"
                f"{head}{inc}{tail}\r\n--B\r\nContent-ID: <rec>\r\n\r\n").encode()
        body += os.urandom(size) + b"\r\n--B--\r\n"
        ctype = 'multipart/related; type="application/xop+xml"; start="<root>"; boundary=B'
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
        base = _rss("VmRSS")
        r = await client.post("/soap/probe", content=body, headers={"Content-Type": ctype})
        peak = _rss("VmHWM")
    assert r.status_code == 200 and got == [size], r.text[:300]
    print(f"{(peak - base) / size:.2f}")


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deliveries", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--record-mb", type=float, default=7.0, help="record size for the memory probe")
    p.add_argument("--memory-probe", choices=["inline", "mtom"], help=argparse.SUPPRESS)
    args = p.parse_args()
    size = int(args.record_mb * 1024 * 1024)
    if args.memory_probe:
        await memory_probe(args.memory_probe, size)
        return
    for kind in ("inline", "mtom"):
        probe = [sys.executable, __file__, "--memory-probe", kind, "--record-mb", str(args.record_mb)]
        out = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
        print(f"inbound {kind} record of {args.record_mb:g} MB: the endpoint's peak RSS grew by {out} x the "
              "record size (request body, parse and decoded record included)")
    n, conc = args.deliveries, args.concurrency
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.sim.soap_agency", "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        wsdl = f"http://127.0.0.1:{port}/?wsdl"
        with tempfile.TemporaryDirectory() as tmp:
            adapter = SoapOutbound(OutboundSettings(wsdl=wsdl, case_field="CaseNumber", max_connections=conc),
                                   outbound_context(tmp, agency="PROC"))
            t0 = time.perf_counter()
            await adapter._ready()
            load_ms = (time.perf_counter() - t0) * 1000
            await adapter_rate(adapter, 50, conc, 10_000_000)  # warm up connections
            thread_rate = await adapter_rate(adapter, n, conc, 0)
            print(f"WSDL loaded once in {load_ms:.0f} ms; zeep parsed a WSDL {WSDL_PARSES} time(s) for "
                  f"{n + 51} deliveries (adapter.wsdl_loads={adapter.wsdl_loads})")
            fields = adapter.request_fields(message(1))
            reply = await asyncio.to_thread(adapter._service["SubmitCaseRecord"], **fields)
            build_us, parse_us = zeep_overhead(adapter, reply, 2000)
            print(f"zeep per call, no network: build request {build_us:.0f} us, read reply {parse_us:.0f} us "
                  f"(record {len(message(0).body)} bytes)")
            print(f"deliveries/s, the adapter (sync zeep Client in {conc} threads): {thread_rate:,.0f} "
                  f"({1000 / thread_rate * conc:.1f} ms per call at that concurrency)")
            await adapter.aclose()
        async_rate = await async_client_rate(wsdl, n, conc, 20_000_000)
        print(f"deliveries/s, zeep AsyncClient over httpx, concurrency {conc}: {async_rate:,.0f}")
        e2e = await end_to_end(wsdl, n, conc)
        print(f"deliveries/s end to end (memory inbound -> pipeline -> SQLite -> zeep -> spyne): {e2e:,.0f}")
    finally:
        proc.terminate()
        proc.wait(5)


if __name__ == "__main__":
    asyncio.run(main())

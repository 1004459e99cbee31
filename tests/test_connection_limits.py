"""What one client may hold of a node's port: a real node process on loopback, clients misbehaving on purpose.

A client that sends its request a byte at a time, or stops in the middle of a body, is cut off
after the deadline while other clients are served as usual; one address cannot take more than its
share of connections. Clients come from several loopback addresses (127.0.0.x), as from several hosts.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from .support.config import base_config
from .support.nodes import Node
from .support.ports import free_port

HEADER_TIMEOUT, BODY_TIMEOUT, PER_ADDRESS, PER_CONNECTION = 2.0, 1.0, 4, 3
KEYS = {"POLICE_KEY": "police-key-1"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """(port, node log) of a node with short deadlines and a small per-address cap."""
    tmp = tmp_path_factory.mktemp("limits")
    port = free_port()
    cfg = base_config(tmp / "data", api={
        "host": "127.0.0.1", "port": port, "header_timeout": HEADER_TIMEOUT, "body_timeout": BODY_TIMEOUT,
        "body_min_rate": 0, "max_connections_per_address": PER_ADDRESS, "max_requests_per_connection": PER_CONNECTION})
    police = cfg["agencies"][0]
    police["api_key"] = {"env": "POLICE_KEY"}
    police["inbound"] = [{"name": "police-in", "adapter": "http"}]
    path = tmp / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    node = Node("limits-node", port, path, KEYS)
    node.start()
    assert node.log is not None
    try:
        node.wait_ready()
        yield port, node.log
    finally:
        assert node.stop(), "the node did not stop on SIGTERM"


async def connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def until_closed(reader: asyncio.StreamReader, limit: float) -> bytes:
    """Everything the server sent until it closed the connection (fails if it is still open after `limit`)."""
    try:
        return await asyncio.wait_for(reader.read(), limit)
    except ConnectionResetError:
        return b""


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
              extra: bytes = b"") -> tuple[int, dict[str, str]]:
    """One GET /health on an open connection: status and headers (the body is read and dropped)."""
    writer.write(b"GET /health HTTP/1.1\r\nHost: gateway\r\n" + extra + b"\r\n")
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
    status = int(head.split()[1])
    headers = dict(line.lower().split(": ", 1) for line in head.split("\r\n")[1:] if line)
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers


async def test_slow_senders_are_cut_off_while_others_are_served(node: tuple[int, Path]) -> None:
    port, node_log = node
    loop = asyncio.get_running_loop()
    request = b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Padding: " + b"x" * 60

    async def slow(source: str) -> tuple[float, bytes]:
        reader, writer = await connect(port, source)
        started = loop.time()

        async def drip() -> None:
            for byte in request:  # one byte a second, never finishing the headers
                writer.write(bytes([byte]))
                await asyncio.sleep(1)

        dripping = asyncio.create_task(drip())
        try:
            answer = await until_closed(reader, HEADER_TIMEOUT + 5)
            return loop.time() - started, answer
        finally:
            dripping.cancel()
            writer.close()

    latencies: list[float] = []

    async def steady(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while not stop.is_set():
                t = loop.time()
                assert (await client.get("/health")).status_code == 200
                latencies.append(loop.time() - t)
                await asyncio.sleep(0.1)

    async def stopped(source: str) -> bytes:
        reader, writer = await connect(port, source)
        writer.write(request[:20])  # then nothing: nothing of its own is in flight when it is cut
        try:
            return await until_closed(reader, HEADER_TIMEOUT + 5)
        finally:
            writer.close()

    stop = asyncio.Event()
    served = asyncio.create_task(steady(stop))
    *cut, answer = await asyncio.gather(*(slow(f"127.0.0.{10 + i}") for i in range(50)), stopped("127.0.0.9"))
    stop.set()
    await served

    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    for held, answer in cut:
        assert HEADER_TIMEOUT - 0.2 < held < HEADER_TIMEOUT + 1.5, held
        # a byte arriving as the node closes makes its kernel reset the connection, losing the 408 on the way
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert len(latencies) >= 15, "the steady client was served throughout"
    assert max(latencies) < 0.5, latencies
    assert "request headers not complete in time from 127.0.0.10: 2 s (header_timeout)" in node_log.read_text()


async def test_a_stalled_body_is_cut_and_a_slow_steady_one_is_not(node: tuple[int, Path]) -> None:
    port, node_log = node
    loop = asyncio.get_running_loop()
    head = ("POST /inbound/police-in HTTP/1.1\r\nHost: gateway\r\nX-API-Key: police-key-1\r\n"
            "Content-Type: application/xml\r\nContent-Length: {}\r\n\r\n")

    async def stalled() -> tuple[float, bytes]:
        reader, writer = await connect(port, "127.0.0.2")
        writer.write(head.format(1000).encode() + b"<Record>")  # then nothing
        started = loop.time()
        try:
            answer = await until_closed(reader, BODY_TIMEOUT + 5)
            return loop.time() - started, answer
        finally:
            writer.close()

    async def trickling() -> bytes:
        reader, writer = await connect(port, "127.0.0.2")
        body = b"<x/><y/>"
        writer.write(head.format(len(body)).encode())
        for byte in body:  # well within each body_timeout, so never cut, however long it takes in all
            await asyncio.sleep(BODY_TIMEOUT / 4)
            writer.write(bytes([byte]))
        try:
            return await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)
        finally:
            writer.close()

    (held, answer), status_line = await asyncio.gather(stalled(), trickling())
    assert BODY_TIMEOUT - 0.2 < held < BODY_TIMEOUT + 1.5, held
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert not status_line.startswith(b"HTTP/1.1 408"), status_line  # the app answered it (a refusal of <x/>)
    assert "request body too slow from 127.0.0.2" in node_log.read_text()


async def test_one_address_gets_its_share_of_connections_and_no_more(node: tuple[int, Path]) -> None:
    port, node_log = node
    held = [await connect(port, "127.0.0.3") for _ in range(PER_ADDRESS)]
    for reader, writer in held:  # each served and kept alive
        assert (await get(reader, writer))[0] == 200

    reader, writer = await connect(port, "127.0.0.3")
    status, headers = await get(reader, writer)
    assert status == 503 and headers["retry-after"] == "5" and headers["connection"] == "close"
    assert await until_closed(reader, 2) == b""
    writer.close()

    other = await connect(port, "127.0.0.4")  # another address is served meanwhile
    assert (await get(*other))[0] == 200
    other[1].close()

    held.pop()[1].close()  # one of the four goes: a new one from the same address is served again
    await asyncio.sleep(0.2)
    again = await connect(port, "127.0.0.3")
    assert (await get(*again))[0] == 200
    for _, w in [*held, again]:
        w.close()
    lines = [line for line in node_log.read_text().splitlines() if "too many connections from 127.0.0.3" in line]
    assert len(lines) == 1 and re.search(r"4 connections open from this address", lines[0]), lines


async def test_oversized_headers_are_refused(node: tuple[int, Path]) -> None:
    port, node_log = node
    reader, writer = await connect(port, "127.0.0.5")
    writer.write(b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Padding: " + b"x" * 70_000)
    try:
        answer = await until_closed(reader, 5)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert "request headers too large from 127.0.0.5: over 65536 bytes" in node_log.read_text()


async def test_a_connection_serves_so_many_requests_then_closes(node: tuple[int, Path]) -> None:
    port, _ = node
    reader, writer = await connect(port, "127.0.0.6")
    answers = [await get(reader, writer) for _ in range(PER_CONNECTION)]
    assert [status for status, _ in answers] == [200] * PER_CONNECTION
    assert [h.get("connection") for _, h in answers] == [None] * (PER_CONNECTION - 1) + ["close"]
    assert await until_closed(reader, 2) == b""
    writer.close()


async def test_a_kept_alive_connection_has_the_same_deadline_for_its_next_request(node: tuple[int, Path]) -> None:
    port, node_log = node
    reader, writer = await connect(port, "127.0.0.7")
    upgrade = b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
    assert (await get(reader, writer, upgrade))[0] == 200  # no WebSocket here: answered as plain HTTP
    await asyncio.sleep(HEADER_TIMEOUT / 2)  # idle between requests, under keep_alive_timeout
    loop = asyncio.get_running_loop()
    started = loop.time()
    writer.write(b"GET /hea")
    try:
        answer = await until_closed(reader, HEADER_TIMEOUT + 5)
    finally:
        writer.close()
    assert HEADER_TIMEOUT - 0.2 < loop.time() - started < HEADER_TIMEOUT + 1.5
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert "upgrade" not in node_log.read_text().lower()


def test_limits_are_settings_with_defaults() -> None:
    from gateway.config import ApiSettings

    api = ApiSettings()
    assert (api.header_timeout, api.max_connections_per_address) == (10.0, 128)
    with pytest.raises(ValueError):
        ApiSettings(header_timeout=0)


def test_a_flood_from_one_peer_is_one_line_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    from gateway.api.listener import Throttled

    notes = Throttled(every=0.2, peers=2)
    with caplog.at_level(logging.WARNING, logger="gateway.listener"):
        for _ in range(5):
            notes.warn("10.0.0.1", "no request in time")
        notes.warn("10.0.0.2", "no request in time")
        notes.warn("10.0.0.3", "no request in time")  # past `peers` addresses: one line for the others
        notes.warn("10.0.0.4", "no request in time")
        time.sleep(0.25)
        notes.warn("10.0.0.1", "no request in time")
    assert [r.getMessage() for r in caplog.records] == [
        "no request in time from 10.0.0.1", "no request in time from 10.0.0.2",
        "no request in time from other addresses",
        "no request in time from 10.0.0.1; 4 more since the previous line"]

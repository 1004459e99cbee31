"""A small cluster on loopback for system tests and benchmarks: gateway processes, a receiver.

Each node is a real `python -m gateway CONFIG` process; records go in over HTTP to any node and
out over HTTP to `Receiver`, which stands in for an agency's system: it counts every POST by
message id and acts once per Idempotency-Key, as a careful receiver does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from gateway.audit.chain import GENESIS, AuditEntry, recompute

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """An agency's HTTP endpoint: counts posts per message, acts once per Idempotency-Key."""

    def __init__(self) -> None:
        self.port = free_port()
        self.posts: Counter[str] = Counter()  # message id -> POSTs received
        self.acted: set[str] = set()  # idempotency keys acted on
        self.acted_twice = 0
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/receive"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            self.posts[headers.get("x-message-id", "?")] += 1
            key = headers.get("idempotency-key", "?")
            if key in self.acted:
                self.acted_twice += 1  # a retry whose first answer was lost: answered, not acted on again
            self.acted.add(key)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"accepted"})

    def start(self) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(
                self, host="127.0.0.1", port=self.port, log_level="error", lifespan="off", access_log=False
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(10)


def node_config(
    node: str, port: int, data_dir: Path, store: dict[str, Any], receiver_url: str, lease_seconds: float = 3.0
) -> dict[str, Any]:
    out = {"adapter": "http", "settings": {"url": receiver_url, "read_timeout": 5.0}}
    return {
        "gateway": {
            "node": node,
            "data_dir": str(data_dir),
            "store": store,
            "lease_seconds": lease_seconds,
            "api": {"host": "127.0.0.1", "port": port},
            "checkpoint_every": 2000,
        },
        "agencies": [
            {
                "code": "POLICE",
                "name": "City Police",
                "role": "police",
                "inbound": [{"name": "police-in", "adapter": "http", "settings": {"require_key": False}}],
            },
            {
                "code": "PROC",
                "name": "City Procuratorate",
                "role": "procuratorate",
                "outbound": {
                    "name": "proc-out",
                    **out,
                    "concurrency": 16,
                    "retry": {
                        "initial_backoff": 0.2,
                        "max_backoff": 1.0,
                        "jitter": 0.1,
                        "max_attempts": 1000,
                    },
                },
            },
        ],
        "routes": [{"stage": "prosecution-review", "action": "transfer-for-prosecution", "to": ["PROC"]}],
    }


@dataclass
class Node:
    name: str
    port: int
    config: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.log = self.config.with_suffix(f".{self.starts}.log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", str(self.config)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        end = time.time() + timeout
        while time.time() < end:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"node {self.name} exited: {self.log.read_text()[-3000:] if self.log else ''}"
                )
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node {self.name} not ready within {timeout} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc and self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        count: int,
        work: Path,
        store: dict[str, Any],
        receiver_url: str,
        env: dict[str, str] | None = None,
        lease_seconds: float = 3.0,
    ) -> Cluster:
        base_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
        nodes = []
        for i in range(count):
            name, port = f"node-{i + 1}", free_port()
            cfg = work / f"{name}.yaml"
            cfg.write_text(
                yaml.safe_dump(node_config(name, port, work / name, store, receiver_url, lease_seconds))
            )
            nodes.append(Node(name, port, cfg, base_env))
        return cls(nodes)

    def start(self) -> None:
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            n.wait_ready()

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.alive()]


async def send_records(
    cluster: Cluster, bodies: list[tuple[str, bytes]], concurrency: int = 16
) -> dict[str, str]:
    """POST every record to some live node until one answers with a receipt; message id -> gateway id."""
    receipts: dict[str, str] = {}
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)

    async def worker(client: httpx.AsyncClient, k: int) -> None:
        turn = k
        while not queue.empty():
            mid, body = queue.get_nowait()
            while True:
                live = cluster.live() or cluster.nodes
                node = live[turn % len(live)]
                turn += 1
                try:
                    r = await client.post(
                        f"{node.url}/inbound/police-in",
                        content=body,
                        headers={"X-Message-Id": mid, "Content-Type": "application/xml"},
                    )
                    if r.status_code in (200, 202):
                        receipts[mid] = r.json()["message_id"]
                        break
                    if r.status_code == 422:
                        raise AssertionError(f"record {mid} rejected: {r.text}")
                except httpx.HTTPError:
                    pass  # that node died meanwhile; the resend goes to another and gets the same receipt
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        await asyncio.gather(*(worker(client, k) for k in range(concurrency)))
    return receipts


def verify_chain(entries: list[AuditEntry]) -> None:
    prev = GENESIS
    for i, e in enumerate(entries, 1):
        assert e.seq == i, f"sequence gap at {i}: found {e.seq}"
        assert e.prev_hash == prev, f"fork or gap at seq {e.seq}"
        assert recompute(e) == e.entry_hash, f"entry {e.seq} does not match its hash"
        prev = e.entry_hash

"""Gateway nodes as real processes, for crash, chaos and TLS tests and for benchmarks.

Each `Node` is a `python -m gateway CONFIG` process (the real entry point, schema check and all)
that can be started, awaited until ready, killed with SIGKILL and started again. A `Cluster` is
several such nodes on one database; `send_records` pushes records to whichever node is alive.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from .ports import free_port
from .waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def gateway_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The `gateway` command, as an operator or auditor runs it (its output wide enough not to wrap)."""
    return subprocess.run([str(Path(sys.executable).parent / "gateway"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


def node_config(
    node: str, port: int, data_dir: Path, store: dict[str, Any], receiver_url: str, lease_seconds: float = 3.0,
    workers: int | str | None = None,
) -> dict[str, Any]:
    out = {"adapter": "http", "settings": {"url": receiver_url, "read_timeout": 5.0}}
    extra: dict[str, Any] = {} if workers is None else {"workers": workers}
    return {
        "gateway": {
            **extra,
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
    """`python -m gateway CONFIG` as a child process that can be killed (SIGKILL) and started again.

    `env` is added to this process's environment; each start writes its own log beside the config.
    `root` is the checkout whose code runs (another one gives a baseline in the same run).
    """

    name: str
    port: int  # the node's API port (0: the node picks one, and readiness is not awaited)
    config: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    starts: int = 0
    root: Path = ROOT

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.log = self.config.with_suffix(f".{self.starts}.log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", str(self.config)],
                cwd=self.root,
                env={**os.environ, **self.env, **({"PYTHONPATH": str(self.root)} if self.root != ROOT else {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def _still_running(self) -> None:
        """Raises with the log's tail once the process has exited: waiting longer cannot help."""
        assert self.proc is not None, f"node {self.name} was never started"
        if self.proc.poll() is not None:
            raise RuntimeError(f"node {self.name} exited: {self.log.read_text()[-3000:] if self.log else ''}")

    def _ready(self) -> bool:
        self._still_running()
        try:
            return httpx.get(f"{self.url}/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _listening(self) -> bool:
        self._still_running()
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def wait_ready(self, timeout: float = 30) -> None:
        """Until GET /ready answers 200 over plain HTTP."""
        wait_until(self._ready, timeout, f"node {self.name} ready")

    def wait_listening(self, timeout: float = 30) -> None:
        """Until the API port takes connections (for a node that speaks only TLS)."""
        wait_until(self._listening, timeout, f"node {self.name} listening")

    async def start_and_wait(self) -> None:
        """Start the node (again) and wait until it is ready, without blocking the event loop."""
        self.start()
        await asyncio.to_thread(self.wait_ready)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown of any kind, as a power cut or the OOM killer would do it."""
        if self.proc and self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM, then SIGKILL after `timeout` s; False when it took the SIGKILL."""
        if self.proc and self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return False
        return True


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
        workers: int | str | None = None,
        root: Path = ROOT,
    ) -> Cluster:
        nodes = []
        for i in range(count):
            name, port = f"node-{i + 1}", free_port()
            cfg = work / f"{name}.yaml"
            cfg.write_text(
                yaml.safe_dump(node_config(name, port, work / name, store, receiver_url, lease_seconds, workers))
            )
            nodes.append(Node(name, port, cfg, env or {}, root=root))
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

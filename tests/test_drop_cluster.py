"""Two nodes on one PostgreSQL database polling the same drop: every file is ingested exactly once.

Each poll runs under the channel's cluster-wide lock (`drop:CHANNEL`). The nodes are two Gateway
instances in this process with their own data directories, sharing only the database, the drop
directory (a folder, or a real sshd's directory over SFTP) and an HTTP receiver that counts posts.
SQLite's lock only excludes tasks of one process, so several nodes need PostgreSQL.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.model import InboundRecord, Receipt
from gateway.runtime import Gateway
from gateway.sim.sshd import SshServer
from gateway.store.postgres import PostgresStore

from .support.drops import drop, drop_dict, visible
from .support.receiver import Receiver
from .support.stores import DSN_ENV
from .support.waiting import wait_for

pytestmark = pytest.mark.postgres

N_BEFORE, N_DURING = 10, 20
LOCK = "drop:police-in"


def _node(name: str, tmp_path: Path, inbound: dict[str, Any], receiver: Receiver) -> Gateway:
    cfg = drop_dict(
        tmp_path / name,
        {"adapter": inbound["adapter"], "settings": inbound["settings"]},
        {"adapter": "http", "settings": {"url": receiver.url, "read_timeout": 5.0}},
        node=name,
    )
    cfg["gateway"]["store"] = {"backend": "postgres", "dsn": {"env": DSN_ENV}}
    return Gateway(parse_config(cfg))


def _counting(
    intake: Callable[[InboundRecord], Awaitable[Receipt]], taken: Counter[str]
) -> Callable[[InboundRecord], Awaitable[Receipt]]:
    """The pipeline's entry, counting each file handed to it (the pipeline's own duplicate check
    would hide a file read twice, so this counts before it)."""

    async def counted(record: InboundRecord) -> Receipt:
        taken[record.file_name or "?"] += 1
        return await intake(record)

    return counted


async def _two_nodes_take_each_file_once(tmp_path: Path, src: Path, inbound: dict[str, Any]) -> None:
    receiver = Receiver()
    receiver.start()
    nodes = [_node(n, tmp_path, inbound, receiver) for n in ("node-a", "node-b")]
    taken: Counter[str] = Counter()  # file name -> times handed to a pipeline, over both nodes
    for gw in nodes:
        gw.intake = _counting(gw.intake, taken)  # type: ignore[method-assign]
    for i in range(N_BEFORE):
        drop(src, f"R{i:02d}", f"C2026-{i:04d}")
    await asyncio.gather(*(gw.start() for gw in nodes))
    try:
        for i in range(N_BEFORE, N_BEFORE + N_DURING):  # dropped while both nodes poll
            drop(src, f"R{i:02d}", f"C2026-{i:04d}")
            await asyncio.sleep(0.03)
        n = N_BEFORE + N_DURING
        await wait_for(lambda: visible(src) == [], 30, "drop directory emptied")
        await wait_for(lambda: len(receiver.keys) >= n, 30, "every record delivered")
        await asyncio.sleep(1.0)  # several more polls by both nodes: nothing may be taken again

        assert len(taken) == n and set(taken.values()) == {1}, f"files taken more than once: {taken}"
        store = nodes[0].store
        deliveries = await store.list_deliveries(limit=1000)
        messages = {d.message_id for d in deliveries}
        assert len(deliveries) == n and len(messages) == n, "one message and one delivery per file"
        assert sum(1 for e in await store.audit_entries(limit=10_000) if e.action == "received") == n
        assert len(receiver.arrivals) == n and set(receiver.arrivals.values()) == {1}, receiver.arrivals
        assert receiver.duplicate_arrivals == 0
        assert len(visible(src / "archive")) == 2 * n and visible(src / "error") == []
        for gw in nodes:
            assert gw.inbound["police-in"].health()["ok"] is True
    finally:
        await asyncio.gather(*(gw.stop() for gw in nodes))
        receiver.stop()


@pytest.fixture
def src(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared drop directory; the nodes find the test database's DSN by env reference."""
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    (tmp_path / "drop").mkdir()
    return tmp_path / "drop"


def _folder(src: Path) -> dict[str, Any]:
    return {"adapter": "folder", "settings": {"path": str(src), "poll_interval": 0.05}}


async def test_two_nodes_on_one_folder_take_each_file_once(tmp_path: Path, src: Path) -> None:
    await _two_nodes_take_each_file_once(tmp_path, src, _folder(src))


@pytest.mark.sshd
async def test_two_nodes_on_one_sftp_directory_take_each_file_once(
    tmp_path: Path, src: Path, sshd: SshServer
) -> None:
    await _two_nodes_take_each_file_once(
        tmp_path, src, {"adapter": "sftp", "settings": sshd.settings(src, poll_interval=0.05)}
    )


async def test_a_node_without_the_lock_stands_by(tmp_path: Path, src: Path, pg_dsn: str) -> None:
    """While another node holds the drop's lock, this node takes nothing and says why in its health."""
    receiver = Receiver()
    receiver.start()
    other = PostgresStore(pg_dsn, "node-other")
    gw = _node("node-a", tmp_path, _folder(src), receiver)
    await gw.start()
    try:
        # the node polls the empty folder under the same lock: the other node takes it between two polls
        await wait_for(lambda: other.try_lock(LOCK), 10, "the other node holds the drop's lock")
        drop(src, "R1", "C2026-0001")
        adapter = gw.inbound["police-in"]
        await wait_for(lambda: "another node" in str(adapter.health().get("poller")), 5, "standing by")
        await asyncio.sleep(0.5)
        assert visible(src) == ["R1.scan.pdf", "R1.xml"] and await gw.store.list_deliveries() == []
        await other.unlock(LOCK)
        await wait_for(lambda: visible(src) == [], 10, "taken once the lock is free")
        assert adapter.health()["poller"] == "this node"
    finally:
        await other.close()
        await gw.stop()
        receiver.stop()


_HOLDER = """
import asyncio, sys
from gateway.store.postgres import PostgresStore

async def main() -> None:
    store = PostgresStore(sys.argv[1], "doomed")
    assert await store.try_lock(sys.argv[2])
    print("held", flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_lock_of_a_killed_node_is_freed(pg_dsn: str) -> None:
    """A node killed (SIGKILL) while holding a drop's lock frees it: its database session ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, pg_dsn, LOCK],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    store = PostgresStore(pg_dsn, "survivor")
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 20)
        assert line.strip() == b"held"
        assert not await store.try_lock(LOCK)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        await wait_for(lambda: store.try_lock(LOCK), 10, "lock freed after the holder was killed")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        await store.close()

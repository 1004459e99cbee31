"""How fast retention drops finished payloads, and how much space comes back, on SQLite.

Records N messages (5 KB raw + 5 KB standard form + one 5 KB body each, as intake stores them),
delivers them, then runs retention as the node does and prints messages/s, the payload bytes
dropped and the database file before and after (new files give freed pages back by themselves).

    .venv/bin/python bench/retention.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from gateway.audit.chain import AuditEvent
from gateway.config import RetentionSettings
from gateway.files import FileStore
from gateway.model import DeliveryState, MessageStatus, new_id, sha256_hex
from gateway.retention import run_retention
from gateway.store.base import Finish, NewDelivery, NewMessage
from gateway.store.sqlite import SQLiteStore


def file_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gateway.db"
        store = SQLiteStore(path, durability="normal")
        await store.open()
        payload = os.urandom(2560).hex().encode()  # 5 KB
        t0 = time.perf_counter()
        pending = []
        for i in range(n):
            raw, canonical, body = (payload + f"{kind}{i}".encode() for kind in ("r", "c", "b"))
            h, c, b = sha256_hex(raw), sha256_hex(canonical), sha256_hex(body)
            m = NewMessage(new_id(), "POLICE", "police-in", None, h, c, f"C-{i % 500}", "trial", "indictment",
                           MessageStatus.ACCEPTED, (), time.time())
            pending.append(store.record_message(m, raw, {c: canonical, b: body}, [NewDelivery("PROC", b)],
                                                [AuditEvent("received", "POLICE", m.message_id, m.case_number, h)]))
            if len(pending) == 500:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        while leases := await store.lease("PROC", 500, 60):
            await asyncio.gather(*(store.finish(x, Finish(DeliveryState.DELIVERED, "ok")) for x in leases))
        print(f"{n:,} messages recorded and delivered in {time.perf_counter() - t0:.1f} s")
        before = file_size(path)
        report = await run_retention(store, FileStore(Path(tmp) / "files"), RetentionSettings(payload_days=1),
                                     now=time.time() + 2 * 86400)
        await store.close()
        after = file_size(path)
        print(f"retention: {report.summary()}")
        print(f"  {report.messages / report.seconds:,.0f} messages/s; database file {before / 1e6:,.1f} MB -> "
              f"{after / 1e6:,.1f} MB (rows, history and the exchange log stay)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    asyncio.run(main(ap.parse_args().messages))

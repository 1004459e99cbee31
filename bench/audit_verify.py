"""How fast the exchange log is re-checked and a case exported, and how much memory that takes.

    python bench/audit_verify.py [ENTRIES]    (default 200000)

Writes a log of ENTRIES entries (20 cases, a signed checkpoint every 500) into a temporary
SQLite file, then prints entries per second and peak Python memory (tracemalloc) for
`verify_store` and for `export_case`. Memory should not grow with ENTRIES.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.chain import AuditEvent
from gateway.audit.export import export_case
from gateway.audit.signing import Signer
from gateway.audit.verify import verify_store
from gateway.store.sqlite import SQLiteStore, iso_now

EVERY = 500


async def build(store: SQLiteStore, signer: Signer, n: int) -> None:
    done = 0
    while done < n:
        batch = min(EVERY, n - done)
        await store.append_audit([
            AuditEvent("delivered", "node-1", f"M{done + i}", f"C2026-{(done + i) % 20:04d}", "ab" * 32,
                       {"destination": "PROC", "attempt": 1, "detail": "HTTP 200"})
            for i in range(batch)])
        done += batch
        seq, head = await store.audit_head()
        at = iso_now()
        await store.add_checkpoint(seq, head, at, signer.sign(seq, head, at), signer.key_id)


async def peak_memory(run: Coroutine[Any, Any, object]) -> float:
    """Peak Python allocations in MB during a second run (tracemalloc slows it, so it is not timed)."""
    tracemalloc.start()
    try:
        await run
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


async def main(n: int) -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db", durability="normal")
        await store.open()
        try:
            t = time.perf_counter()
            await build(store, signer, n)
            print(f"wrote {n} entries with {n // EVERY} checkpoints in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            verdict = await verify_store(store, signer.public)
            dt = time.perf_counter() - t
            assert verdict.ok, verdict.summary()
            peak = await peak_memory(verify_store(store, signer.public))
            print(f"verify: {n} entries in {dt:.2f} s = {n / dt:,.0f} entries/s, peak memory {peak:.1f} MB")
            t = time.perf_counter()
            out = await export_case(store, "C2026-0007", Path(tmp) / "out", signer)
            dt = time.perf_counter() - t
            peak = await peak_memory(export_case(store, "C2026-0007", Path(tmp) / "again", signer))
            print(f"export: {out.case_entries} case entries, {out.entries} window entries, "
                  f"{len(out.windows)} windows in {dt:.2f} s ({out.entries / dt:,.0f} entries/s), "
                  f"peak memory {peak:.1f} MB, zip {out.archive.stat().st_size / 1e6:.1f} MB")
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))

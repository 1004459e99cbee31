"""Incremental verification: only what the log gained since the last run, from a signed position.

The position is kept in the auditor's own file; a run from it must re-find the same hash there and
a checkpoint of the pinned key proving it, and must still catch damage after it. --full reads all.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.chain import AuditEvent
from gateway.audit.incremental import read_mark, verify_incremental
from gateway.audit.signing import Sealer, Signer
from gateway.store.base import Store
from gateway.store.shared import iso_now
from gateway.store.sqlite import SQLiteStore


async def grow(store: Store, n: int) -> None:
    for i in range(n):
        await store.append_audit([AuditEvent("delivered", "node-1", f"M{i}", f"C-{i % 7}", "ab" * 32, {"i": i})])
    await store.seal_log([])


async def run(store: Store, signer: Signer, state: Path, full: bool = False) -> tuple[bool, int, int | None, str]:
    v, mark = await verify_incremental(store, signer.public, state, pin=signer.key_id, log_id="log-1", full=full)
    return v.ok, v.entries, mark.seq if mark else None, v.summary()


async def test_second_run_reads_only_the_new_entries_and_catches_what_changed(tmp_path: Path) -> None:
    db, state = tmp_path / "gw.db", tmp_path / "auditor" / "verified.json"
    signer = Signer(Ed25519PrivateKey.generate())
    store = SQLiteStore(db, node="node-1", durability="normal")
    store.sealer = Sealer(signer, 20, "node-1", iso_now)
    await store.open()
    try:
        await grow(store, 100)
        ok, read, start, _ = await run(store, signer, state)
        assert ok and start is None and read > 100  # the first run is a full one
        mark = read_mark(state, signer.key_id, "log-1")
        assert mark is not None and mark.seq >= 100
        await grow(store, 30)
        ok, read, start, text = await run(store, signer, state)
        assert ok and start == mark.seq and read < 40, text  # the 30 new ones and their checkpoints
        ok, read, start, _ = await run(store, signer, state, full=True)
        assert ok and start is None and read == (await store.audit_head())[0]
        # a position moved to an entry no checkpoint signed: refused
        head = await store.audit_entries(after_seq=mark.seq, limit=1)
        state.write_text(json.dumps({f"{signer.key_id}@log-1": {"seq": head[0].seq,
                                                                "entry_hash": head[0].entry_hash}}))
        ok, _, _, text = await run(store, signer, state)
        assert not ok and "proves entry" in text
        # a remembered hash that no longer matches: refused
        state.write_text(json.dumps({f"{signer.key_id}@log-1": {"seq": mark.seq, "entry_hash": "00" * 32}}))
        ok, _, _, text = await run(store, signer, state)
        assert not ok and "no longer has the hash" in text
        # an entry after the position altered: caught, as the full verification would
        state.write_text(json.dumps({f"{signer.key_id}@log-1": {"seq": mark.seq, "entry_hash": mark.entry_hash}}))
        with sqlite3.connect(db) as c:
            c.execute("DROP TRIGGER IF EXISTS audit_no_update")
            c.execute("UPDATE audit_log SET case_number = 'C-forged' WHERE seq = ?", (mark.seq + 5,))
        ok, _, start, text = await run(store, signer, state)
        assert not ok and start == mark.seq and "TAMPERED" in text
    finally:
        await store.close()

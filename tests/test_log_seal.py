"""The exchange log against an outside auditor's attacks on a copy of the store (triggers dropped).

Each attack is made as someone with write access to the database (and, where said, to the node's
data folder and signing key) would make it, keeping every hash correct; each test names the check
that must catch it: chain, signature, key pin, interval, manifest or witness.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.memory import MemoryOutbound
from gateway.audit.export import export_case
from gateway.audit.signing import Sealer, Signer
from gateway.audit.verify import Policy, Verdict, verify_store
from gateway.audit.verify_bundle import (
    CHECKPOINT,
    canonical_detail,
    manifest_message,
    verify_bundle,
)
from gateway.audit.witness import WitnessFile
from gateway.config import parse_config
from gateway.runtime import Gateway
from gateway.store.shared import iso_now
from gateway.store.sqlite import SQLiteStore

from .support.config import base_config
from .support.forgery import COLUMNS, log_rows, rechain, replace_log
from .support.records import record

EVERY = 10
CASES = ("C2026-0101", "C2026-0102", "C2026-0103")
POLICY = Policy(every=EVERY, seconds=60.0)  # a stopped node's copy: the log must end with its final checkpoint


@dataclass(frozen=True)
class Log:
    data: Path
    signer: Signer
    witness: Path  # the append-only witness file, outside the data folder


async def _write(data: Path, witness: Path) -> None:
    cfg = parse_config(base_config(data, checkpoint_every=EVERY, witness={"file": str(witness)}))
    gw = Gateway(cfg, outbound={c: MemoryOutbound() for c in ("PROC", "COURT", "POLICE")})  # type: ignore[arg-type]
    async with gw.running():
        police = gw.inbound["police-in"]
        for i in range(20):
            r = await police.submit(record(case=CASES[i % 3], extra=f"note {i}"))  # type: ignore[attr-defined]
            for _ in range(500):
                if [d.state for d in await gw.store.get_deliveries(r.message_id)] == ["delivered"]:
                    break
                await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    root = tmp_path_factory.mktemp("seal")
    asyncio.run(_write(root / "data", root / "witness" / "checkpoints.jsonl"))
    return Log(root / "data", Signer.load_or_create(root / "data" / "signing-key.pem"),
               root / "witness" / "checkpoints.jsonl")


@pytest.fixture
def db(log: Log, tmp_path: Path) -> Path:
    """The auditor's copy of the data folder."""
    shutil.copytree(log.data, tmp_path / "data")
    return tmp_path / "data" / "gateway.db"


def verify(db: Path, pin: str, policy: Policy = POLICY, public: Any = None) -> Verdict:
    async def run() -> Verdict:
        store = SQLiteStore(db)
        await store.open()
        try:
            return await verify_store(store, public, pin=None if public else pin, policy=policy, page=7)
        finally:
            await store.close()

    return asyncio.run(run())


def caught(v: Verdict, check: str, text: str = "") -> str:
    assert v.problem is not None, f"not detected: {v.summary()}"
    assert v.problem.check == check, f"caught by {v.problem.check}, not {check}: {v.problem.message}"
    assert text in v.problem.message, v.problem.message
    return v.problem.message


def exported(db: Path, case: str, out: Path, signer: Signer) -> Path:
    """One case's bundle, exported from the auditor's copy."""
    async def run() -> Path:
        store = SQLiteStore(db)
        await store.open()
        try:
            return (await export_case(store, case, out, signer)).directory
        finally:
            await store.close()

    return asyncio.run(run())


def witnessed(log: Log) -> Policy:
    held = tuple(WitnessFile(log.witness).read(log.signer.key_id))
    assert held, "the witness holds no checkpoint"
    return Policy(every=EVERY, seconds=60.0, witnessed=held)


# -- the intact log ------------------------------------------------------------------------------------
def test_intact_log_is_closed_signed_often_and_pinned(log: Log, db: Path) -> None:
    v = verify(db, log.signer.key_id)
    assert v.ok, v.summary()
    es = log_rows(db)
    cps = [e["seq"] for e in es if e["action"] == CHECKPOINT]
    gaps = [b - a - 1 for a, b in zip([0, *cps], cps, strict=False)]
    assert max(gaps) <= EVERY and len(cps) >= len(es) // (EVERY + 1)
    assert [e["action"] for e in es[-2:]] == ["node-stopped", CHECKPOINT]
    assert verify(db, log.signer.key_id, witnessed(log)).ok
    held = WitnessFile(log.witness).read(log.signer.key_id)
    assert [w["seq"] + 1 for w in held] == cps, "every checkpoint entry reached the witness, in order"


# -- the four gaps -------------------------------------------------------------------------------
def test_all_checkpoints_deleted_and_log_rewritten_from_entry_50(log: Log, db: Path) -> None:
    es = [e for e in log_rows(db) if e["action"] != CHECKPOINT]
    es[49] = {**es[49], "actor": "someone-else"}
    replace_log(db, rechain(es))
    caught(verify(db, log.signer.key_id), "interval", f"more than {EVERY} entries in a row are unsigned")


def test_last_entries_deleted_with_their_checkpoints(log: Log, db: Path) -> None:
    replace_log(db, log_rows(db)[:-15])
    caught(verify(db, log.signer.key_id), "interval", "without a node's final checkpoint")


def test_new_key_in_the_data_dir_and_every_checkpoint_resigned(log: Log, db: Path) -> None:
    key = db.parent / "signing-key.pem"
    key.unlink()
    other = Signer.load_or_create(key)  # a fresh key where the node keeps its own
    es = log_rows(db)
    es[30] = {**es[30], "actor": "someone-else"}
    replace_log(db, rechain(es, other))
    assert verify(db, "", public=other.public).ok, "with the key from the data folder it would pass"
    msg = caught(verify(db, log.signer.key_id), "key pin", "is signed by key")
    assert other.key_id in msg and log.signer.key_id in msg


def test_bundle_window_dropped_with_its_checkpoint_and_manifest_line(log: Log, db: Path, tmp_path: Path) -> None:
    bundle = exported(db, CASES[1], tmp_path / "out", log.signer)
    m = json.loads((bundle / "manifest.json").read_text())
    assert len(m["windows"]) >= 3
    assert verify_bundle(bundle, log.signer.public).ok
    a, b = m["windows"][1]
    lines = [x for x in (bundle / "entries.jsonl").read_text().splitlines() if not a <= json.loads(x)["seq"] <= b]
    (bundle / "entries.jsonl").write_text("\n".join(lines) + "\n")
    cps = [c for c in json.loads((bundle / "checkpoints.json").read_text()) if c["seq"] != b]
    (bundle / "checkpoints.json").write_text(json.dumps(cps))
    m["windows"].remove([a, b])
    (bundle / "manifest.json").write_text(json.dumps(m))
    report = verify_bundle(bundle, log.signer.public)
    assert report.verdict.problem is not None and report.verdict.problem.check == "manifest", report.lines()
    assert "signature does not verify" in report.verdict.problem.message


def test_bundle_counts_are_checked_against_the_signed_manifest(log: Log, db: Path, tmp_path: Path) -> None:
    """Dropping a window and signing nothing anew fails on the signature; a manifest that states a count
    other than what the bundle holds fails on the count, even when signed."""
    bundle = exported(db, CASES[2], tmp_path / "out", log.signer)
    m = json.loads((bundle / "manifest.json").read_text())
    m["case_entries"] += 1
    m["signature"] = base64.b64encode(log.signer.private.sign(manifest_message(m))).decode()
    (bundle / "manifest.json").write_text(json.dumps(m))
    report = verify_bundle(bundle, log.signer.public)
    assert report.verdict.problem is not None and report.verdict.problem.check == "manifest"
    assert f"case_entries: {m['case_entries']}, the bundle holds {m['case_entries'] - 1}" in report.lines()[0]


# -- the four classic kinds, and more ----------------------------------------------------------------------
def _sql(db: Path, *statements: str) -> None:
    c = sqlite3.connect(db)
    c.execute("DROP TRIGGER IF EXISTS audit_no_update")
    c.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for s in statements:
        c.execute(s)
    c.commit()
    c.close()


@pytest.mark.parametrize(("attack", "text"), [
    (lambda es: es[:20] + [{**es[20], "actor": "x"}] + es[21:], "entry 21 was altered"),
    (lambda es: es[:20] + es[21:], "entry 21 is missing"),
    (lambda es: es[:20] + [{**es[20], "seq": 21, "actor": "x"}] + [{**e, "seq": e["seq"] + 1} for e in es[20:]],
     "entry 21"),
    (lambda es: es[:20] + [{**es[21], "seq": 21}, {**es[20], "seq": 22}] + es[22:], "out of order"),
], ids=["alter", "delete", "insert", "reorder"])
def test_classic_kinds_are_caught_by_the_chain(log: Log, db: Path, attack: Callable[[list[dict[str, Any]]],
                                                                                     list[dict[str, Any]]],
                                                text: str) -> None:
    es = attack(log_rows(db))
    c = sqlite3.connect(db)
    c.execute("DROP TRIGGER IF EXISTS audit_no_update")
    c.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    c.execute("DELETE FROM audit_log")
    c.executemany(f"INSERT INTO audit_log VALUES ({','.join('?' * 11)})", [tuple(e[k] for k in COLUMNS) for e in es])
    c.commit()
    c.close()
    caught(verify(db, log.signer.key_id), "chain", text)


def test_checkpoint_signature_altered_and_hashes_recomputed(log: Log, db: Path) -> None:
    es = log_rows(db)
    i = next(i for i, e in enumerate(es) if e["action"] == CHECKPOINT and i > 30)
    d = json.loads(es[i]["detail"])
    d["signature"] = base64.b64encode(Ed25519PrivateKey.generate().sign(b"other")).decode()
    es[i] = {**es[i], "detail": canonical_detail(d)}
    replace_log(db, rechain(es))
    caught(verify(db, log.signer.key_id), "signature", "forged or altered")


def test_checkpoint_entry_deleted_breaks_the_chain(log: Log, db: Path) -> None:
    seq = next(e["seq"] for e in log_rows(db) if e["action"] == CHECKPOINT and e["seq"] > 20)
    _sql(db, f"DELETE FROM audit_log WHERE seq={seq}")
    caught(verify(db, log.signer.key_id), "chain", f"entry {seq} is missing")


def test_tail_after_the_last_remaining_checkpoint_truncated(log: Log, db: Path) -> None:
    es = log_rows(db)
    last = [i for i, e in enumerate(es[:-2]) if e["action"] == CHECKPOINT][-2]
    assert len(es) > last + 6
    replace_log(db, es[:last + 4])  # the final checkpoint and what came before it gone, a short tail left
    caught(verify(db, log.signer.key_id), "interval", "without a node's final checkpoint")


def test_stop_without_its_final_checkpoint(log: Log, db: Path) -> None:
    replace_log(db, log_rows(db)[:-1])
    caught(verify(db, log.signer.key_id), "interval", "records a node's stop without its final checkpoint")


def test_rewritten_from_entry_k_with_the_nodes_own_key_only_the_witness_sees(log: Log, db: Path) -> None:
    es = log_rows(db)
    k = 25
    es[k - 1] = {**es[k - 1], "actor": "someone-else"}
    replace_log(db, rechain(es, log.signer))
    assert verify(db, log.signer.key_id).ok, "chain, signatures, key pin and intervals all pass"
    caught(verify(db, log.signer.key_id, witnessed(log)), "witness", "differs from the checkpoint the witness holds")


def test_tail_cut_with_a_clean_stop_forged_only_the_witness_sees(log: Log, db: Path) -> None:
    """Cut back to an earlier point and close the log again with the node's own key."""
    base = [e for e in log_rows(db)[:40] if e["action"] != CHECKPOINT]

    def cp(after: dict[str, Any]) -> dict[str, Any]:
        return {**after, "action": CHECKPOINT, "detail": json.dumps({"signed_at": after["time"]})}

    forged = []
    for n, e in enumerate(base, 1):  # a checkpoint every EVERY entries, as the writer puts them
        forged.append(e)
        if n % EVERY == 0:
            forged.append(cp(e))
    stop = {**base[-1], "action": "node-stopped", "detail": "{}"}
    replace_log(db, rechain([*forged, stop, cp(stop)], log.signer))
    assert verify(db, log.signer.key_id).ok
    caught(verify(db, log.signer.key_id, witnessed(log)), "witness")


# -- the intervals, in time, and the live tail ----------------------------------------------------------------
def test_unsigned_stretch_longer_than_the_interval(tmp_path: Path) -> None:
    signer = Signer.load_or_create(tmp_path / "k.pem")

    async def write() -> None:
        store = SQLiteStore(tmp_path / "g.db")
        store.sealer = Sealer(signer, 1000, "n", iso_now)
        await store.open()
        try:
            for i in range(4):
                await store.append_audit([_event(i)])
                await asyncio.sleep(0.3)
            from gateway.audit.chain import AuditEvent
            await store.seal_log([AuditEvent("node-stopped", "n")])
        finally:
            await store.close()

    asyncio.run(write())
    db = tmp_path / "g.db"
    assert verify(db, signer.key_id, Policy(every=1000, seconds=5, grace=0)).ok
    caught(verify(db, signer.key_id, Policy(every=1000, seconds=0.5, grace=0)), "interval", "seconds unsigned")
    caught(verify(db, signer.key_id, Policy(every=3)), "interval", "more than 3 entries")


def _event(i: int) -> Any:
    from gateway.audit.chain import AuditEvent
    return AuditEvent("viewed", "auditor", detail={"n": i})


def test_live_tail_allowed_while_young_and_not_after(tmp_path: Path) -> None:
    signer = Signer.load_or_create(tmp_path / "k.pem")

    async def write() -> None:
        store = SQLiteStore(tmp_path / "g.db")
        store.sealer = Sealer(signer, 5, "n", iso_now)
        await store.open()
        try:
            await store.append_audit([_event(i) for i in range(13)])
        finally:
            await store.close()

    asyncio.run(write())
    db = tmp_path / "g.db"
    caught(verify(db, signer.key_id, Policy(every=5, seconds=60)), "interval", "without a node's final checkpoint")
    assert verify(db, signer.key_id, Policy(every=5, seconds=60, live=iso_now())).ok
    later = iso_now(time.time() + 3600)
    caught(verify(db, signer.key_id, Policy(every=5, seconds=60, live=later)), "interval", "unsigned for")


def test_node_signs_after_checkpoint_seconds_and_at_start_over_an_unclean_stop(tmp_path: Path) -> None:
    async def run() -> list[str]:
        cfg = parse_config(base_config(tmp_path / "data", checkpoint_every=1000, checkpoint_seconds=0.5))
        gw = Gateway(cfg, outbound={c: MemoryOutbound() for c in ("PROC", "COURT", "POLICE")})  # type: ignore[arg-type]
        await gw.start()
        await gw.store.append_audit([_event(1)])
        await asyncio.sleep(2.5)  # the time rule signs it; the count rule would wait for 1000
        head = (await gw.store.audit_entries(after_seq=0, limit=100))[-1].action
        await gw.store.append_audit([_event(2)])
        gw.started = False  # as if killed: no stop, no final checkpoint
        for t in gw._tasks:
            t.cancel()
        await gw.store.close()
        gw2 = Gateway(cfg, outbound={c: MemoryOutbound() for c in ("PROC", "COURT", "POLICE")})  # type: ignore[arg-type]
        await gw2.start()
        await gw2.stop()
        return [head, *(e.action for e in await _all(tmp_path / "data" / "gateway.db"))]

    acts = asyncio.run(run())
    assert acts[0] == CHECKPOINT
    i = acts.index("viewed", acts.index("viewed") + 1)
    assert acts[i + 1:i + 3] == [CHECKPOINT, "node-started"], "the unclean stop's tail is signed first"
    signer = Signer.load_or_create(tmp_path / "data" / "signing-key.pem")
    assert verify(tmp_path / "data" / "gateway.db", signer.key_id, Policy(every=1000, seconds=0.5)).ok


async def _all(db: Path) -> list[Any]:
    store = SQLiteStore(db)
    await store.open()
    try:
        return await store.audit_entries(after_seq=0, limit=10_000)
    finally:
        await store.close()

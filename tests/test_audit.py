"""The exchange log proves itself: a real log, tampered in the SQLite file as an attacker would.

The log is written once per module by a real Gateway (memory adapters, three cases, signed
checkpoints, a tail not yet signed); each test works on its own copy of the data directory,
drops the append-only triggers and changes the file directly.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.memory import MemoryOutbound
from gateway.audit.chain import AuditEvent, seal
from gateway.audit.cli import audit_app
from gateway.audit.export import VERIFIER_FILES, export_case
from gateway.audit.signing import Signer, public_pem
from gateway.audit.verify import Verdict, verify_file, verify_store
from gateway.audit.verify_bundle import checkpoint_message, entry_hash_of, manifest_message, signature_ok
from gateway.config import parse_config
from gateway.runtime import Gateway
from gateway.store.sqlite import SQLiteStore

from .support.config import base_config
from .support.records import record

CASES = ("C2026-0001", "C2026-0002", "C2026-0003")
TEXT_FIELDS = ("time", "node", "actor", "action", "message_id", "case_number", "payload_hash", "detail",
               "prev_hash", "entry_hash")
COLUMNS = ("seq", *TEXT_FIELDS)


@dataclass(frozen=True)
class Log:
    data: Path  # data directory: gateway.db and signing-key.pem
    signer: Signer
    public: Ed25519PublicKey
    checkpoints: list[int]
    head: int


async def _write_log(data: Path) -> None:
    # without signed evidence: the tampering tests below name log entries by their place in this exact log
    cfg = parse_config(base_config(data, evidence={"enabled": False}))
    outs = {code: MemoryOutbound() for code in ("PROC", "COURT", "POLICE")}
    gw = Gateway(cfg, outbound=outs)  # type: ignore[arg-type]
    await gw.start()
    try:
        police = gw.inbound["police-in"]
        sent = []
        for i in range(9):
            sent.append(await police.submit(record(case=CASES[i % 3], extra=f"note {i}")))  # type: ignore[attr-defined]
            if i % 3 == 2:  # every third record: let deliveries be logged, then sign
                for _ in range(500):
                    states = [d.state for r in sent for d in await gw.store.get_deliveries(r.message_id)]
                    if states == ["delivered"] * len(sent):
                        break
                    await asyncio.sleep(0.01)
                await gw.checkpoint()
    finally:
        await gw.stop()  # logs node-stopped and signs a last checkpoint
    store = SQLiteStore(data / "gateway.db")
    await store.open()
    try:  # a tail no checkpoint covers yet
        await store.append_audit([AuditEvent("viewed", "auditor-1", case_number=CASES[0], detail={"n": n})
                                  for n in range(3)])
    finally:
        await store.close()


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    data = tmp_path_factory.mktemp("log") / "data"
    asyncio.run(_write_log(data))
    with sqlite3.connect(data / "gateway.db") as c:
        cps = [r[0] for r in c.execute("SELECT seq FROM checkpoints ORDER BY seq")]
        head = c.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
    signer = Signer.load_or_create(data / "signing-key.pem")
    return Log(data, signer, signer.public, cps, head)


@pytest.fixture
def db(log: Log, tmp_path: Path) -> Path:
    shutil.copytree(log.data, tmp_path / "data")
    return tmp_path / "data" / "gateway.db"


def verify(path: Path, public: Ed25519PublicKey) -> Verdict:
    async def run() -> Verdict:
        store = SQLiteStore(path)
        await store.open()
        try:
            return await verify_store(store, public, page=7)  # small pages: problems across page borders
        finally:
            await store.close()

    return asyncio.run(run())


def attack(path: Path, *statements: tuple[str, tuple[object, ...]] | str) -> None:
    """Change the file as someone with write access would: triggers dropped first."""
    c = sqlite3.connect(path)
    c.execute("DROP TRIGGER IF EXISTS audit_no_update")
    c.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for s in statements:
        if isinstance(s, str):
            c.execute(s)
        else:
            c.execute(*s)
    c.commit()
    c.close()


def row(path: Path, seq: int) -> dict[str, object]:
    with sqlite3.connect(path) as c:
        r = c.execute("SELECT * FROM audit_log WHERE seq=?", (seq,)).fetchone()
    return dict(zip(COLUMNS, r, strict=True))


def rehash(e: dict[str, object]) -> str:
    return entry_hash_of(e)


def expect(v: Verdict, seq: int, kind: str, message: str) -> None:
    assert v.problem is not None, f"not detected; verdict: {v.summary()}"
    assert (v.problem.seq, v.problem.kind) == (seq, kind), v.problem.message
    assert v.problem.message.startswith(message), v.problem.message


# -- the hash rule, pinned: stores and bundles written earlier must keep verifying -------------------------
PINNED_TIME, PINNED_SIGNED_AT = "2026-01-02T03:04:05.678901+00:00", "2026-01-02T03:04:06.000000+00:00"
PINNED_HASH = "ed92b85da072723f1f1ad2cf2232c7bc132c1219471a1560aca793b59900733d"


def test_entry_hash_and_checkpoint_message_are_pinned() -> None:
    event = AuditEvent("delivered", "POLICE", "M-1", "C2026-0001", "ab" * 32,
                       {"to": "法院", "n": 2, "a": {"z": [1, "é"], "b": None}})
    e = seal(event, seq=7, time=PINNED_TIME, node="node-1", prev_hash="cd" * 32)
    assert e.detail == '{"a":{"b":null,"z":[1,"é"]},"n":2,"to":"法院"}'
    assert e.entry_hash == PINNED_HASH
    assert entry_hash_of(e.as_dict()) == PINNED_HASH
    assert checkpoint_message(7, PINNED_HASH, PINNED_SIGNED_AT) == (
        f"case-exchange-checkpoint:7:{PINNED_HASH}:{PINNED_SIGNED_AT}".encode())
    signer = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))  # Ed25519 signs deterministically
    assert signer.key_id == "56475aa75463474c"
    signature = signer.sign(7, PINNED_HASH, PINNED_SIGNED_AT)
    assert signature == ("3NSaHCrL4teHUDFizua+bKqVW+QdnumNTJN5Q3YZz/Syh9SwD/D8VFmAFx3isBhibtzUjkAZSEaoJ4JwO6KtAw==")
    cp = {"seq": 7, "entry_hash": PINNED_HASH, "signed_at": PINNED_SIGNED_AT, "signature": signature}
    assert signature_ok(signer.public, cp)


# -- the untouched log ------------------------------------------------------------------------
def test_untouched_log_verifies_and_names_its_unsigned_tail(log: Log, db: Path) -> None:
    assert len(log.checkpoints) >= 3 and log.head > log.checkpoints[-1]
    v = verify(db, log.public)
    assert v.ok, v.summary()
    assert (v.entries, v.last_seq, v.checkpoints) == (log.head, log.head, len(log.checkpoints))
    assert v.uncovered == (log.checkpoints[-1] + 2, log.head)  # after the checkpoint entry
    assert "not yet covered by a signed checkpoint" in v.summary()


# -- altered entries --------------------------------------------------------------------------
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_any_field_changed_is_named(log: Log, db: Path, field: str) -> None:
    value = str(row(db, 20)[field])
    changed = value[:-1] + ("0" if value[-1:] != "0" else "1")
    attack(db, (f"UPDATE audit_log SET {field}=? WHERE seq=20", (changed,)))
    expect(verify(db, log.public), 20, "altered", "entry 20 was altered: its content no longer matches its")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_character_of_any_entry(log: Log, data: st.DataObject) -> None:
    seq = data.draw(st.integers(1, log.head), label="seq")
    field = data.draw(st.sampled_from(TEXT_FIELDS), label="field")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gateway.db"
        shutil.copyfile(log.data / "gateway.db", path)
        value = str(row(path, seq)[field])
        at = data.draw(st.integers(0, max(len(value) - 1, 0)), label="position")
        new = data.draw(st.characters(exclude_categories=("Cs",)).filter(lambda ch: value[at:at + 1] != ch))
        changed = value[:at] + new + value[at + 1:]
        attack(path, (f"UPDATE audit_log SET {field}=? WHERE seq=?", (changed, seq)))
        expect(verify(path, log.public), seq, "altered", f"entry {seq} was altered")


def test_altered_entry_with_recomputed_hash_is_named_by_its_successor(log: Log, db: Path) -> None:
    e = row(db, 20)
    e["actor"] = "someone-else"
    attack(db, ("UPDATE audit_log SET actor=?, entry_hash=? WHERE seq=20", (e["actor"], rehash(e))))
    expect(verify(db, log.public), 20, "altered", "entry 20 was altered and its hash recomputed")


def test_sequence_number_changed(log: Log, db: Path) -> None:
    attack(db, "UPDATE audit_log SET seq=1000000 WHERE seq=20")
    v = verify(db, log.public)
    expect(v, 20, "moved", "entry 20 was altered: its sequence number was changed to 1000000")


# -- removed, inserted, reordered --------------------------------------------------------------
def test_deleted_entry_is_missing(log: Log, db: Path) -> None:
    attack(db, "DELETE FROM audit_log WHERE seq=20")
    expect(verify(db, log.public), 20, "missing", "entry 20 is missing")


def test_deleted_entries_renumbered_to_close_the_gap(log: Log, db: Path) -> None:
    attack(db, "DELETE FROM audit_log WHERE seq=20", "UPDATE audit_log SET seq=seq-1 WHERE seq>20")
    expect(verify(db, log.public), 20, "missing", "entry 20 is missing (later ones renumbered")


def _shift_up_from(seq: int) -> tuple[str, str]:
    return (f"UPDATE audit_log SET seq=-seq WHERE seq>={seq}", "UPDATE audit_log SET seq=1-seq WHERE seq<0")


@pytest.mark.parametrize("linked", [True, False])
def test_inserted_entry(log: Log, db: Path, linked: bool) -> None:
    prev = row(db, 19)
    forged = {**prev, "seq": 20, "actor": "POLICE", "action": "received", "detail": "{}",
              "prev_hash": prev["entry_hash"] if linked else "ab" * 32}
    forged["entry_hash"] = rehash(forged)
    attack(db, *_shift_up_from(20),
           ("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?,?)", tuple(forged[k] for k in COLUMNS)))
    expect(verify(db, log.public), 20, "inserted", "entry 20 was inserted")


def test_two_adjacent_entries_swapped(log: Log, db: Path) -> None:
    attack(db, "UPDATE audit_log SET seq=-1 WHERE seq=40", "UPDATE audit_log SET seq=40 WHERE seq=41",
           "UPDATE audit_log SET seq=41 WHERE seq=-1")
    expect(verify(db, log.public), 40, "out-of-order", "entries 40 and 41 are out of order")


def test_two_distant_entries_swapped(log: Log, db: Path) -> None:
    attack(db, "UPDATE audit_log SET seq=-1 WHERE seq=12", "UPDATE audit_log SET seq=12 WHERE seq=31",
           "UPDATE audit_log SET seq=31 WHERE seq=-1")
    expect(verify(db, log.public), 12, "out-of-order", "entries 12 and 31 are out of order")


# -- the tail and the checkpoints ------------------------------------------------------------------
def test_truncation_behind_a_checkpoint(log: Log, db: Path) -> None:
    cut = log.checkpoints[-1] - 2
    attack(db, f"DELETE FROM audit_log WHERE seq>{cut}")
    expect(verify(db, log.public), cut + 1, "truncated", f"the log was cut short: it ends at entry {cut}")


def test_truncating_the_unsigned_tail_cannot_be_seen(log: Log, db: Path) -> None:
    """The documented limit: entries after the newest checkpoint are unprotected."""
    attack(db, f"DELETE FROM audit_log WHERE seq>{log.head - 1}")
    v = verify(db, log.public)
    assert v.ok and v.uncovered == (log.checkpoints[-1] + 2, log.head - 1)


def test_forged_checkpoint_signature(log: Log, db: Path) -> None:
    cp = log.checkpoints[1]
    other = Signer(Ed25519PrivateKey.generate())
    with sqlite3.connect(db) as c:
        h, at = c.execute("SELECT entry_hash, signed_at FROM checkpoints WHERE seq=?", (cp,)).fetchone()
    attack(db, ("UPDATE checkpoints SET signature=? WHERE seq=?", (other.sign(cp, h, at), cp)))
    expect(verify(db, log.public), cp, "forged", f"the checkpoint of entry {cp}")


def test_whole_chain_rewritten_after_signing(log: Log, db: Path) -> None:
    """Content changed and every later hash recomputed: only the signature shows it."""
    stmts: list[tuple[str, tuple[object, ...]] | str] = []
    prev = str(row(db, 19)["entry_hash"])
    for seq in range(20, log.head + 1):
        e = row(db, seq)
        e["prev_hash"] = prev
        if seq == 20:
            e["payload_hash"] = "0" * 64
        e["entry_hash"] = prev = rehash(e)
        stmts.append(("UPDATE audit_log SET payload_hash=?, prev_hash=?, entry_hash=? WHERE seq=?",
                      (e["payload_hash"], e["prev_hash"], e["entry_hash"], seq)))
    attack(db, *stmts)
    first = min(s for s in log.checkpoints if s >= 20)
    expect(verify(db, log.public), first, "rewritten", f"entries up to {first} were rewritten after")


def test_back_dated_entry_appended(log: Log, db: Path) -> None:
    last = row(db, log.head)
    forged = {**last, "seq": log.head + 1, "time": "2020-01-01T00:00:00.000000Z",
              "prev_hash": last["entry_hash"]}
    forged["entry_hash"] = rehash(forged)
    attack(db, ("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?,?)", tuple(forged[k] for k in COLUMNS)))
    expect(verify(db, log.public), log.head + 1, "back-dated", f"entry {log.head + 1} is back-dated")


# -- a file of entries ------------------------------------------------------------------------------
def _dump(path: Path, rows: list[dict[str, object]]) -> Path:
    out = path.with_suffix(".jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


def test_file_of_entries(log: Log, db: Path) -> None:
    rows = [row(db, s) for s in range(1, log.head + 1)]
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        cps = [dict(r) for r in c.execute("SELECT * FROM checkpoints")]
    assert verify_file(_dump(db, rows), cps, log.public).ok
    swapped = rows[:30] + [rows[31], rows[30]] + rows[32:]
    expect(verify_file(_dump(db, swapped), cps, log.public), 31, "out-of-order", "entries 31 and 32 are")
    twice = rows[:30] + [rows[29]] + rows[30:]
    expect(verify_file(_dump(db, twice), cps, log.public), 30, "duplicate", "entry 30 appears twice")


# -- export bundles ------------------------------------------------------------------------------
def _export(db: Path, signer: Signer, out: Path, case: str = CASES[1], payloads: bool = True,
            ) -> Path:
    async def run() -> Path:
        store = SQLiteStore(db)
        await store.open()
        try:
            return (await export_case(store, case, out, signer, payloads)).directory
        finally:
            await store.close()

    return asyncio.run(run())


def run_verifier(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """In a folder holding only the bundle, as an auditor would."""
    return subprocess.run([sys.executable, "verify_bundle.py", *args], cwd=bundle, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


@pytest.fixture
def bundle(log: Log, db: Path, tmp_path: Path) -> Iterator[Path]:
    out = _export(db, log.signer, tmp_path / "out")
    auditor = tmp_path / "auditor"
    with zipfile.ZipFile(out.with_suffix(".zip")) as z:
        z.extractall(auditor)
    yield auditor / out.name


def test_bundle_verifier_needs_only_stdlib_and_cryptography() -> None:
    """A bundle's scripts import only each other, the standard library and `cryptography`."""
    roots = set()
    for script in VERIFIER_FILES:
        tree = ast.parse(script.read_text(encoding="utf-8"))
        for top in tree.body:
            if isinstance(top, ast.If) and ast.unparse(top.test) == "__package__":
                top.body = []  # the gateway's own import, never taken in a bundle
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots.add(node.module.split(".")[0])
    assert roots - set(sys.stdlib_module_names) - {s.stem for s in VERIFIER_FILES} == {"cryptography"}


def test_bundle_verifies_offline(log: Log, db: Path, bundle: Path) -> None:
    with sqlite3.connect(db) as c:
        n = c.execute("SELECT count(*) FROM audit_log WHERE case_number=?", (CASES[1],)).fetchone()[0]
    assert sorted(p.name for p in bundle.iterdir()) == [
        "README.md", "chain_rules.py", "checkpoints.json", "entries.jsonl", "manifest.json", "payloads",
        "public-key.pem", "verify_bundle.py"]
    r = run_verifier(bundle)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"INTACT: {n} entries of case {CASES[1]} are unaltered" in r.stdout
    assert "0 not included" in r.stdout and "not yet covered" not in r.stdout
    others = [json.loads(x) for x in (bundle / "entries.jsonl").read_text().splitlines()]
    assert len(others) < log.head, "only the windows, not the whole log"


def test_bundle_reports_entries_no_checkpoint_covers_yet(log: Log, db: Path, tmp_path: Path) -> None:
    out = _export(db, log.signer, tmp_path / "out", case=CASES[0], payloads=False)
    r = run_verifier(out)
    assert r.returncode == 0, r.stdout
    tail = ", ".join(str(s) for s in range(log.checkpoints[-1] + 2, log.head + 1))  # after the checkpoint entry
    assert f"not yet covered by a signed checkpoint: case entries {tail}" in r.stdout
    assert not any((out / "payloads").iterdir())


def _edit_line(path: Path, index: int, **changes: object) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    e = json.loads(lines[index])
    e.update(changes)
    lines[index] = json.dumps(e)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return int(e["seq"])


def test_bundle_entry_altered(bundle: Path) -> None:
    seq = _edit_line(bundle / "entries.jsonl", 3, actor="someone-else")
    r = run_verifier(bundle)
    assert r.returncode == 1 and f"TAMPERED (chain): entry {seq} was altered" in r.stdout, r.stdout


def test_bundle_entry_removed(bundle: Path) -> None:
    lines = (bundle / "entries.jsonl").read_text().splitlines()
    seq = json.loads(lines[3])["seq"]
    (bundle / "entries.jsonl").write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    r = run_verifier(bundle)
    assert r.returncode == 1 and f"TAMPERED (chain): entry {seq} is missing" in r.stdout, r.stdout


def test_bundle_line_that_is_no_entry(bundle: Path) -> None:
    _edit_line(bundle / "entries.jsonl", 2, time=5)
    r = run_verifier(bundle)
    assert r.returncode == 1 and "CANNOT VERIFY" in r.stdout and "entries.jsonl, line 3" in r.stdout, r.stdout


def test_bundle_payload_altered(bundle: Path) -> None:
    p = sorted((bundle / "payloads").iterdir())[0]
    p.write_bytes(p.read_bytes().replace(b"C2026", b"C2025"))
    r = run_verifier(bundle)
    assert r.returncode == 1 and f"(payloads/{p.name}) was altered" in r.stdout, r.stdout


def test_bundle_checkpoint_forged(bundle: Path) -> None:
    cps = json.loads((bundle / "checkpoints.json").read_text())
    cps[0]["signature"] = base64.b64encode(b"\0" * 64).decode()
    (bundle / "checkpoints.json").write_text(json.dumps(cps))
    r = run_verifier(bundle)
    assert r.returncode == 1 and f"the checkpoint of entry {cps[0]['seq']}" in r.stdout, r.stdout


def test_bundle_resigned_with_another_key_fails_against_the_published_key(log: Log, bundle: Path) -> None:
    """A replaced key and re-signed checkpoints pass on their own: the published key catches them."""
    other = Signer(Ed25519PrivateKey.generate())
    seq = _edit_line(bundle / "entries.jsonl", 0, actor="someone-else")
    lines = [json.loads(x) for x in (bundle / "entries.jsonl").read_text().splitlines()]
    first = next(i for i, e in enumerate(lines) if e["seq"] == seq)
    prev = None
    for e in lines[first:]:  # recompute the window from the edited entry onwards
        if prev is not None:
            e["prev_hash"] = prev
        e["entry_hash"] = prev = rehash(e)
    (bundle / "entries.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    by_seq = {e["seq"]: e["entry_hash"] for e in lines}
    cps = json.loads((bundle / "checkpoints.json").read_text())
    for cp in cps:
        cp["entry_hash"] = by_seq[cp["seq"]]
        cp["signature"] = other.sign(cp["seq"], cp["entry_hash"], cp["signed_at"])
    (bundle / "checkpoints.json").write_text(json.dumps(cps))
    (bundle / "public-key.pem").write_bytes(public_pem(other.public))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["key_id"] = other.key_id
    manifest["signature"] = base64.b64encode(other.private.sign(manifest_message(manifest))).decode()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert run_verifier(bundle).returncode == 0
    published = bundle.parent / "published.pem"
    published.write_bytes(public_pem(log.public))
    r = run_verifier(bundle, "--public-key", str(published))
    assert r.returncode == 1 and f"TAMPERED (manifest): the manifest names key {other.key_id}" in r.stdout, r.stdout


# -- the commands ------------------------------------------------------------------------------------
def _config(db: Path) -> Path:
    path = db.parent.parent / "gateway.yaml"
    path.write_text(yaml.safe_dump(base_config(db.parent)), encoding="utf-8")
    return path


def test_cli_verify_and_export(log: Log, db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    cfg = str(_config(db))
    r = runner.invoke(audit_app, ["verify", "--config", cfg])
    assert r.exit_code == 2 and "--key-fingerprint" in r.output, "the key is never taken from the data"
    pin = ["--key-fingerprint", log.signer.key_id]
    r = runner.invoke(audit_app, ["verify", "--config", cfg, *pin])
    assert r.exit_code == 1 and "TAMPERED (interval)" in r.output, "the fixture's tail follows the final checkpoint"
    pin.append("--live")  # as for a running node: its young unsigned tail is allowed
    r = runner.invoke(audit_app, ["verify", "--config", cfg, *pin])
    assert r.exit_code == 0 and "INTACT" in r.output, r.output
    r = runner.invoke(audit_app, ["export", "--case", CASES[2], str(tmp_path / "out"), "--config", cfg, *pin])
    assert r.exit_code == 0 and f"entries of case {CASES[2]} are unaltered" in r.output, r.output
    assert (tmp_path / "out" / f"case-{CASES[2]}.zip").exists()
    r = runner.invoke(audit_app, ["export", "--case", "NO-SUCH-CASE", str(tmp_path / "out"), "--config", cfg, *pin])
    assert r.exit_code == 2 and "no entries for case NO-SUCH-CASE" in r.output
    with sqlite3.connect(db) as c:  # the first entry of case 1 after a checkpoint opens a window
        cps = [r[0] for r in c.execute("SELECT seq FROM checkpoints ORDER BY seq")]
        seq = c.execute("SELECT min(seq) FROM audit_log WHERE case_number=? AND seq>?", (CASES[0], cps[0] + 1)
                        ).fetchone()[0]
    attack(db, f"DELETE FROM audit_log WHERE seq={seq}")
    r = runner.invoke(audit_app, ["verify", "--config", cfg, *pin])
    assert r.exit_code == 1 and f"entry {seq} is missing" in r.output, r.output
    # that entry opened a window of case 1: the bundle cannot see it gone, the whole-log check can
    r = runner.invoke(audit_app, ["export", "--case", CASES[0], str(tmp_path / "after"), "--config", cfg, *pin])
    assert r.exit_code == 1 and f"whole log: TAMPERED (chain): entry {seq} is missing" in r.output, r.output
    assert f"entries of case {CASES[0]} are unaltered" in r.output

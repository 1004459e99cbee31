"""Backup of a running node and restore onto a fresh data folder: the disaster-recovery path.

What a backup holds (DIR): the database (SQLite: a consistent copy made with SQLite's online
backup API while the node writes; PostgreSQL: `pg_dump --format=custom`, the database's own
tool), the file store (`files/`, content-addressed, copied after the database so every file the
copy names is there), the node's signing key (the node goes on signing its log with it: keep
the backup as safe as the key), and `backup.json`: when, which backend, and the log's head in
the copy (the backup point).

Restore refuses a data folder (or PostgreSQL database) that is not empty, copies everything
back (`pg_restore`), then, before the node takes anything in, checks the log (pinned key, the
configured intervals; its tail was live when copied), asks the witness what it saw after the
backup point, signs the unsigned tail, and appends a signed "node-restored" entry naming the
backup point and the lost stretch. `gateway audit verify --witness` then passes up to the
backup point and reports what the witness holds after it as lost. Records accepted after the
backup point are gone from this node: senders hold receipts for them (time after the backup
point) and send them again.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.audit.chain import AuditEvent
from gateway.audit.signing import Sealer, Signer
from gateway.audit.verify import Policy, Verdict, verify_store
from gateway.audit.verify_bundle import RESTORED
from gateway.audit.witness import WitnessError, read_witness
from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from gateway.private_files import private_dir
from gateway.store import make_store
from gateway.store.shared import iso_now

MANIFEST = "backup.json"
DUMP = "gateway.dump"


@dataclass
class Restored:
    backup: dict[str, Any]
    verdict: Verdict
    witness_head: int | None = None  # newest entry the witness holds a checkpoint of
    lost: tuple[int, int] | None = None  # entries the witness saw that the backup does not hold
    notes: list[str] = field(default_factory=list)


def _paths(config: GatewayConfig) -> tuple[Path, Path, Path]:
    data = Path(config.gateway.data_dir)
    db = Path(config.gateway.store.path or data / "gateway.db")
    key = Path(config.gateway.signing_key or data / "signing-key.pem")
    return data, db, key


def _empty(d: Path) -> bool:
    return not d.exists() or not any(d.iterdir())


def backup(config: GatewayConfig, to: Path) -> dict[str, Any]:
    """Copy a (running) node's database, files and key into `to`, which must be new or empty."""
    if not _empty(to):
        raise GatewayError(f"{to}: 备份目录不是空的 / the backup folder is not empty")
    data, db, key = _paths(config)
    private_dir(to)
    s = config.gateway.store
    if s.backend == "sqlite":
        if not db.exists():
            raise GatewayError(f"{db}: 没有网关数据库 / there is no gateway database")
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        dst = sqlite3.connect(to / "gateway.db")
        try:
            src.backup(dst)  # SQLite's online backup: a consistent copy while the node writes
            head = dst.execute("SELECT seq, entry_hash, time FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        finally:
            dst.close()
            src.close()
    else:
        assert s.dsn is not None
        _run(["pg_dump", "--format=custom", "--no-owner", f"--file={to / DUMP}", f"--dbname={s.dsn.resolve()}"])
        head = None  # the dump's own snapshot: its head is read back at restore
    for kept in ("files", "witness"):  # content-addressed files; checkpoints this node witnesses for peers
        if (data / kept).is_dir():
            shutil.copytree(data / kept, to / kept, ignore=shutil.ignore_patterns("tmp"))
    shutil.copy2(key, to / "signing-key.pem")
    os.chmod(to / "signing-key.pem", 0o600)
    manifest = {"taken_at": iso_now(), "backend": s.backend, "node": config.gateway.node,
                "key_id": Signer.load_or_create(key).key_id,
                "head": {"seq": head[0], "entry_hash": head[1], "time": head[2]} if head else None}
    (to / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def _run(cmd: list[str]) -> None:
    """One of PostgreSQL's own tools; its complaint, not a traceback, when it fails."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise GatewayError(f"{cmd[0]}: 找不到 PostgreSQL 工具 / PostgreSQL's tool is not installed") from None
    if r.returncode != 0:
        raise GatewayError(f"{cmd[0]} 失败 / failed: {r.stderr.strip()[-1000:]}")


def _pg_empty(dsn: str) -> bool:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()
        return row is not None and row[0] == 0


def restore(config: GatewayConfig, source: Path, actor: str = "restore") -> Restored:
    """Put a backup in place of a lost node; refuses to overwrite anything."""
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise GatewayError(f"{source / MANIFEST}: 不是网关备份 / not a gateway backup ({e})") from None
    data, db, key = _paths(config)
    s = config.gateway.store
    if manifest["backend"] != s.backend:
        raise GatewayError(f"{source}: 备份来自 {manifest['backend']}，配置为 {s.backend} / the backup is of a "
                           f"{manifest['backend']} store, the configuration names {s.backend}")
    if not _empty(data):
        raise GatewayError(f"{data}: 数据目录不是空的，恢复只写入新的目录 / the data folder is not empty: a "
                           "restore only goes into a fresh one")
    if s.backend == "postgres":
        assert s.dsn is not None
        if not _pg_empty(s.dsn.resolve()):
            raise GatewayError("目标数据库不是空的 / the PostgreSQL database (schema) to restore into is not empty")
    private_dir(data)
    if s.backend == "sqlite":
        private_dir(db.parent)
        shutil.copy2(source / "gateway.db", db)
        os.chmod(db, 0o600)
    else:
        assert s.dsn is not None
        _run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={s.dsn.resolve()}", str(source / DUMP)])
    for kept in ("files", "witness"):
        if (source / kept).is_dir():
            shutil.copytree(source / kept, data / kept)
    private_dir(key.parent)
    shutil.copy2(source / "signing-key.pem", key)
    os.chmod(key, 0o600)
    return asyncio.run(_after(config, manifest, key, actor))


async def _after(config: GatewayConfig, manifest: dict[str, Any], key: Path, actor: str) -> Restored:
    """Check the restored log, find the lost stretch at the witness, and say so in the log."""
    g = config.gateway
    signer = Signer.load_or_create(key)
    pin = g.audit_key_fingerprint or manifest["key_id"]
    if signer.key_id != pin:
        raise GatewayError(f"{key}: 备份中的签名密钥 {signer.key_id} 不是预期的 {pin} / the backup's signing key "
                           f"{signer.key_id} is not the expected key {pin}")
    store = make_store(config)
    store.sealer = Sealer(signer, g.checkpoint_every, g.node, iso_now)
    await store.open()
    try:
        seq, head = await store.audit_head()
        # the copy was taken from a running node: its young tail is allowed as it was then
        tail = (await store.audit_entries(after_seq=seq - 1, limit=1))[0].time if seq else iso_now()
        verdict = await verify_store(store, None, pin=pin,
                                     policy=Policy(g.checkpoint_every, g.checkpoint_seconds, live=tail))
        if not verdict.ok:
            return Restored(manifest, verdict)
        out = Restored(manifest, verdict)
        witnessed: list[dict[str, Any]] = []
        for source in (g.witness.url, g.witness.file):
            if source:
                api_key = g.witness.api_key.resolve() if g.witness.api_key else None
                try:
                    witnessed += read_witness(source, pin, api_key)
                except WitnessError as e:
                    out.notes.append(f"见证节点无法读取 / the witness could not be read: {e}")
        later = [w for w in witnessed if int(w["seq"]) > seq]
        if later:
            top = max(later, key=lambda w: int(w["seq"]))
            out.witness_head, out.lost = int(top["seq"]), (seq + 1, int(top["seq"]))
        await store.seal_log([])  # the tail as the backup caught it, signed before anything new
        detail: dict[str, Any] = {"backup_seq": seq, "backup_hash": head, "backup_taken_at": manifest["taken_at"]}
        if out.lost:
            detail["lost"] = list(out.lost)
            detail["witness_head_signed_at"] = str(max(later, key=lambda w: int(w["seq"]))["signed_at"])
        await store.seal_log([AuditEvent(RESTORED, actor, detail=detail)])
        return out
    finally:
        await store.close()

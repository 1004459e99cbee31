"""`gateway backup` and `gateway restore` on both backends: the database's own tools (SQLite's online
backup API, pg_dump/pg_restore), a fresh target only, and a restored log that verifies."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.memory import MemoryOutbound
from gateway.audit.signing import Signer
from gateway.audit.verify import Policy, verify_store
from gateway.audit.verify_bundle import RESTORED
from gateway.backup import backup, restore
from gateway.config import GatewayConfig, parse_config
from gateway.errors import GatewayError
from gateway.runtime import Gateway
from gateway.store import make_store

from .support.config import base_config
from .support.records import record
from .support.stores import PG_URL, require_postgres


@pytest.fixture
def pg_databases() -> Iterator[tuple[str, str]]:
    """Two fresh databases: the node's, and the one a restore goes into."""
    require_postgres()
    import psycopg

    names = [f"gw_bk_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for n in names:
            conn.execute(f"CREATE DATABASE {n}")
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for n in names:
                conn.execute(f"DROP DATABASE IF EXISTS {n} WITH (FORCE)")


def _cfg(data: Path, store: dict[str, Any]) -> GatewayConfig:
    return parse_config(base_config(data, checkpoint_every=10, store=store))


async def _traffic_and_backup(cfg: GatewayConfig, to: Path) -> int:
    """Records taken in, a backup made while the node runs, more records after it; the backup's messages."""
    gw = Gateway(cfg, outbound={c: MemoryOutbound() for c in ("PROC", "COURT", "POLICE")})  # type: ignore[arg-type]
    async with gw.running():
        police = gw.inbound["police-in"]
        for i in range(12):
            await police.submit(record(case=f"C2026-{i:04d}"))  # type: ignore[attr-defined]
        await asyncio.to_thread(backup, cfg, to)
        for i in range(5):
            await police.submit(record(case=f"C2026-9{i:03d}"))  # type: ignore[attr-defined]
    return 12


async def _check(cfg: GatewayConfig) -> tuple[bool, int, list[str]]:
    store = make_store(cfg)
    await store.open()
    try:
        pin = Signer.load_or_create(Path(cfg.gateway.data_dir) / "signing-key.pem").key_id
        v = await verify_store(store, None, pin=pin, policy=Policy(cfg.gateway.checkpoint_every, 60.0, live=None))
        n = len({e.message_id for e in await store.audit_entries(after_seq=0, limit=100_000) if e.case_number})
        actions = [e.action for e in await store.audit_entries(after_seq=0, limit=100_000)][-3:]
        return v.ok, n, [v.summary(), *actions]
    finally:
        await store.close()


def test_sqlite_backup_while_running_and_restore_onto_a_fresh_folder(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "data", {"durability": "normal"})
    taken = asyncio.run(_traffic_and_backup(cfg, tmp_path / "bk"))
    assert (tmp_path / "bk" / "gateway.db").exists() and (tmp_path / "bk" / "backup.json").exists()
    with pytest.raises(GatewayError, match="not empty"):
        restore(cfg, tmp_path / "bk")  # the node's own folder is still there
    fresh = _cfg(tmp_path / "fresh", {"durability": "normal"})
    r = restore(fresh, tmp_path / "bk")
    assert r.verdict.ok, r.verdict.summary()
    ok, accepted, info = asyncio.run(_check(fresh))
    assert ok and accepted == taken, info
    assert info[-2:] == [RESTORED, "checkpoint"]
    with sqlite3.connect(tmp_path / "fresh" / "gateway.db") as c:
        assert c.execute("SELECT count(*) FROM messages").fetchone()[0] == taken
    with pytest.raises(GatewayError, match="not empty"):
        backup(cfg, tmp_path / "bk")


@pytest.mark.postgres
def test_postgres_backup_with_pg_dump_and_restore_with_pg_restore(
    tmp_path: Path, pg_databases: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    src, dst = pg_databases
    monkeypatch.setenv("SRC_DSN", src)
    monkeypatch.setenv("DST_DSN", dst)
    cfg = _cfg(tmp_path / "data", {"backend": "postgres", "dsn": {"env": "SRC_DSN"}})
    taken = asyncio.run(_traffic_and_backup(cfg, tmp_path / "bk"))
    assert (tmp_path / "bk" / "gateway.dump").stat().st_size > 0
    with pytest.raises(GatewayError, match="not empty"):  # a fresh folder, but a database in use
        restore(_cfg(tmp_path / "fresh0", {"backend": "postgres", "dsn": {"env": "SRC_DSN"}}), tmp_path / "bk")
    fresh = _cfg(tmp_path / "fresh", {"backend": "postgres", "dsn": {"env": "DST_DSN"}})
    r = restore(fresh, tmp_path / "bk")
    assert r.verdict.ok, r.verdict.summary()
    ok, accepted, info = asyncio.run(_check(fresh))
    assert ok and accepted == taken, info
    assert info[-2:] == [RESTORED, "checkpoint"]

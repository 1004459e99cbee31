"""`gateway db upgrade|status` on both backends, and a node refusing a schema it does not know."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway.config import GatewayConfig
from gateway.runtime import Gateway
from gateway.store import migrations
from gateway.store.cli import db_app

from .support.config import base_config
from .support.stores import set_schema_version, store_settings


@pytest.fixture
def config_file(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Path:
    data = base_config(tmp_path / "data")
    data["gateway"]["store"] = store_settings(backend, request, monkeypatch)
    p = tmp_path / "gateway.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_upgrade_then_status(config_file: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(db_app, ["status", "--config", str(config_file)])
    assert r.exit_code == 1 and "schema version 0" in r.output
    r = runner.invoke(db_app, ["upgrade", "--config", str(config_file)])
    assert r.exit_code == 0 and f"now version {migrations.SCHEMA_VERSION}" in r.output, r.output
    r = runner.invoke(db_app, ["upgrade", "--config", str(config_file)])
    assert r.exit_code == 0 and "nothing to do" in r.output
    r = runner.invoke(db_app, ["status", "--config", str(config_file)])
    assert r.exit_code == 0, r.output


async def test_node_refuses_a_newer_schema(config: GatewayConfig) -> None:
    gw = Gateway(config)
    await gw.store.upgrade()
    await set_schema_version(gw.store, migrations.SCHEMA_VERSION + 1)
    with pytest.raises(migrations.SchemaMismatch, match="newer than version"):
        await gw.start()


def test_compact_gives_an_older_sqlite_file_its_space_back(tmp_path: Path) -> None:
    """A file made before incremental auto-vacuum keeps freed pages until `gateway db compact`."""
    import sqlite3

    data = base_config(tmp_path / "data")
    p = tmp_path / "gateway.yaml"
    p.write_text(yaml.safe_dump(data))
    db = tmp_path / "data" / "gateway.db"
    db.parent.mkdir()
    conn = sqlite3.connect(db, isolation_level=None)  # auto_vacuum off, as in files made before
    conn.execute("CREATE TABLE filler (data BLOB)")
    conn.execute("INSERT INTO filler VALUES (zeroblob(8000000))")
    conn.execute("DELETE FROM filler")
    conn.close()
    runner = CliRunner()
    assert runner.invoke(db_app, ["upgrade", "--config", str(p)]).exit_code == 0
    before = db.stat().st_size
    r = runner.invoke(db_app, ["compact", "--config", str(p)])
    assert r.exit_code == 0 and "MB ->" in r.output, r.output
    assert db.stat().st_size < before - 7_000_000
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # later retention runs shrink it themselves
    conn.close()

"""Shared fixtures: a small three-agency configuration and records in the shared standard.

Every store-backed test runs twice: on SQLite and on PostgreSQL (127.0.0.1:5432, user postgres,
or GATEWAY_TEST_PG). Each PostgreSQL test gets its own schema, dropped afterwards. Without a
server the PostgreSQL runs skip with the reason; with CI=true they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import GatewayConfig, parse_config
from gateway.sim.records import MINIMAL_CONTENT
from gateway.store.base import Store

NS = "urn:cn:justice:case-exchange:1"
PG_URL = os.environ.get("GATEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_TEST_DB = "gateway_test"
DSN_ENV = "GATEWAY_TEST_DSN"


def record(case: str = "C2026-0001", stage: str = "prosecution-review", action: str = "transfer-for-prosecution",
           sender: str = "POLICE", extra: str = "", version: str = "1.0") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{NS}" version="{version}">'
            f"<CaseNumber>{case}</CaseNumber><Stage>{stage}</Stage><Action>{action}</Action>"
            f"<Sender>{sender}</Sender>"
            f"<LocalNumbers><LocalNumber agency='{sender}'>L-{case}</LocalNumber></LocalNumbers>"
            f"{MINIMAL_CONTENT}<Content><Note>{extra}</Note></Content></CaseRecord>").encode()


def base_config(data_dir: Path, *, outbound: dict[str, Any] | None = None, **gateway: Any) -> dict[str, Any]:
    out = outbound or {"adapter": "memory"}
    api = {"min_key_length": 1, **gateway.pop("api", {})}  # tests' keys are short, e.g. "police-key-1"
    return {
        "gateway": {"node": "test-node", "data_dir": str(data_dir), "store": {"durability": "normal"}, **gateway,
                    "api": api},
        "agencies": [
            {"code": "POLICE", "name": "City Police", "role": "police",
             "inbound": [{"name": "police-in", "adapter": "memory"}],
             "outbound": {"name": "police-out", **out}},
            {"code": "PROC", "name": "City Procuratorate", "role": "procuratorate",
             "inbound": [{"name": "proc-in", "adapter": "memory"}],
             "outbound": {"name": "proc-out", **out, "retry": {"initial_backoff": 0.05, "max_backoff": 0.2,
                                                               "jitter": 0.01, "max_attempts": 50}}},
            {"code": "COURT", "name": "City Court", "role": "court",
             "outbound": {"name": "court-out", **out}},
        ],
        "routes": [
            {"stage": "prosecution-review", "action": "transfer-for-prosecution", "to": ["PROC"]},
            {"stage": "trial", "action": "indictment", "to": ["COURT"]},
            {"stage": "trial", "action": "judgment", "to": ["PROC", "POLICE"]},
        ],
    }


# -- PostgreSQL --------------------------------------------------------------------------------
_pg_problem: list[str] = []


def _pg_ready() -> str | None:
    """None when the test database is reachable (creating it once), else the reason it is not."""
    if _pg_problem:
        return _pg_problem[0] or None
    try:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_TEST_DB,)).fetchone() is None:
                conn.execute(f"CREATE DATABASE {PG_TEST_DB}")
        _pg_problem.append("")
    except Exception as e:
        _pg_problem.append(f"no PostgreSQL server at {PG_URL} ({type(e).__name__}: {str(e).strip()[:200]})")
    return _pg_problem[0] or None


def require_postgres() -> None:
    """Skip (or, when CI=true, fail) a test that needs PostgreSQL when no server answers."""
    why = _pg_ready()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)


def pg_url(database: str = PG_TEST_DB, schema: str | None = None) -> str:
    base = PG_URL.rsplit("/", 1)[0] + "/" + database
    return base + (f"?options=-csearch_path%3D{schema}" if schema else "")


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh, empty schema in the test database; dropped with everything in it afterwards."""
    require_postgres()
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield pg_url(schema=schema)
    finally:
        with psycopg.connect(pg_url(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def store_settings(backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                   ) -> dict[str, Any]:
    """The `gateway.store` section for a backend; PostgreSQL's DSN is passed by env reference."""
    if backend == "sqlite":
        return {"durability": "normal"}
    monkeypatch.setenv(DSN_ENV, request.getfixturevalue("pg_dsn"))
    return {"backend": "postgres", "dsn": {"env": DSN_ENV}}


@pytest.fixture
def config(tmp_path: Path, backend: str, request: pytest.FixtureRequest,
           monkeypatch: pytest.MonkeyPatch) -> GatewayConfig:
    data = base_config(tmp_path / "data")
    data["gateway"]["store"] = store_settings(backend, request, monkeypatch)
    return parse_config(data)


MakeStore = Callable[[str], Store]


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> MakeStore:
    """Stores for one database, one per node name (several nodes only make sense on PostgreSQL)."""
    if backend == "postgres":
        from gateway.store.postgres import PostgresStore

        dsn = request.getfixturevalue("pg_dsn")
        return lambda node: PostgresStore(dsn, node=node)
    from gateway.store.sqlite import SQLiteStore

    return lambda node: SQLiteStore(tmp_path / "gw.db", node=node, durability="normal")


@pytest.fixture
async def store(make_store: MakeStore) -> AsyncIterator[Store]:
    s = make_store("node-a")
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def police_key(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """POLICE's API key, as `http_config` (tests/loopback.py) reads it, and the header sending it."""
    monkeypatch.setenv("POLICE_KEY", "police-key-1")
    return {"X-API-Key": "police-key-1"}

"""Test databases: SQLite files, and PostgreSQL (127.0.0.1:5432, user postgres, or GATEWAY_TEST_PG)
with one schema per test, so that parallel runs never meet."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from gateway.store import migrations
from gateway.store.base import Store

from .required import unavailable

PG_URL = os.environ.get("GATEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_TEST_DB = "gateway_test"
DSN_ENV = "GATEWAY_TEST_DSN"

MakeStore = Callable[[str], Store]

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
        unavailable(why)


def pg_url(database: str = PG_TEST_DB, schema: str | None = None) -> str:
    base = PG_URL.rsplit("/", 1)[0] + "/" + database
    return base + (f"?options=-csearch_path%3D{schema}" if schema else "")


def store_settings(backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                   ) -> dict[str, Any]:
    """The `gateway.store` section for a backend; PostgreSQL's DSN is passed by env reference."""
    if backend == "sqlite":
        return {"durability": "normal"}
    monkeypatch.setenv(DSN_ENV, request.getfixturevalue("pg_dsn"))
    return {"backend": "postgres", "dsn": {"env": DSN_ENV}}


async def set_schema_version(s: Store, v: int) -> None:
    """Stamp a store with another schema version, as a newer or older gateway would have left it."""
    sql = f"UPDATE meta SET value = '{v}' WHERE key = 'schema_version'"
    if hasattr(s, "dsn"):
        import psycopg

        async with await psycopg.AsyncConnection.connect(s.dsn, autocommit=True) as c:
            await c.execute(sql.encode())
    else:
        import sqlite3

        with sqlite3.connect(s.path) as c:  # type: ignore[attr-defined]
            c.execute(sql)


def write_old_database(store: Store, backend: str, version: int,
                       statements: list[tuple[str, tuple[object, ...]]]) -> None:
    """The store's database as a gateway of schema `version` left it: only its first migrations, then
    `statements` (placeholders `?`); the store is not open, so its own upgrade is what the test checks."""
    if backend == "postgres":
        import psycopg

        with psycopg.connect(store.dsn, autocommit=True) as pg:  # type: ignore[attr-defined]
            for m in migrations.migrations("postgres")[:version]:
                pg.execute(m.sql.encode())
            pg.execute(f"INSERT INTO meta VALUES ('schema_version', '{version}') "
                       f"ON CONFLICT (key) DO UPDATE SET value = '{version}'".encode())
            for sql, args in statements:
                pg.execute(sql.replace("?", "%s"), args)
    else:
        import sqlite3

        conn = sqlite3.connect(store.path, isolation_level=None)  # type: ignore[attr-defined]
        for m in migrations.migrations("sqlite")[:version]:
            conn.executescript(m.sql)
        conn.execute(f"INSERT OR REPLACE INTO meta VALUES ('schema_version', '{version}')")
        for sql, args in statements:
            conn.execute(sql, args)
        conn.close()

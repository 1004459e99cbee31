"""Shared fixtures; what they are made of lives in tests/support, which tests import directly.

Every store-backed test runs twice: on SQLite and on PostgreSQL (127.0.0.1:5432, user postgres,
or GATEWAY_TEST_PG). Each PostgreSQL test gets its own schema, dropped afterwards. Without a
server the PostgreSQL runs skip with the reason; with CI=true they fail instead. The same holds
for sshd and Chromium, which tests/system-packages.sh installs (`make test` runs it first).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.config import GatewayConfig, parse_config
from gateway.sim.sshd import SshServer
from gateway.store.base import Store

from .support.api import KEYS, Running, serve
from .support.browser import chromium
from .support.config import base_config
from .support.sshd import running_sshd
from .support.stores import MakeStore, pg_url, require_postgres, store_settings


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


@pytest.fixture
def config(tmp_path: Path, backend: str, request: pytest.FixtureRequest,
           monkeypatch: pytest.MonkeyPatch) -> GatewayConfig:
    data = base_config(tmp_path / "data")
    data["gateway"]["store"] = store_settings(backend, request, monkeypatch)
    return parse_config(data)


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
    """POLICE's API key, as `http_config` (tests/support/config.py) reads it, and the header sending it."""
    monkeypatch.setenv("POLICE_KEY", "police-key-1")
    return {"X-API-Key": "police-key-1"}


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """A gateway with every role's key, served in this test's loop (tests/support/api.py)."""
    for name, key in KEYS.items():
        monkeypatch.setenv(f"TEST_{name}_KEY", key)
    async with serve(tmp_path / "data") as running:
        yield running


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    """A real OpenSSH sshd on loopback, shared by the session's SFTP tests."""
    yield from running_sshd()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium through chromedriver, shared by one module's tests."""
    yield from chromium()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (CI=true) nothing skips: a test that would skip (a missing system package, a server not
    running) fails with its reason, so a missing install step shows up instead of a quiet pass."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped in CI, which must run every test: {reason}"

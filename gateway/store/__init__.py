"""Durable stores: SQLite by default, PostgreSQL for several nodes sharing one database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gateway.store.base import Store

if TYPE_CHECKING:  # the store takes its settings; it does not import the configuration (and its adapters)
    from gateway.config import GatewayConfig


def make_store(config: GatewayConfig) -> Store:
    s = config.gateway.store
    if s.backend == "postgres":
        from gateway.store.postgres import PostgresStore  # imported only when used

        if s.dsn is None:
            raise ValueError("store.dsn is required for the postgres backend")
        return PostgresStore(s.dsn.resolve(), node=config.gateway.node)
    from gateway.store.sqlite import SQLiteStore

    path = s.path or str(Path(config.gateway.data_dir) / "gateway.db")
    return SQLiteStore(path, node=config.gateway.node, durability=s.durability)

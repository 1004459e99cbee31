"""`gateway db ...`: apply and inspect schema migrations of the configured store.

A typer sub-app (`db_app`) for the main CLI to mount; also runnable on its own:
`python -m gateway.store.cli upgrade --config gateway.yaml`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from gateway.config import load_config
from gateway.errors import GatewayError
from gateway.store import make_store, migrations
from gateway.store.base import Store

db_app = typer.Typer(help="Database schema: upgrade it, or show which version it has.", no_args_is_help=True)

_CONFIG = typer.Option(
    ..., "--config", "-c", help="the gateway's YAML configuration", exists=True, dir_okay=False
)


def _store(config: Path) -> Store:
    try:
        return make_store(load_config(config))
    except (GatewayError, ValueError) as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None


@db_app.command()
def upgrade(config: Path = _CONFIG) -> None:
    """Apply every migration the database lacks, in order (safe to run from several nodes at once)."""
    store = _store(config)
    try:
        applied = asyncio.run(store.upgrade())
        version = asyncio.run(store.schema_version())
    except Exception as e:
        typer.echo(f"upgrade failed: {e}", err=True)
        raise typer.Exit(1) from None
    if applied:
        typer.echo(f"applied migration(s) {', '.join(map(str, applied))}; schema is now version {version}")
    else:
        typer.echo(f"schema is already at version {version}; nothing to do")


@db_app.command()
def status(config: Path = _CONFIG) -> None:
    """Show the database's schema version and whether this gateway can run on it (exit 1 if not)."""
    store = _store(config)
    backend = "postgres" if hasattr(store, "dsn") else "sqlite"
    try:
        version = asyncio.run(store.schema_version())
    except Exception as e:
        typer.echo(f"cannot read the database: {e}", err=True)
        raise typer.Exit(1) from None
    known = migrations.latest(backend)
    typer.echo(f"backend {backend}: database schema version {version}, this gateway knows version {known}")
    if version == 0:
        typer.echo("the database is empty: 'gateway db upgrade' (or the first start) creates the tables")
    try:
        migrations.check(version, "", backend)
    except migrations.SchemaMismatch as e:
        typer.echo(str(e).replace("the database  ", "the database "), err=True)
        raise typer.Exit(1) from None


@db_app.command()
def compact(config: Path = _CONFIG) -> None:
    """SQLite: give the space of pruned payloads back to the file system (stop the gateway first).

    Databases created by this version do that after every retention run by themselves; one created
    earlier needs this once. PostgreSQL's autovacuum makes the space reusable without it.
    """
    from gateway.store.sqlite import SQLiteStore

    store = _store(config)
    if not isinstance(store, SQLiteStore):
        typer.echo("PostgreSQL: autovacuum makes the space of deleted payloads reusable; nothing to do here")
        return
    try:
        before, after = asyncio.run(store.compact())
    except Exception as e:
        typer.echo(f"compact failed (is the gateway still running?): {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{store.path}: {before / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB")


if __name__ == "__main__":
    db_app()

"""Versioned schema migrations for both backends: numbered SQL files, applied in order.

`sqlite/NNNN_name.sql` and `postgres/NNNN_name.sql` carry the same version numbers; the number
of the newest file is the schema version this gateway knows. The version applied to a database
lives in its `meta` table. A store refuses to open a database whose version differs from the
one it knows (older: run `gateway db upgrade`; newer: run the newer gateway), and initialises an
empty database itself, so SQLite stays zero-setup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

BACKENDS = ("sqlite", "postgres")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


class SchemaMismatch(RuntimeError):
    """The database's schema is not the one this gateway was built for."""


def migrations(backend: str) -> list[Migration]:
    """Every migration of one backend, oldest first."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown store backend {backend!r}")
    out = []
    for f in resources.files(__name__).joinpath(backend).iterdir():
        m = _NAME.match(f.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), f.read_text(encoding="utf-8")))
    out.sort(key=lambda m: m.version)
    if [m.version for m in out] != list(range(1, len(out) + 1)):
        raise RuntimeError(f"{backend} migrations are not numbered 1..N without gaps")
    return out


def latest(backend: str = "sqlite") -> int:
    return migrations(backend)[-1].version


def pending(backend: str, current: int) -> list[Migration]:
    return [m for m in migrations(backend) if m.version > current]


def check(current: int, where: str, backend: str) -> None:
    """Raise SchemaMismatch, in words an operator acts on, unless `current` is the known version."""
    known = latest(backend)
    if current == known:
        return
    if current > known:
        raise SchemaMismatch(
            f"the database {where} has schema version {current}, newer than version {known} this gateway "
            "knows; run a gateway release that knows it (never downgrade a database)"
        )
    raise SchemaMismatch(
        f"the database {where} has schema version {current}, older than version {known} this gateway "
        "needs; run 'gateway db upgrade --config CONFIG' first"
    )


SCHEMA_VERSION = latest("sqlite")
if latest("postgres") != SCHEMA_VERSION:  # both backends move together
    raise RuntimeError("sqlite and postgres migrations disagree on the newest schema version")

"""SQLite store: one WAL file under the data directory, zero setup.

`connection.py` and `writer.py` are the engine (the file, its schema, one writer thread that
commits in groups, read connections); each other module adds one role's statements, lined up
one to one with the PostgreSQL package.
"""

from __future__ import annotations

from gateway.store.shared import iso_now
from gateway.store.sqlite.cases import SQLiteCases
from gateway.store.sqlite.delivery import SQLiteDelivery
from gateway.store.sqlite.intake import SQLiteIntake
from gateway.store.sqlite.keys import SQLiteKeys
from gateway.store.sqlite.locks import SQLiteLocks
from gateway.store.sqlite.log import SQLiteLog
from gateway.store.sqlite.marks import SQLiteMarks
from gateway.store.sqlite.operations import SQLiteOperations
from gateway.store.sqlite.retention import SQLiteRetention
from gateway.store.sqlite.stats import SQLiteStats


class SQLiteStore(SQLiteIntake, SQLiteDelivery, SQLiteOperations, SQLiteLog, SQLiteRetention, SQLiteKeys,
                  SQLiteLocks, SQLiteMarks, SQLiteCases, SQLiteStats):
    """Every role of `gateway.store.roles.Store` on one SQLite file."""


__all__ = ["SQLiteStore", "iso_now"]

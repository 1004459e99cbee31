"""PostgreSQL store: several gateway nodes share one database and the work in it.

`connection.py` and `writer.py` are the engine (the pool, the schema, one writer task per node
that commits in groups behind the log's head lock, LISTEN for other nodes' work); each other
module adds one role's statements, lined up one to one with the SQLite package.
"""

from __future__ import annotations

from gateway.store.postgres.cases import PostgresCases
from gateway.store.postgres.delivery import PostgresDelivery
from gateway.store.postgres.intake import PostgresIntake
from gateway.store.postgres.keys import PostgresKeys
from gateway.store.postgres.locks import PostgresLocks
from gateway.store.postgres.log import PostgresLog
from gateway.store.postgres.marks import PostgresMarks
from gateway.store.postgres.operations import PostgresOperations
from gateway.store.postgres.retention import PostgresRetention
from gateway.store.postgres.stats import PostgresStats


class PostgresStore(PostgresIntake, PostgresDelivery, PostgresOperations, PostgresLog, PostgresRetention,
                    PostgresKeys, PostgresLocks, PostgresMarks, PostgresCases, PostgresStats):
    """Every role of `gateway.store.roles.Store` on one PostgreSQL database shared by the nodes."""


__all__ = ["PostgresStore"]

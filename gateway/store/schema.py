"""The schema version this gateway knows; the tables themselves live in `migrations/`.

The exchange log is append-only at the database level too: triggers refuse UPDATE and DELETE,
so tampering needs deliberate access to the database, and the hash chain then shows it.
"""

from gateway.store.migrations import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION"]

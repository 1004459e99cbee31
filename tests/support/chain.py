"""The exchange log read back after a run: one unbroken hash chain from the first entry."""

from __future__ import annotations

from gateway.audit.chain import GENESIS, AuditEntry
from gateway.audit.verify_bundle import entry_hash_of


def verify_chain(entries: list[AuditEntry]) -> None:
    prev = GENESIS
    for n, e in enumerate(entries, start=1):
        assert e.seq == n, f"gap in the exchange log before seq {e.seq}"
        assert e.prev_hash == prev, f"entry {e.seq} does not link to entry {e.seq - 1}"
        assert entry_hash_of(vars(e)) == e.entry_hash, f"entry {e.seq} was altered"
        prev = e.entry_hash

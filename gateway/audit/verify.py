"""Re-check the whole exchange log, or a file of its entries, and name the first bad entry.

The log is read a page at a time (`Store.audit_entries(after_seq=..., limit=...)`), so memory
stays constant however long it is; only the list of checkpoints is held (one per
`checkpoint_every` entries). The rules live in `verify_bundle.ChainChecker`, shared with the
offline verifier shipped in export bundles.

What is checked: sequence numbers run on with no gap and no repeat; each entry carries the
hash of the one before; each entry's hash matches its content; time never goes backwards;
every checkpoint's Ed25519 signature verifies with the gateway's public key and the entry at
its place has the signed hash; the log reaches the newest checkpoint.

What a hash chain cannot prove, said plainly:
- Entries after the newest signed checkpoint can be removed or rewritten (with their hashes
  recomputed) without trace. They are reported as "not yet covered by a signed checkpoint";
  sign often (`checkpoint_every`) and keep copies of checkpoints outside the gateway.
- Whoever holds the private signing key can rewrite the whole log and sign it anew. The key
  must live where the database's administrators cannot read it; an auditor who kept an older
  checkpoint (or a bundle) can still catch such a rewrite by comparing it.
- Deleting the newest checkpoints themselves only turns covered entries into uncovered ones.
- The chain proves what was logged, not that everything that happened was logged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.verify_bundle import GENESIS, ChainChecker, Problem, Verdict, check, read_jsonl
from gateway.store.roles import ExchangeLog

PAGE = 1000
LOWEST = -(2**62)  # start below 1 so that an entry renumbered to 0 or less is still seen

__all__ = ["Problem", "Verdict", "verify_file", "verify_store"]


async def verify_store(
    store: ExchangeLog, public: Ed25519PublicKey, *, page: int = PAGE,
    progress: Callable[[int], None] | None = None,
) -> Verdict:
    """Walk the whole log in seq order, page by page; `progress(entries_read)` after each page."""
    checker = ChainChecker([c.as_json() for c in await store.checkpoints()], public)
    after, seen = LOWEST, 0
    while checker.wants_more:
        rows = await store.audit_entries(after_seq=after, limit=page)
        if not rows:
            break
        for e in rows:
            checker.feed(vars(e))  # the fields as they are; asdict() would deep-copy each
            if not checker.wants_more:
                break
        after = rows[-1].seq
        seen += len(rows)
        if progress is not None:
            progress(seen)
    return checker.end()


def verify_file(
    path: Path, checkpoints: list[dict[str, Any]], public: Ed25519PublicKey, *,
    first_seq: int = 1, prev_hash: str | None = GENESIS,
) -> Verdict:
    """Entries as JSON lines (one entry a line, as the export writes them), streamed from disk.

    `first_seq`/`prev_hash` describe where the file starts in the log; pass prev_hash=None for
    a window whose predecessor is not at hand (its first link is then not checked).
    """
    return check(read_jsonl(path), checkpoints, public, first_seq=first_seq, prev_hash=prev_hash)

"""Re-check the whole exchange log, or a file of its entries, and name the first bad entry.

The log is read a page at a time (`Store.audit_entries(after_seq=..., limit=...)`), so memory
stays constant however long it is; only the list of checkpoints is held (one per
`checkpoint_every` entries). The rules live in `chain_rules.ChainChecker`, shared with the
offline verifier shipped in export bundles, and `log_policy.PolicyChecker`.

What is checked: sequence numbers run on with no gap and no repeat; each entry carries the
hash of the one before; each entry's hash matches its content; time never goes backwards;
every checkpoint's Ed25519 signature verifies with the gateway's public key and the entry at
its place has the signed hash; the log reaches the newest checkpoint.

Checkpoints are entries of the chain (deleting one breaks it), signed with a key pinned from
outside the data (`--public-key`, `--key-fingerprint` or `gateway.audit_key_fingerprint`). With a
`Policy` (what `gateway audit verify` uses): a run of more than `checkpoint_every` unsigned
entries, or an unsigned stretch longer than `checkpoint_seconds` (+10 s grace), fails; so does a
"node-stopped" without its final checkpoint, and a log that does not end with one.

The live tail, thought through: a running node always has a few entries it has not signed yet
(at most `checkpoint_every`, for at most `checkpoint_seconds`). Verifying a running node
(`--live`, and the node's own GET /api/v1/audit/verify) accepts such a tail when it is younger
than the interval; a tail older than that means the node is down or not signing. Without
`--live` (a stopped node, or an auditor's copy) the log must end with a node's final
checkpoint. What this cannot see, said plainly:
- On a running node, the young unsigned tail can be cut or rewritten without trace; and on any
  log, everything after an earlier clean stop can be cut, leaving a log that ends correctly
  closed. Only a witness holding a later checkpoint (`--witness`) shows either.
- Whoever holds the private signing key can rewrite the log and sign it anew; the key pin does
  not help, a witness does (it holds the checkpoints signed before the rewrite).
- The chain proves what was logged, not that everything that happened was logged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.chain import AuditEntry
from gateway.audit.chain_rules import GENESIS, ChainChecker, Problem, Verdict, check
from gateway.audit.log_policy import Policy, PolicyChecker
from gateway.audit.verify_bundle import read_jsonl
from gateway.store.roles import ExchangeLog

PAGE = 1000
LOWEST = -(2**62)  # start below 1 so that an entry renumbered to 0 or less is still seen

__all__ = ["Policy", "Problem", "Verdict", "verify_file", "verify_store"]


async def verify_store(
    store: ExchangeLog, public: Ed25519PublicKey | None, *, page: int = PAGE,
    progress: Callable[[int], None] | None = None, pin: str | None = None, policy: Policy | None = None,
) -> Verdict:
    """Walk the whole log in seq order, page by page; `progress(entries_read)` after each page."""
    checker = PolicyChecker([c.as_json() for c in await store.checkpoints()], public, pin=pin, policy=policy)
    after, seen = LOWEST, 0
    while checker.wants_more:
        rows = await store.audit_entries(after_seq=after, limit=page)
        if not rows:
            break
        after, seen = rows[-1].seq, feed_page(checker, rows, seen, progress)
    return checker.end()


def feed_page(checker: ChainChecker, rows: Sequence[AuditEntry], seen: int,
              progress: Callable[[int], None] | None) -> int:
    """One page of the log to the checker (until it wants no more); the entries read so far, which
    `progress` is told."""
    for e in rows:
        checker.feed(vars(e))  # the fields as they are; asdict() would deep-copy each
        if not checker.wants_more:
            break
    seen += len(rows)
    if progress is not None:
        progress(seen)
    return seen


def verify_file(
    path: Path, checkpoints: list[dict[str, Any]], public: Ed25519PublicKey, *,
    first_seq: int = 1, prev_hash: str | None = GENESIS,
) -> Verdict:
    """Entries as JSON lines (one entry a line, as the export writes them), streamed from disk.

    `first_seq`/`prev_hash` describe where the file starts in the log; pass prev_hash=None for
    a window whose predecessor is not at hand (its first link is then not checked).
    """
    return check(read_jsonl(path), checkpoints, public, first_seq=first_seq, prev_hash=prev_hash)

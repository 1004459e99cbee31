"""A forger with a node's SQLite database (and perhaps its signing key): the log read out, re-chained
and written back, so tests can show which checks still catch a careful rewrite.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from gateway.audit.chain_rules import CHECKPOINT, GENESIS, canonical_detail, entry_hash_of, raw_public
from gateway.audit.signing import Signer
from gateway.audit.verify_bundle import FIELDS

COLUMNS = FIELDS  # audit_log's columns, in order


def log_rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as c:
        return [dict(zip(COLUMNS, r, strict=True)) for r in c.execute("SELECT * FROM audit_log ORDER BY seq")]


def rechain(entries: list[dict[str, Any]], signer: Signer | None = None) -> list[dict[str, Any]]:
    """Number the entries 1.. and recompute every link and hash, as a careful forger would; with a
    signer, every checkpoint entry is signed anew over its new predecessor."""
    prev, out = GENESIS, []
    for i, e in enumerate(entries, 1):
        e = {**e, "seq": i, "prev_hash": prev}
        if e["action"] == CHECKPOINT and signer is not None:
            d = json.loads(e["detail"])
            d.update(seq=i - 1, entry_hash=prev, signature=signer.sign(i - 1, prev, d["signed_at"]),
                     key_id=signer.key_id, public_key=raw_public(signer.public))
            e["detail"] = canonical_detail(d)
        e["entry_hash"] = prev = entry_hash_of(e)
        out.append(e)
    return out


def replace_log(db: Path, entries: list[dict[str, Any]]) -> None:
    """Write the whole log anew (and the checkpoints table to match), triggers dropped first."""
    c = sqlite3.connect(db)
    c.execute("DROP TRIGGER IF EXISTS audit_no_update")
    c.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    c.execute("DELETE FROM audit_log")
    c.execute("DELETE FROM checkpoints")
    c.executemany(f"INSERT INTO audit_log VALUES ({','.join('?' * 11)})", [tuple(e[k] for k in COLUMNS)
                                                                           for e in entries])
    for e in entries:
        if e["action"] == CHECKPOINT:
            d = json.loads(e["detail"])
            c.execute("INSERT INTO checkpoints VALUES (?,?,?,?,?)",
                      (d["seq"], d["entry_hash"], d["signed_at"], d["signature"], d["key_id"]))
    c.commit()
    c.close()

"""Evidence for one case: a self-contained bundle an auditor verifies offline.

Design. A case's entries are scattered through the log among other cases' entries, and each
entry's hash covers its full content and its predecessor's hash. To prove that a case entry
is in the signed log unaltered, the verifier must follow the chain from that entry to the
next signed checkpoint, recomputing every hash on the way. A bare list of the other entries'
hashes would not do: nothing would tie one listed hash to the next, so anyone could splice a
forged entry in and keep the signed hash at the end. Hence the bundle carries *windows*: for
each group of case entries covered by the same checkpoint, every log entry from the first of
them up to that checkpoint, in full. Entries between windows are left out, and so is every
payload of another case.

Costs of that choice, plainly: the windows reveal other cases' log metadata (case numbers,
actions, agencies, message ids, payload hashes; never their payloads), at most about
`checkpoint_every` entries per window; and the bundle proves that each entry it holds is in
the signed log unaltered, and that within a window none of the case's entries was left out,
but it cannot prove that no case entry exists between windows, nor that none was deleted just
before a window's first entry: for that the whole log must be verified, which `gateway audit
export` does before writing the bundle (and reports beside the bundle's verdict). Case entries
after the newest checkpoint are exported in a last window and reported as not yet covered by a signed checkpoint.

Layout of `case-NUMBER/` (and `case-NUMBER.zip` beside it): `entries.jsonl` (the windows),
`checkpoints.json`, `public-key.pem`, `manifest.json` (signed by the node's key: its windows and
counts are checked against what the bundle holds), `payloads/SHA256` (raw, standard and
delivered bodies of the case, by hash; left out with include_payloads=False), `README.md` and
`verify_bundle.py` with `chain_rules.py`, the standalone verifier.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.audit.chain import AuditEntry
from gateway.audit.chain_rules import key_fingerprint
from gateway.audit.signing import Signer, public_pem
from gateway.audit.verify_bundle import manifest_message
from gateway.store.roles import ExchangeLog, Payloads
from gateway.store.shared import iso_now

PAGE = 1000
VERIFIER = Path(__file__).with_name("verify_bundle.py")
VERIFIER_FILES = (VERIFIER, VERIFIER.with_name("chain_rules.py"))  # what a bundle ships to check itself


class EvidenceSource(ExchangeLog, Payloads, Protocol):
    """What an export reads: the log, its checkpoints and the case's payloads."""


@dataclass(frozen=True)
class Exported:
    directory: Path
    archive: Path
    case_entries: int
    entries: int  # all entries in the windows
    windows: list[tuple[int, int]]
    payloads: int


async def export_case(
    store: EvidenceSource, case_number: str, out_dir: str | Path, signer: Signer,
    include_payloads: bool = True, *, progress: Callable[[int, int], None] | None = None,
    evidence_cert: bytes | None = None,
) -> Exported:
    """Write the bundle for one case; `progress(done, total)` counts window entries written. The
    manifest (windows, counts, key) is signed with the node's key, so no window can be dropped."""
    signer_public_key = signer.public
    root = Path(out_dir) / f"case-{re.sub(r'[^A-Za-z0-9_.-]', '_', case_number)}"
    if root.exists():
        raise FileExistsError(f"{root} already exists; choose another output folder")
    cps = await store.checkpoints()
    windows, case_entries, hashes, evidence = await _windows(store, case_number, [c.seq for c in cps])
    if not windows:
        raise LookupError(f"the exchange log has no entries for case {case_number}")
    (root / "payloads").mkdir(parents=True)
    total = sum(b - a + 1 for a, b in windows)
    written = 0
    with (root / "entries.jsonl").open("w", encoding="utf-8") as f:
        for a, b in windows:
            after = a - 1
            while after < b:
                rows = await store.audit_entries(after_seq=after, limit=min(PAGE, b - after))
                if not rows:
                    break
                for e in rows:
                    f.write(json.dumps(vars(e), ensure_ascii=False, separators=(",", ":")) + "\n")
                after = rows[-1].seq
                written += len(rows)
                if progress is not None:
                    progress(written, total)
    payloads = dropped = 0
    if include_payloads:
        for h in sorted(hashes):
            blob = await store.get_blob(h)
            if blob is not None:
                (root / "payloads" / h).write_bytes(blob)
                payloads += 1
            else:
                dropped += 1  # dropped by the retention policy (its log entry says so): the hash stands
    evidence_files = await _evidence(store, root, evidence, evidence_cert)
    used = [c.as_json() for c in cps if any(a <= c.seq <= b for a, b in windows)]
    (root / "checkpoints.json").write_text(json.dumps(used, indent=1), encoding="utf-8")
    (root / "public-key.pem").write_bytes(public_pem(signer_public_key))
    manifest: dict[str, object] = {
        "case_number": case_number, "exported_at": iso_now(), "key_id": key_fingerprint(signer_public_key),
        "windows": [list(w) for w in windows], "case_entries": case_entries, "entries": written,
        "payloads": "included" if include_payloads else "hashes only",
        **({"payloads_not_stored": dropped} if dropped else {}),
        **({"evidence": evidence_files} if evidence_files else {}),
    }
    manifest["signature"] = base64.b64encode(signer.private.sign(manifest_message(manifest))).decode()
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    (root / "README.md").write_text(_readme(manifest), encoding="utf-8")
    for script in VERIFIER_FILES:
        shutil.copyfile(script, root / script.name)
    archive = Path(shutil.make_archive(str(root), "zip", root_dir=root.parent, base_dir=root.name))
    return Exported(root, archive, case_entries, written, windows, payloads)


async def _evidence(store: EvidenceSource, root: Path, entries: list[AuditEntry], cert: bytes | None) -> list[str]:
    """The case's signed evidence documents, by message and kind, with the certificate that checks them
    (`gateway evidence verify`, xmlsec1); each is also a payload, named by the hash its log entry holds."""
    names: list[str] = []
    for e in entries:
        blob = await store.get_blob(e.payload_hash)
        if blob is None:
            continue
        name = f"{e.message_id}-{e.action.removeprefix('evidence-')}-{e.payload_hash[:12]}.xml"
        (root / "evidence").mkdir(exist_ok=True)
        (root / "evidence" / name).write_bytes(blob)
        names.append(name)
    if names and cert:
        (root / "evidence" / "evidence-cert.pem").write_bytes(cert)
    return names


async def _windows(
    store: ExchangeLog, case: str, cp_seqs: list[int],
) -> tuple[list[tuple[int, int]], int, set[str], list[AuditEntry]]:
    """Group the case's entries by the first checkpoint at or after each; one window per group. Also the
    entries that issued signed evidence."""
    groups: list[tuple[int, int, int | None]] = []  # (first case entry, window end, checkpoint)
    count, hashes, after = 0, set(), 0
    evidence: list[AuditEntry] = []
    while True:
        rows = await store.audit_entries(case_number=case, after_seq=after, limit=PAGE)
        if not rows:
            break
        for e in rows:
            count += 1
            if e.action.startswith("evidence-"):
                evidence.append(e)
            if e.payload_hash:
                hashes.add(e.payload_hash)
            i = bisect.bisect_left(cp_seqs, e.seq)
            cover = cp_seqs[i] if i < len(cp_seqs) else None
            if groups and groups[-1][2] == cover:
                if cover is None:
                    groups[-1] = (groups[-1][0], e.seq, None)
            else:
                groups.append((e.seq, cover if cover is not None else e.seq, cover))
        after = rows[-1].seq
    return [(a, b) for a, b, _ in groups], count, hashes, evidence


def _readme(m: dict[str, object]) -> str:
    return f"""# Exchange-log evidence for case {m['case_number']}

Exported {m['exported_at']} by the case exchange gateway. Signing key fingerprint: `{m['key_id']}`.

## Verify it

    python3 verify_bundle.py            # needs Python 3.11+ and the `cryptography` package
    python3 verify_bundle.py --public-key gateway-public-key.pem

The second form uses a public key you obtained from the gateway's operator yourself (compare its
fingerprint with the one above); the key in this folder proves nothing if the folder itself was
replaced. The verifier prints INTACT or TAMPERED, naming the first bad entry, and exits 0 or 1.

## What is here

- `entries.jsonl`: exchange-log entries, one JSON object a line. Windows {m['windows']}: each runs
  from an entry of this case to the signed checkpoint that covers it, so every hash can be
  recomputed up to a signature. Entries of other cases appear in the windows only so that the
  chain can be followed; their payloads are not included.
- `checkpoints.json`: Ed25519 signatures over "case-exchange-checkpoint:SEQ:HASH:SIGNED_AT".
- `manifest.json`: the windows and every count, signed with the same key ("signature"); a window
  dropped, or a count changed, fails the check.
- `payloads/`: the case's payloads ({m['payloads']}), each named by its SHA-256, which the log records.
- `evidence/`: the signed evidence of submission and delivery the gateway issued for the case (XML-DSig,
  ECDSA P-256), with `evidence-cert.pem`, the certificate that signed them; check one with
  `gateway evidence verify FILE --public-key evidence-cert.pem` or
  `xmlsec1 --verify --trusted-pem evidence-cert.pem FILE` (take the certificate from the operator).
- `public-key.pem`, `manifest.json`, this README, `verify_bundle.py` and `chain_rules.py` (the rules it checks).

## What it proves, and what it cannot

Each entry here is, unaltered, part of the log the gateway signed, and in order in time; each
payload is the one the log names. Entries after the newest checkpoint are reported as "not yet
covered by a signed checkpoint": they cannot be proved yet. The bundle cannot show an entry of
this case that lies between two windows was never left out; a verification of the whole log can.
Whoever holds the gateway's private key could rewrite and re-sign the log: compare with
checkpoints or bundles you received earlier.
"""

"""The pipeline step that checks the electronic seals on a record's legal documents.

What is signed (the standard's Document/Signature: "a detached signature over the referenced
file"): the bytes of the dossier file the document's FileRef names, exactly as transferred, with
SM2 over SM3 and the default ID 1234567812345678 (GM/T 0009); Signature holds the DER signature
(r, s) in base64, `algorithm` is SM2-SM3 and `keyId` names the key in the issuing agency's part of
the trust store. The police format carries the same as QZ (SF, MY). The day a seal was made is the
document's Date: a key revoked on or before it, or not valid on it, cannot have made the seal.

A failed or missing seal on a document type the deployment lists in `seals.must_seal` blocks the
record (or warns, with `seals.failure: warn`); a failed seal on any other document warns.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from gateway import notice, standard
from gateway.files import FileStore
from gateway.mapping import Problem
from gateway.seals import sm2
from gateway.seals.settings import SealSettings
from gateway.seals.truststore import TrustStore

if TYPE_CHECKING:
    from gateway.pipeline import Context

ALGORITHM = "SM2-SM3"
CHUNK = 1024 * 1024
_C = f"{{{standard.NS}}}"


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


class Seals:
    """Checks each Document's Signature against the trust store (a pipeline step)."""

    name = "seals"

    def __init__(self, trust: TrustStore, must_seal: list[str], failure: str,
                 file_path: Callable[[str], Path | None]) -> None:
        self.trust = trust
        self.must_seal = frozenset(must_seal)
        self.failure = failure
        self.file_path = file_path  # a dossier file by its SHA-256, where this node keeps it (None: not here)

    def __call__(self, ctx: Context) -> None:
        tree = ctx.canonical
        assert tree is not None
        files = {f.get("id"): (f.findtext(f"{_C}SHA256") or "").strip() for f in tree.iter(f"{_C}File")}
        problems: list[Problem] = []
        verified: list[dict[str, Any]] = []
        for i, doc in enumerate(tree.iter(f"{_C}Document"), 1):
            kind = (doc.findtext(f"{_C}Type") or "").strip()
            severity = self.failure if kind in self.must_seal else "warn"
            found = self._check(doc, files)
            where = f"/CaseRecord/Documents/Document[{i}]"
            if found is None:
                sig = doc.find(f"{_C}Signature")
                verified.append({"document": doc.findtext(f"{_C}Number"), "type": kind,
                                 "issuer": doc.findtext(f"{_C}Issuer"),
                                 "key_id": sig.get("keyId") if sig is not None else ""})
            elif found[0] != "seal.none" or kind in self.must_seal:
                rule, en, zh = found
                problems.append(Problem(rule, en, severity=severity, location=where, line=doc.sourceline,
                                        message_zh=zh))
        if verified:
            ctx.log("seals-verified", documents=verified)
        warnings = [p for p in problems if p.severity == "warn"]
        if warnings:  # forwarded with the record, beside the rules' warnings
            box = tree.find(f"{_C}Warnings")
            if box is None:
                box = etree.SubElement(tree, f"{_C}Warnings")
            for p in warnings:
                notice.defect_element(box, "Warning", p)
            ctx.canonical_bytes = etree.tostring(tree, encoding="UTF-8")
            ctx.log("warned", ctx.canonical_hash(), warnings=[p.as_dict() for p in warnings])
        ctx.block(*problems)

    def _check(self, doc: Any, files: dict[str | None, str]) -> tuple[str, str, str] | None:
        """None when the document's seal holds; else (rule, English, Chinese)."""
        number = (doc.findtext(f"{_C}Number") or "").strip()
        issuer = (doc.findtext(f"{_C}Issuer") or "").strip()
        sig = doc.find(f"{_C}Signature")
        if sig is None:
            return ("seal.none", f"document {number} must bear the electronic seal of {issuer}, and has none",
                    f"文书 {number} 应加盖 {issuer} 的电子印章，但未加盖")
        algorithm, key_id = sig.get("algorithm", ""), sig.get("keyId", "")
        if algorithm != ALGORITHM:
            return ("seal.algorithm", f"the seal of document {number} uses {algorithm}; the gateway checks "
                                      f"{ALGORITHM} seals",
                    f"文书 {number} 的印章算法为 {algorithm}，网关只核验 {ALGORITHM}")
        key = self.trust.get(issuer, key_id)
        if key is None:
            return ("seal.unknown-key", f"seal key {key_id} of {issuer} (document {number}) is not in the trust store",
                    f"文书 {number} 的印章密钥 {key_id}（{issuer}）不在信任库中")
        try:
            sealed_on = datetime.date.fromisoformat((doc.findtext(f"{_C}Date") or "").strip())
        except ValueError:
            return ("seal.date", f"document {number} has no readable date to check its seal against",
                    f"文书 {number} 没有可读的日期，无法核验印章")
        refused = key.refusal(sealed_on)
        if refused is not None:
            return refused
        digest = files.get(doc.findtext(f"{_C}FileRef"))
        path = self.file_path(digest) if digest else None
        if path is None:
            return ("seal.no-file", f"the seal of document {number} signs the file its FileRef names, and that file "
                                    "did not reach the gateway", f"文书 {number} 的印章签署的文件未送达网关")
        try:
            signature = base64.b64decode("".join((sig.text or "").split()), validate=True)
        except binascii.Error:
            signature = b""
        if not sm2.verify(key.point, _chunks(path), signature):
            return ("seal.invalid", f"the seal of document {number} does not match its file: the file was changed "
                                    f"after sealing, or the seal was not made with key {key_id} of {issuer}",
                    f"文书 {number} 的印章与文件不符：文件在盖章后被改动，或印章并非由 {issuer} 的密钥 {key_id} 加盖")
        return None


def seal_steps(settings: SealSettings, files: FileStore) -> list[Seals]:
    """The seal step for this deployment's `seals:` section; none when it has no trust store or list."""
    if not settings.active:
        return []

    def file_path(sha256: str) -> Path | None:
        try:
            p = files.path_for(sha256)
        except ValueError:
            return None
        return p if p.is_file() else None

    return [Seals(TrustStore([t.trusted() for t in settings.trust]), settings.must_seal, settings.failure, file_path)]

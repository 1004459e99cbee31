"""The gateway's Ed25519 key: signs checkpoints of the exchange log so auditors can trust its head.

What is signed, and how the key is named, is defined once in the standalone bundle verifier.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.audit.chain import AuditEvent
from gateway.audit.chain_rules import CHECKPOINT, checkpoint_message, key_fingerprint, raw_public
from gateway.private_files import private_dir


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class Signer:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.public = private.public_key()
        self.key_id = key_fingerprint(self.public)

    @classmethod
    def load_or_create(cls, path: str | Path) -> Signer:
        """Load the PEM key, or create one readable by its owner only on first start."""
        p = Path(path)
        if p.exists():
            key = serialization.load_pem_private_key(p.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{p} does not hold an Ed25519 private key")
            return cls(key)
        private_dir(p.parent)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return cls(key)

    def sign(self, seq: int, entry_hash: str, signed_at: str) -> str:
        return base64.b64encode(self.private.sign(checkpoint_message(seq, entry_hash, signed_at))).decode()


class Sealer:
    """Makes the checkpoint entry that signs the log's head: the writer appends it in the same
    transaction as the entries it covers, once `every` entries of the log are unsigned (the log's
    count, whichever process wrote them), so a crash can never leave more than that unsigned."""

    def __init__(self, signer: Signer, every: int, node: str, now: Callable[[], str]) -> None:
        self.signer, self.every, self.node, self.now = signer, every, node, now
        self.raw = raw_public(signer.public)

    def event(self, seq: int, entry_hash: str) -> AuditEvent:
        signed_at = self.now()
        return AuditEvent(CHECKPOINT, self.node, detail={
            "seq": seq, "entry_hash": entry_hash, "signed_at": signed_at,
            "signature": self.signer.sign(seq, entry_hash, signed_at), "key_id": self.signer.key_id,
            "public_key": self.raw})

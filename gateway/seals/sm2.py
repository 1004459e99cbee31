"""SM2 signature verification over SM3 (GM/T 0003.2-2012, GM/T 0004-2012), as issuing agencies seal.

The digest e = SM3(Z || M), Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), with the default
ID "1234567812345678" (GM/T 0009-2012; OpenSSL's default too); the signature is the DER SEQUENCE of r
and s (GM/T 0009). SM3 comes from OpenSSL through `cryptography`, which streams a large file; the
curve arithmetic from `gmssl` (PyPI), since `cryptography` has no SM2. gmssl checks neither the
ranges of r and s nor that the key is a point of the curve: both are checked here first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from Cryptodome.Util.asn1 import DerBitString, DerObjectId, DerSequence
from cryptography.hazmat.primitives import hashes
from gmssl import sm2 as gm

DEFAULT_ID = b"1234567812345678"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
SM2_CURVE = "1.2.156.10197.1.301"
_P = int(gm.default_ecc_table["p"], 16)
_N = int(gm.default_ecc_table["n"], 16)
_A = int(gm.default_ecc_table["a"], 16)
_B = int(gm.default_ecc_table["b"], 16)


class NotSM2(ValueError):
    """The key or signature is not an SM2 one."""


def point_from_spki(der: bytes) -> bytes:
    """The public point (04 || x || y, 65 bytes) of a SubjectPublicKeyInfo holding an SM2 key."""
    try:
        spki = DerSequence().decode(der)
        alg = DerSequence().decode(item(spki, 0))
        if (DerObjectId().decode(item(alg, 0)).value != EC_PUBLIC_KEY
                or DerObjectId().decode(item(alg, 1)).value != SM2_CURVE):
            raise NotSM2("the key is not an SM2 key (curve 1.2.156.10197.1.301)")
        point = bytes(DerBitString().decode(item(spki, 1)).value)
    except (ValueError, IndexError, TypeError) as e:
        if isinstance(e, NotSM2):
            raise
        raise NotSM2(f"not a SubjectPublicKeyInfo: {e}") from None
    check_point(point)
    return point


def item(seq: DerSequence, i: int) -> bytes:
    """The DER of a sequence's i-th element (pycryptodome's stubs type them loosely)."""
    v = cast(object, seq[i])
    if not isinstance(v, bytes):
        raise ValueError(f"element {i} is not a structure")
    return v


def check_point(point: bytes) -> None:
    if len(point) != 65 or point[0] != 4:
        raise NotSM2("the SM2 public key is not an uncompressed point of 65 bytes")
    x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
    if not (x < _P and y < _P) or (y * y - (x * x * x + _A * x + _B)) % _P:
        raise NotSM2("the SM2 public key is not a point of the SM2 curve")


def _sm3() -> hashes.Hash:
    return hashes.Hash(hashes.SM3())


def z_value(point: bytes, uid: bytes = DEFAULT_ID) -> bytes:
    h = _sm3()
    h.update((len(uid) * 8).to_bytes(2, "big") + uid)
    for hexv in (gm.default_ecc_table["a"], gm.default_ecc_table["b"], gm.default_ecc_table["g"]):
        h.update(bytes.fromhex(hexv))
    h.update(point[1:])
    return h.finalize()


def digest(point: bytes, chunks: Iterable[bytes], uid: bytes = DEFAULT_ID) -> bytes:
    """e = SM3(Z || M), M given in chunks (a dossier file is streamed, never held whole)."""
    h = _sm3()
    h.update(z_value(point, uid))
    for c in chunks:
        h.update(c)
    return h.finalize()


def verify_digest(point: bytes, e: bytes, signature_der: bytes) -> bool:
    """True when `signature_der` (DER r, s) is the holder of `point`'s signature of digest `e`."""
    try:
        seq = DerSequence().decode(signature_der, strict=True)
        if len(seq) != 2 or not seq.hasOnlyInts():
            return False
        r, s = cast(int, seq[0]), cast(int, seq[1])
    except (ValueError, TypeError, IndexError):
        return False
    if not (1 <= r < _N and 1 <= s < _N):
        return False
    verifier = gm.CryptSM2(private_key=None, public_key=point[1:].hex())
    rs = f"{r:064x}{s:064x}"
    return bool(verifier.verify(rs, e))


def verify(point: bytes, chunks: Iterable[bytes], signature_der: bytes, uid: bytes = DEFAULT_ID) -> bool:
    return verify_digest(point, digest(point, chunks, uid), signature_der)

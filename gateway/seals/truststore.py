"""The trust store: each issuing agency's seal keys with the days they may seal on.

A key comes as an SM2 public key or as an X.509 certificate in PEM. `cryptography` reads the
certificate's fields but has no SM2 keys, so the public point is taken from the certificate's
SubjectPublicKeyInfo here. The certificate is trusted as listed (pinned): no chain is built.
"""

from __future__ import annotations

import base64
import datetime
import re
from dataclasses import dataclass

from Cryptodome.Util.asn1 import DerSequence
from cryptography import x509

from gateway.seals.sm2 import NotSM2, item, point_from_spki

_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)


@dataclass(frozen=True)
class TrustedKey:
    agency: str
    key_id: str
    point: bytes  # 04 || x || y
    valid_from: datetime.date | None
    valid_until: datetime.date | None
    revoked_on: datetime.date | None
    revocation_reason: str = ""
    source: str = "public key"  # or "certificate CN=..."

    def refusal(self, sealed_on: datetime.date) -> tuple[str, str, str] | None:
        """(rule, English, Chinese) when a seal dated `sealed_on` cannot have been made with this key."""
        if self.revoked_on is not None and sealed_on >= self.revoked_on:
            why = f" ({self.revocation_reason})" if self.revocation_reason else ""
            return ("seal.revoked",
                    f"seal key {self.key_id} of {self.agency} was revoked on {self.revoked_on}{why}; the document is "
                    f"dated {sealed_on}",
                    f"{self.agency} 的印章密钥 {self.key_id} 已于 {self.revoked_on} 撤销{why}，文书日期为 {sealed_on}")
        if (self.valid_from and sealed_on < self.valid_from) or (self.valid_until and sealed_on > self.valid_until):
            return ("seal.expired",
                    f"seal key {self.key_id} of {self.agency} is valid from {self.valid_from or '-'} to "
                    f"{self.valid_until or '-'} ({self.source}); the document is dated {sealed_on}",
                    f"{self.agency} 的印章密钥 {self.key_id} 有效期为 {self.valid_from or '-'} 至 "
                    f"{self.valid_until or '-'}，文书日期 {sealed_on} 不在有效期内")
        return None


def _later(a: datetime.date | None, b: datetime.date | None) -> datetime.date | None:
    return max(a, b) if a and b else a or b


def _earlier(a: datetime.date | None, b: datetime.date | None) -> datetime.date | None:
    return min(a, b) if a and b else a or b


def parse_pem(agency: str, key_id: str, pem: str, valid_from: datetime.date | None,
              valid_until: datetime.date | None, revoked_on: datetime.date | None, reason: str) -> TrustedKey:
    """A trust entry's key; ValueError naming what is wrong (pydantic reports it with the entry's path)."""
    m = _PEM.search(pem)
    if m is None:
        raise ValueError("not a PEM block (-----BEGIN ...-----)")
    try:
        der = base64.b64decode("".join(m.group(2).split()), validate=True)
    except ValueError:
        raise ValueError("the PEM block is not valid base64") from None
    try:
        if m.group(1) == "CERTIFICATE":
            cert = x509.load_der_x509_certificate(der)
            tbs = DerSequence().decode(cert.tbs_certificate_bytes)
            first = 1 if isinstance(tbs[0], bytes) and tbs[0][:1] == b"\xa0" else 0  # explicit version tag
            point = point_from_spki(item(tbs, first + 5))
            return TrustedKey(agency, key_id, point, _later(valid_from, cert.not_valid_before_utc.date()),
                              _earlier(valid_until, cert.not_valid_after_utc.date()), revoked_on, reason,
                              f"certificate {cert.subject.rfc4514_string()}")
        if m.group(1) == "PUBLIC KEY":
            return TrustedKey(agency, key_id, point_from_spki(der), valid_from, valid_until, revoked_on, reason)
    except NotSM2 as e:
        raise ValueError(str(e)) from None
    except ValueError as e:
        raise ValueError(f"the certificate cannot be read: {e}") from None
    raise ValueError(f"a PEM {m.group(1)} is neither a PUBLIC KEY nor a CERTIFICATE")


class TrustStore:
    def __init__(self, keys: list[TrustedKey]) -> None:
        self.keys = {(k.agency, k.key_id): k for k in keys}

    def get(self, agency: str, key_id: str) -> TrustedKey | None:
        return self.keys.get((agency, key_id))

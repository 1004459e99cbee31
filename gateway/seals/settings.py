"""The `seals:` section: issuing agencies' seal keys (the trust store, as data in the deployment's
configuration), which document types must be sealed, and what a failed seal does."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.seals.truststore import TrustedKey, parse_pem


class TrustEntry(BaseModel):
    """One seal key of one issuing agency: its public key or certificate, when it may seal, and its
    revocation. A seal whose document is dated outside [valid_from, valid_until], outside the
    certificate's validity, or on or after `revoked_on` fails."""

    model_config = ConfigDict(extra="forbid")

    agency: str = Field(description="the issuing agency's code, as documents name it in Issuer")
    key_id: str = Field(description="the seal key's id, as documents name it (Signature/@keyId, the police's QZ/@MY)")
    algorithm: Literal["SM2-SM3"] = Field("SM2-SM3", description="SM2 signature over SM3 (GM/T 0003, 0004, 0009)")
    public_key: str | None = Field(None, description="the SM2 public key, PEM (SubjectPublicKeyInfo)")
    certificate: str | None = Field(None, description="or the seal's X.509 certificate, PEM; its validity applies")
    valid_from: datetime.date | None = Field(None, description="first day a document sealed with the key may bear")
    valid_until: datetime.date | None = Field(None, description="last day a document sealed with the key may bear")
    revoked_on: datetime.date | None = Field(None, description="the key seals nothing dated on or after this day")
    revocation_reason: str = Field("", description="why the key was revoked, as the issuing agency said")

    @model_validator(mode="after")
    def _one_key(self) -> TrustEntry:
        if (self.public_key is None) == (self.certificate is None):
            raise ValueError("give exactly one of public_key and certificate")
        self._trusted = parse_pem(self.agency, self.key_id, self.certificate or self.public_key or "",
                                  self.valid_from, self.valid_until, self.revoked_on, self.revocation_reason)
        return self

    def trusted(self) -> TrustedKey:
        return self._trusted


class SealSettings(BaseModel):
    """Checking the electronic seals on legal documents (the standard's Document/Signature)."""

    model_config = ConfigDict(extra="forbid")

    trust: list[TrustEntry] = Field(default_factory=list, description="issuing agencies' seal keys")
    must_seal: list[str] = Field(
        default_factory=list, description="document types (code list document-types) that must bear a valid seal")
    failure: Literal["block", "warn"] = Field(
        "block", description="what a missing or failed seal on a document that must be sealed does; a failed "
        "seal on any other document warns")

    @property
    def active(self) -> bool:
        return bool(self.trust or self.must_seal)

"""The `gateway.evidence` settings: whether evidence is issued, and with which key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EvidenceSettings(BaseModel):
    """Signed evidence of submission (every receipt) and of delivery (every receiver's confirmation)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="issue signed evidence documents with receipts and deliveries")
    key: str | None = Field(
        None, description="PEM private key that signs evidence; default DATA_DIR/evidence-key.pem (made on first "
        "start, readable by the node's user only), with its certificate beside it as evidence-cert.pem")
    algorithm: Literal["ecdsa-p256-sha256"] = Field(
        "ecdsa-p256-sha256", description="XML-DSig signature algorithm (xmldsig-more#ecdsa-sha256); SM2 is not "
        "offered: no maintained XML-DSig implementation signs with it")

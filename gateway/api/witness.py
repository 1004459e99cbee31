"""This node as a witness for its peers' exchange logs: it keeps their checkpoints append-only and
acknowledges each with its own signature (gateway.audit.witness)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException

from gateway.api.auth import GatewayDep, Principal, require
from gateway.api.errors import answers
from gateway.audit.witness import PeerWitness, WitnessError

router = APIRouter(tags=["witness"])
WitnessKey = Annotated[Principal, Depends(require("witness"))]
WitnessReader = Annotated[Principal, Depends(require("witness", "auditor"))]


def _witness(gw: GatewayDep) -> PeerWitness:
    assert gw.signer is not None  # set when the node starts, before the API serves
    return PeerWitness(gw.config.gateway.data_dir, gw.signer)


@router.post("/api/v1/witness", summary="keep a peer's signed checkpoint; answers a signed acknowledgement",
             responses=answers(400, 401, 403))
async def take(gw: GatewayDep, p: WitnessKey, checkpoint: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    try:
        return _witness(gw).take(checkpoint)
    except WitnessError as e:
        raise HTTPException(400, str(e)) from None


@router.get("/api/v1/witness/{key_id}", summary="the checkpoints kept for the log signed by one key",
            responses=answers(400, 401, 403))
async def held(gw: GatewayDep, p: WitnessReader, key_id: str) -> dict[str, Any]:
    try:
        return {"key_id": key_id, "checkpoints": _witness(gw).held(key_id)}
    except WitnessError as e:
        raise HTTPException(400, str(e)) from None

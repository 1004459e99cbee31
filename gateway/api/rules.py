"""Which rules a node judges records by: the standard's, as this deployment adapted them.

Operators and auditors read it (and the console shows it) beside the exchange log, where each
node's start records the same list (`rules-adapted`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.api.auth import GatewayDep, ReaderKey
from gateway.api.errors import answers

router = APIRouter(tags=["rules"])


@router.get("/api/v1/rules/adaptations", summary="adaptations of the standard's rules in force on this node",
            responses=answers(401, 403))
async def adaptations(gw: GatewayDep, p: ReaderKey) -> dict[str, Any]:
    cfg = gw.config
    return {"node": gw.node, "standard_versions": cfg.gateway.standard_versions,
            "adaptations": [a.as_dict() for a in cfg.rule_adaptations()],
            "unknown_codes_warn": cfg.unknown_codes_warned()}

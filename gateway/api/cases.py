"""A case's timeline: every record exchanged under one unified case number, in order, with its
delivered and answered times. Operators and auditors see every case; an agency only the cases it
took part in, and of those what `views.case_for_agency` lets it see."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from gateway import timeline
from gateway.api import views
from gateway.api.auth import AnyKey, GatewayDep, refuse
from gateway.api.errors import answers

router = APIRouter(tags=["cases"])


@router.get("/api/v1/cases/{number:path}", summary="a case's timeline: every record of the case in order, with "
            "stage, action, sender, receivers, received, delivered and answered times, blocked and returned "
            "records, documents and dossier size", responses=answers(401, 404))
async def case(request: Request, gw: GatewayDep, number: str, p: AnyKey) -> dict[str, Any]:
    records = [timeline.described(r) for r in await gw.store.case_timeline(number)]
    if p.role == "agency":
        shown = views.case_for_agency(str(p.agency), records)
        if records and not shown:  # answered as an unknown case, logged for the auditors
            await refuse(request, p.name, f"case {number} is not one agency {p.agency} took part in")
        records = shown
    if not records:
        raise HTTPException(404, f"no case {number}")
    return {"case_number": number, "records": records}

"""Statistics and daily rankings for supervisors: an agency sees its own figures and the ranking
table; operators and auditors see every agency."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from gateway.api.auth import AnyKey, GatewayDep, Principal
from gateway.api.errors import answers
from gateway.stats import export, service
from gateway.stats.report import StatsError

router = APIRouter(tags=["statistics"])
Day = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD (Asia/Shanghai)")]


def _invalid(e: StatsError) -> RequestValidationError:
    """Answered 422 like any other invalid parameter, naming it."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", e.param), "msg": str(e), "input": None}])


def _agency_for(p: Principal, agency: str | None) -> str | None:
    """An agency key reads only its own rows, whatever it asks for."""
    if p.role in ("operator", "auditor"):
        return agency
    if agency is not None and agency != p.agency:
        raise HTTPException(403, f"只能查看本单位的统计 / an agency key reads only its own figures ({p.agency})")
    return p.agency


@router.get("/api/v1/stats", summary="figures per agency and day over a range", responses=answers(401, 403),
            description="Each agency's figures per day and over the range (`total`). The time-limit figures are "
                        "in `total` only, for the agency responsible for answering: `clocks_on_time` and "
                        "`clocks_late` count the answers given within the range (by the day of the answer); "
                        "`clocks_overdue_now` is a live count of the clocks running past their last day at the "
                        "moment of the request, not a daily aggregate, so it is the same for any range.")
async def stats(gw: GatewayDep, p: AnyKey, agency: str | None = None,
                first: Annotated[Day, Query(alias="from")] = None, last: Annotated[Day, Query(alias="to")] = None,
                ) -> dict[str, Any]:
    try:
        return await service.stats(gw.store, gw.config, first, last, _agency_for(p, agency), now=gw.clock_now())
    except StatsError as e:
        raise _invalid(e) from None


@router.get("/api/v1/rankings", summary="the ranking of one day per role (frozen in the log once the day is over)",
            responses=answers(401, 403))
async def rankings(gw: GatewayDep, p: AnyKey, day: Day = None, role: str | None = None) -> dict[str, Any]:
    try:
        return await service.rankings(gw.store, gw.config, day, role, actor=p.name)
    except StatsError as e:
        raise _invalid(e) from None


@router.get("/api/v1/stats/export", summary="a month's figures as XLSX or CSV (Chinese sheet and column names)",
            response_class=Response,
            responses={200: {"description": "the monthly report", "content": {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}, "text/csv": {}}},
                **answers(401, 403)})
async def export_month(gw: GatewayDep, p: AnyKey,
                       month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
                       format: Annotated[str, Query(pattern="^(xlsx|csv)$")] = "xlsx",
                       agency: str | None = None) -> Response:
    try:
        data = await export.month(gw.store, gw.config, month, format, _agency_for(p, agency),
                                  now=gw.clock_now())
    except StatsError as e:
        raise _invalid(e) from None
    media = export.MEDIA[format]
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="stats-{month}.{format}"'})

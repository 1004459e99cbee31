"""POST /api/v1/validate: a case system asks what the gateway would say of a record, before sending it.

The body is what the agency would submit: the record itself, or multipart/form-data with part
`record` and parts `file` (dossier files), read by the HTTP adapter's own reader and bounded the
same way. The answer is the verdict of `gateway.validation`; nothing is stored or logged.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from adapters.http import BodyRefused, InboundSettings, read_body
from gateway.api.auth import AgencyKey, GatewayDep, own_inbound, refuse
from gateway.api.errors import answers
from gateway.errors import Busy
from gateway.files import FileStore
from gateway.model import InboundRecord
from gateway.verdict import RateLimited

router = APIRouter(tags=["agencies"])

_BINARY = {"type": "string", "format": "binary"}
_BODY = {"requestBody": {"required": True, "description": "the record as the agency would submit it: the record "
                         "itself, or multipart/form-data with part 'record' and parts 'file'", "content": {
    **{media: {"schema": _BINARY} for media in ("application/xml", "text/xml")},
    "multipart/form-data": {"schema": {"type": "object", "required": ["record"], "additionalProperties": False,
                                       "properties": {
        "record": _BINARY, "file": {"type": "array", "items": _BINARY}}}}}}}


@router.post("/api/v1/validate", summary="check a record as submission would, without sending it: findings "
             "(rule, severity, message in Chinese and English, location) and where it would go; nothing is kept",
             openapi_extra=_BODY, responses=answers(400, 401, 403, 413, 422, 429, 503))
async def validate(request: Request, gw: GatewayDep, p: AgencyKey,
                   channel: Annotated[str | None, Query(description="the inbound channel whose pack reads the "
                                                                     "record; default the agency's first")] = None,
                   ) -> Response:
    agency, ch = await own_inbound(request, gw, p, channel)
    max_files = getattr(ch.adapter_settings, "max_dossier_bytes", InboundSettings().max_dossier_bytes)
    files = FileStore.for_data_dir(gw.config.gateway.data_dir)
    assert gw.pipeline is not None
    try:
        with gw.pipeline.admission.slot(ch.name):  # taken before the body is read, as for a submission
            body = await read_body(request, files, gw.config.gateway.max_message_bytes, max_files, keep_files=False)
            if not body.data:
                raise HTTPException(422, "请求中没有记录 / there is no record in the request body")
            verdict = await gw.validate(InboundRecord(
                channel=ch.name, sender=agency.code, body=body.data, file_name=body.file_name,
                content_type=body.content_type, attachments=body.attachments, operation="validate"))
    except BodyRefused as e:
        await refuse(request, p.name, e.why, e.rule)
        headers = {"Retry-After": str(e.retry_after)} if e.retry_after else None
        raise HTTPException(e.status, e.text, headers=headers) from None
    except ClientDisconnect:
        return Response(status_code=400)
    except RateLimited as e:
        raise HTTPException(429, str(e), headers={"Retry-After": str(e.retry_after)}) from None
    except Busy as e:
        raise HTTPException(503, e.message, headers={"Retry-After": str(e.retry_after)}) from None
    return JSONResponse(verdict.as_json())

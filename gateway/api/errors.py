"""The refusals the API answers, described once for the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

RETRY_AFTER = {"Retry-After": "2"}  # a 503's advice: a database restart or failover is over in about that time


class Problem(BaseModel):
    """What every refusal carries: a sentence saying what was wrong and what to do."""

    detail: str


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of an operation: each refusal it may answer, with its meaning."""
    meaning = {
        400: "the request is malformed", 401: "no API key, or one the gateway does not know",
        403: "the key may not do this", 404: "no such message, delivery or case",
        409: "the state changed meanwhile, or the same work is already running",
        413: "the body is over the size limit", 422: "the parameters are not valid",
        429: "too many requests from this client; wait as Retry-After says",
        503: "the gateway cannot take this just now; send it again later (Retry-After)",
    }
    if 401 in codes:  # a client that keeps presenting wrong keys is slowed down before any key is read
        codes = (*codes, 429)
    return {c: {"model": Problem, "description": meaning[c]} for c in codes}

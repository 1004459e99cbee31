"""Query parameters that take one value are refused when given twice, not read as the last one.

`?state=dead&state=waiting` looks like a filter on either state, but would list only the waiting
deliveries; `?limit=10&limit=100000` would page past a bound a proxy in front checked on the
first. Both are answered 422 like any other invalid parameter, saying which one was repeated.
"""

from __future__ import annotations

import typing
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

_MANY = (list, set, frozenset, tuple)


def _takes_many(annotation: Any) -> bool:
    """True for list[str], set[int] | None and the like: those parameters may be repeated."""
    if typing.get_origin(annotation) in _MANY or annotation in _MANY:
        return True
    return any(_takes_many(a) for a in typing.get_args(annotation))


async def single_valued_query(request: Request) -> None:
    """An app-wide dependency: each of the operation's own one-value query parameters at most once."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or len(request.query_params) == len(request.query_params.multi_items()):
        return
    errors = []
    for param in dependant.query_params:
        values = request.query_params.getlist(param.alias)
        if len(values) > 1 and not _takes_many(param.field_info.annotation):
            errors.append({"type": "repeated", "loc": ("query", param.alias), "input": values,
                           "msg": f"parameter {param.alias} may be given only once"})
    if errors:
        raise RequestValidationError(errors)

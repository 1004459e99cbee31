"""The node's ASGI app: the REST API's routers per audience and the push adapters' endpoints on one port.

Operators see queues, failures with reasons, and replay or discard; auditors query the exchange
log; agencies submit and read their own messages (OpenAPI at /docs). The API serves a Gateway
the runtime runs: the app's lifespan is the Gateway's own (`Gateway.running`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.api import (
    agencies,
    auditors,
    cases,
    clocks,
    conformance,
    console,
    evidence,
    operations,
    operators,
    rules,
    stats,
    validate,
    witness,
)
from gateway.api.auth import configured_key_hashes, register_keys
from gateway.api.errors import internal_error
from gateway.api.params import single_valued_query
from gateway.runtime import Gateway


class PushFirst:
    """The gateway's ASGI app: a push adapter's request goes straight to its route, the rest to the API.

    Records from legacy systems are the hot path. FastAPI's per-request work (telemetry checks,
    error pages, exception handlers, body limits, dependency exit stacks) serves the REST API and
    cost about a third of the HTTP handling per record, while the adapters' endpoints answer
    every error themselves. Anything that is not exactly a push route, with one of its methods,
    goes through the full API as before (so a wrong method still gets the API's 405).
    """

    def __init__(self, api: FastAPI, routes: dict[str, Route]) -> None:
        self.api = api
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.routes.get(scope["path"])
            if route is not None and (not route.methods or scope["method"] in route.methods):
                await route.handle(scope, receive, send)
                return
        await self.api(scope, receive, send)


def create_app(gw: Gateway, ready: asyncio.Event | None = None) -> PushFirst:
    """The API over `gw`; serving it runs the gateway (started unless it already runs), and `ready` is
    set once keys are registered and requests are answered."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gw.running():
            await register_keys(gw)
            app.state.key_hashes = configured_key_hashes(gw.config)
            if ready is not None:
                ready.set()
            yield

    app = FastAPI(
        title="Case Exchange Gateway",
        version="0.1.0",
        description="Moves criminal-case records between justice agencies; see /docs for every operation.",
        lifespan=lifespan,
        dependencies=[Depends(single_valued_query)],
    )
    app.state.gateway = gw
    app.add_exception_handler(Exception, internal_error)
    app.state.replaying = asyncio.Lock()
    app.state.verifying = asyncio.Lock()
    app.state.registering = asyncio.Lock()
    app.state.key_hashes = None
    for module in (operations, agencies, operators, auditors, rules, validate, conformance, witness, cases,
                   evidence, clocks, stats):
        app.include_router(module.router)
    console.mount(app)
    gw.build()
    push: dict[str, Route] = {}
    for adapter in gw.inbound.values():
        for route in adapter.routes():
            app.router.routes.append(route)  # also reachable through the API's stack, and listed there
            if isinstance(route, Route) and not route.param_convertors:
                push[route.path] = route
    return PushFirst(app, push)

"""An ASGI app (a receiver, or a gateway) under uvicorn on loopback, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from gateway.sim.server import loopback_socket


@contextlib.asynccontextmanager
async def serving(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 inside the running loop; yields the base URL.

    Without a port it takes a free one, bound before serving so that nothing else can take it.
    """
    sock = loopback_socket() if port is None else None
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port or 0, log_level="warning",
                                           lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock] if sock else None))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it could not start
            assert loop.time() < deadline, f"server on port {port} did not start"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1] if sock else port}"
    finally:
        server.should_exit = True
        await task
        if sock:
            sock.close()

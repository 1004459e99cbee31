"""Several uvicorn servers in one event loop, each on its own loopback socket.

uvicorn's `Server.serve` takes over SIGINT/SIGTERM for itself; when one process runs the gateway
and the simulated agencies side by side, the caller owns the signals and stops every server.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator
from typing import Any, Literal

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its caller (set `should_exit` to stop it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def loopback_socket() -> socket.socket:
    """A listening socket on a free loopback port, bound now so no other process can take the port.

    Created as IPPROTO_TCP, not protocol 0: asyncio turns Nagle off (TCP_NODELAY) only on accepted
    sockets whose protocol says TCP, and with Nagle on every answer on a kept-alive connection
    waits about 40 ms for the client's delayed ACK."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def embedded(app: Any, *, lifespan: Literal["on", "off"] = "off") -> EmbeddedServer:
    return EmbeddedServer(uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan))

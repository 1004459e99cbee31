"""Serving a node: the runtime's Gateway behind the API and push endpoints, under uvicorn, one port."""

from __future__ import annotations

import asyncio
import socket
import ssl

from gateway.api.app import create_app
from gateway.api.listener import Limits, protocol_class
from gateway.config import GatewayConfig, TlsSettings
from gateway.errors import ConfigError
from gateway.runtime import Gateway


def tls_context(tls: TlsSettings | None) -> ssl.SSLContext | None:
    """The server's TLS context, the files loaded here so that a wrong path, key or password is a
    configuration error naming the file, not a traceback from the server."""
    if tls is None:
        return None
    password = tls.key_password.resolve() if tls.key_password else None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.cert_file, tls.key_file, password)
        if tls.client_ca_file:
            ctx.load_verify_locations(tls.client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:
        files = ", ".join(f for f in (tls.cert_file, tls.key_file, tls.client_ca_file) if f)
        raise ConfigError(f"gateway.api.tls: cannot load {files}: {getattr(e, 'strerror', None) or e}") from None
    return ctx


async def serve(config: GatewayConfig, *, ready: asyncio.Event | None = None, sock: socket.socket | None = None,
                worker: int | None = None) -> None:
    """Run one gateway node until SIGINT/SIGTERM: API and push adapters on one port; as one of the
    node's worker processes (gateway.workers), on the socket the parent bound for all of them."""
    import uvicorn

    api = config.gateway.api
    tls = tls_context(api.tls)  # a bad certificate file stops here, named, before anything starts
    gw = Gateway(config, whole_process=True, worker=worker)
    # TLS runs inside each connection's protocol (listener.TlsLayer), so uvicorn itself is told nothing of it;
    # that protocol is a BufferedProtocol, which asyncio serves although uvicorn's hint names Protocol only
    http = protocol_class(Limits(api, tls, gw.metrics, gw.refusals))
    server = uvicorn.Server(uvicorn.Config(
        create_app(gw, ready), host=api.host, port=api.port, log_level="warning", lifespan="on", access_log=False,
        http=http, ws="none", timeout_keep_alive=api.keep_alive_timeout,  # type: ignore[arg-type]
    ))
    await server.serve(sockets=[sock] if sock is not None else None)

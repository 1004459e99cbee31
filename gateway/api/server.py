"""Serving a node: the runtime's Gateway behind the API and push endpoints, under uvicorn, one port."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from gateway.api.app import create_app
from gateway.config import GatewayConfig, TlsSettings
from gateway.errors import ConfigError
from gateway.runtime import Gateway


def tls_options(tls: TlsSettings | None) -> dict[str, Any]:
    """uvicorn's TLS arguments, after loading the files once here so that a wrong path, key or
    password is a configuration error naming the file, not a traceback from the server."""
    if tls is None:
        return {}
    password = tls.key_password.resolve() if tls.key_password else None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.cert_file, tls.key_file, password)
        if tls.client_ca_file:
            ctx.load_verify_locations(tls.client_ca_file)
    except (OSError, ssl.SSLError) as e:
        files = ", ".join(f for f in (tls.cert_file, tls.key_file, tls.client_ca_file) if f)
        raise ConfigError(f"gateway.api.tls: cannot load {files}: {getattr(e, 'strerror', None) or e}") from None
    options: dict[str, Any] = {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file,
                               "ssl_keyfile_password": password}
    if tls.client_ca_file:
        options.update(ssl_ca_certs=tls.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


async def serve(config: GatewayConfig, *, ready: asyncio.Event | None = None) -> None:
    """Run one gateway node until SIGINT/SIGTERM: API and push adapters on one port."""
    import uvicorn

    tls = tls_options(config.gateway.api.tls)  # a bad certificate file stops here, named, before anything starts
    gw = Gateway(config, whole_process=True)
    server = uvicorn.Server(uvicorn.Config(
        create_app(gw, ready), host=config.gateway.api.host, port=config.gateway.api.port, log_level="warning",
        lifespan="on", access_log=False, **tls,
    ))
    await server.serve()

"""`python -m gateway CONFIG`: run one gateway node from a configuration file until SIGTERM.

Every log line names the node, so the lines of several nodes can be told apart once collected.
A node refuses to start, before it listens on a port, on a database schema it does not know.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayError
from gateway.store import make_store
from gateway.store.migrations import SchemaMismatch, check


async def _check_schema(config: GatewayConfig) -> None:
    """An empty database is initialised by the store at start; any other must match exactly."""
    store = make_store(config)
    version = await store.schema_version()
    if version:
        backend = "postgres" if config.gateway.store.backend == "postgres" else "sqlite"
        check(version, "of this gateway", backend)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1].startswith("-"):
        print("usage: python -m gateway CONFIG.yaml", file=sys.stderr)
        return 2
    try:
        config = load_config(argv[1])
    except GatewayError as e:
        print(e, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {config.gateway.node} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per delivery attempt is the store's job
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is an optional speed-up
        pass
    from gateway.api.server import serve
    from gateway.workers import run, worker_count

    try:
        asyncio.run(_check_schema(config))
        workers = worker_count(config.gateway.workers)
        if workers > 1:
            return run(config, workers)
        asyncio.run(serve(config))
    except SchemaMismatch as e:
        print(f"gateway node {config.gateway.node} refuses to start: {e}", file=sys.stderr)
        return 3
    except GatewayError as e:  # e.g. a TLS certificate file that cannot be loaded
        print(f"gateway node {config.gateway.node} refuses to start: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

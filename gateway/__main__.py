"""`python -m gateway CONFIG`: run one gateway node from a configuration file until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.runtime import serve


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m gateway CONFIG.yaml", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(argv[1])
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is an optional speed-up
        pass
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

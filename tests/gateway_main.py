"""Run one gateway node from a config file, logging to stderr: the process crash tests and benchmarks kill."""

from __future__ import annotations

import asyncio
import logging
import sys

from gateway.api.server import serve
from gateway.config import load_config

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(load_config(sys.argv[1])))

"""The node's background task that freezes each finished day's ranking into the exchange log soon
after midnight (Asia/Shanghai), so a day is ranked once even if nobody asks for it that week."""

from __future__ import annotations

import asyncio
import logging

from gateway.config import GatewayConfig
from gateway.stats.ranking import freeze_finished_days
from gateway.stats.service import units
from gateway.store.base import Store

log = logging.getLogger("gateway.stats")
EVERY_SECONDS = 600.0


async def run(store: Store, config: GatewayConfig, node: str, every: float = EVERY_SECONDS) -> None:
    """Every `every` seconds one node of the cluster freezes the last week's finished days not frozen yet."""
    while True:
        await asyncio.sleep(every)  # not at start: a starting node has other work, and days wait
        try:
            async with store.locked("stats-freeze") as mine:
                if mine:
                    done = await freeze_finished_days(store, units(config), config.gateway.stats.ranking_score, node)
                    if done:
                        log.info("rankings frozen into the exchange log: %s", ", ".join(done))
        except Exception:  # the database is away for a moment: try again at the next round
            log.exception("freezing the daily rankings failed; trying again in %.0f s", every)

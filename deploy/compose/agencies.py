"""The demo's simulated police, procuratorate and court as one container for docker-compose.

Each agency listens on its own port (police 9101, procuratorate 9102, court 9103) for deliveries
and answers into the gateway nodes named in GATEWAY_URLS (the next node when one is down).
Police opens CASES cases at start; the rest of the flow follows from the agencies' answers.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import uvicorn

from gateway.sim.agencies import CourtSystem, PoliceSystem, ProcuratorateSystem
from gateway.sim.http import HttpAgency
from gateway.sim.server import EmbeddedServer

PORTS = {"POLICE": 9101, "PROC": 9102, "COURT": 9103}


def _key(code: str) -> str:
    return Path(f"/run/secrets/{code.lower()}_key").read_text(encoding="utf-8").strip()


def _log(event: str, step: object, src: str, dst: str, detail: str) -> None:
    print(f"{event}: {step} {src} -> {dst} ({detail})", flush=True)


async def main() -> None:
    urls = os.environ.get("GATEWAY_URLS", "http://gateway-1:8080").split(",")
    police = PoliceSystem("POLICE")
    systems = {"POLICE": police, "PROC": ProcuratorateSystem("PROC"), "COURT": CourtSystem("COURT")}
    agencies = {
        code: HttpAgency(
            s, submit_url=f"{urls[i % len(urls)]}/inbound/{code.lower()}-in", api_key=_key(code), observe=_log
        )
        for i, (code, s) in enumerate(systems.items())
    }
    servers = [
        EmbeddedServer(uvicorn.Config(a.app(), host="0.0.0.0", port=PORTS[c], log_level="warning"))
        for c, a in agencies.items()
    ]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    for i in range(int(os.environ.get("CASES", "20"))):
        await agencies["POLICE"].submit(police.open_case(f"DEMO-{i + 1:04d}"))
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main())

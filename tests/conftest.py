"""Shared fixtures: a small three-agency configuration and records in the shared standard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import GatewayConfig, parse_config
from gateway.sim.records import MINIMAL_CONTENT

NS = "urn:cn:justice:case-exchange:1"


def record(case: str = "C2026-0001", stage: str = "prosecution-review", action: str = "transfer-for-prosecution",
           sender: str = "POLICE", extra: str = "", version: str = "1.0") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{NS}" version="{version}">'
            f"<CaseNumber>{case}</CaseNumber><Stage>{stage}</Stage><Action>{action}</Action>"
            f"<Sender>{sender}</Sender>"
            f"<LocalNumbers><LocalNumber agency='{sender}'>L-{case}</LocalNumber></LocalNumbers>"
            f"{MINIMAL_CONTENT}<Content><Note>{extra}</Note></Content></CaseRecord>").encode()


def base_config(data_dir: Path, *, outbound: dict[str, Any] | None = None, **gateway: Any) -> dict[str, Any]:
    out = outbound or {"adapter": "memory"}
    return {
        "gateway": {"node": "test-node", "data_dir": str(data_dir), "store": {"durability": "normal"}, **gateway},
        "agencies": [
            {"code": "POLICE", "name": "City Police", "role": "police",
             "inbound": [{"name": "police-in", "adapter": "memory"}],
             "outbound": {"name": "police-out", **out}},
            {"code": "PROC", "name": "City Procuratorate", "role": "procuratorate",
             "inbound": [{"name": "proc-in", "adapter": "memory"}],
             "outbound": {"name": "proc-out", **out, "retry": {"initial_backoff": 0.05, "max_backoff": 0.2,
                                                               "jitter": 0.01, "max_attempts": 50}}},
            {"code": "COURT", "name": "City Court", "role": "court",
             "outbound": {"name": "court-out", **out}},
        ],
        "routes": [
            {"stage": "prosecution-review", "action": "transfer-for-prosecution", "to": ["PROC"]},
            {"stage": "trial", "action": "indictment", "to": ["COURT"]},
            {"stage": "trial", "action": "judgment", "to": ["PROC", "POLICE"]},
        ],
    }


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    return parse_config(base_config(tmp_path / "data"))

"""A node with every shipped pack on its own agency, each reachable over HTTP and SOAP: what the
validation service and conformance tests send the packs' samples to."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapters.memory import MemoryOutbound
from gateway.api.app import create_app
from gateway.config import parse_config
from gateway.demo import AGENCIES, PACKS, ROUTES
from gateway.mapping import MappingPack, load_pack
from gateway.runtime import Gateway

from .serving import serving

KEYS = {code: f"{code.lower()}-validation-key-1" for code, *_ in AGENCIES} | {"OPERATOR": "operator-validation-key-1"}
SOAP_PASSWORDS = {code: f"{code.lower()}-soap-pw-1" for code, *_ in AGENCIES}


def packs() -> list[MappingPack]:
    """Every shipped pack that speaks for an agency (all but identity)."""
    return [load_pack(PACKS[code]) for code, *_ in AGENCIES]


def packs_config(data_dir: Path, **agency_extra: Any) -> dict[str, Any]:
    """Each agency sends over HTTP (CODE-in) and SOAP (CODE-soap) with its pack, and receives in memory."""
    for code, key in KEYS.items():
        os.environ[f"VALIDATION_TEST_{code}_KEY"] = key
    for code, pw in SOAP_PASSWORDS.items():
        os.environ[f"VALIDATION_TEST_{code}_SOAP"] = pw
    agencies = []
    for code, name, role, _ in AGENCIES:
        pack = PACKS[code]
        agencies.append({
            "code": code, "name": name, "role": role, "api_key": {"env": f"VALIDATION_TEST_{code}_KEY"},
            "inbound": [{"name": f"{code.lower()}-in", "adapter": "http", "mapping": pack},
                        {"name": f"{code.lower()}-soap", "adapter": "soap", "mapping": pack,
                         "settings": {"password": {"env": f"VALIDATION_TEST_{code}_SOAP"}}}],
            "outbound": {"name": f"{code.lower()}-out", "adapter": "memory", "mapping": pack},
            **agency_extra.get(code, {}),
        })
    return {
        "gateway": {"node": "validation-node", "data_dir": str(data_dir), "store": {"durability": "normal"},
                    "api": {"min_key_length": 1}},
        "agencies": agencies,
        "routes": [{"stage": stage, "action": action, "to": to} for (stage, action), to in ROUTES],
        "access": {"operators": [{"name": "ops-zhao", "key": {"env": "VALIDATION_TEST_OPERATOR_KEY"}}]},
    }


def write_config(data: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class PacksNode:
    url: str
    gateway: Gateway
    outs: dict[str, MemoryOutbound]

    def message_count(self) -> int:
        db = Path(self.gateway.config.gateway.data_dir) / "gateway.db"
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])

    async def log_length(self) -> int:
        return (await self.gateway.store.audit_head())[0]


@contextlib.asynccontextmanager
async def packs_node(data_dir: Path, **agency_extra: Any) -> AsyncIterator[PacksNode]:
    outs = {code: MemoryOutbound() for code, *_ in AGENCIES}
    gw = Gateway(parse_config(packs_config(data_dir, **agency_extra)), outbound=outs)  # type: ignore[arg-type]
    async with serving(create_app(gw)) as url:
        yield PacksNode(url, gw, outs)

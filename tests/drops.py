"""Helpers for file-drop tests (folder and SFTP): records listing dossier files, configs, waiting."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig, parse_config

from .conftest import NS, base_config


def dossier_record(
    case: str,
    files: dict[str, bytes | str],
    *,
    stage: str = "prosecution-review",
    action: str = "transfer-for-prosecution",
    note: str = "",
) -> bytes:
    """A standard record whose Content lists dossier files with their SHA-256 (bytes, or a hex digest)."""
    items = "".join(
        f"<File><Name>{name}</Name><SHA256>{d if isinstance(d, str) else hashlib.sha256(d).hexdigest()}"
        f"</SHA256></File>"
        for name, d in files.items()
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{NS}" version="1.0">'
        f"<CaseNumber>{case}</CaseNumber><Stage>{stage}</Stage><Action>{action}</Action>"
        f"<Sender>POLICE</Sender><Content><Note>{note}</Note><Dossier>{items}</Dossier></Content>"
        f"</CaseRecord>"
    ).encode()


def drop_dict(
    data_dir: Path, inbound: dict[str, Any], outbound: dict[str, Any], **gateway: Any
) -> dict[str, Any]:
    """base_config with POLICE dropping files (inbound) and PROC reading files (outbound)."""
    cfg = base_config(data_dir, **gateway)
    cfg["agencies"][0]["inbound"] = [{"name": "police-in", **inbound}]
    proc_out = cfg["agencies"][1]["outbound"]
    cfg["agencies"][1]["outbound"] = {"name": "proc-out", "retry": proc_out["retry"], **outbound}
    return cfg


def drop_config(
    data_dir: Path, inbound: dict[str, Any], outbound: dict[str, Any], **gateway: Any
) -> GatewayConfig:
    return parse_config(drop_dict(data_dir, inbound, outbound, **gateway))


async def wait_for(
    pred: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    end = time.monotonic() + timeout
    while True:
        got = pred()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        assert time.monotonic() < end, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.05)


def visible(directory: Path) -> list[str]:
    """Names a receiver would take: regular files without a temporary (dot) name."""
    return sorted(p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))

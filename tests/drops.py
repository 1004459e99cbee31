"""Helpers for file-drop tests (folder and SFTP): records listing dossier files, configs, waiting."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig, parse_config
from gateway.sim.records import MINIMAL_CONTENT

from .conftest import NS, base_config


def dossier_record(
    case: str,
    files: dict[str, bytes | tuple[str, int]],
    *,
    stage: str = "prosecution-review",
    action: str = "transfer-for-prosecution",
    note: str = "",
) -> bytes:
    """A standard record whose Dossier lists `files` (their bytes, or (sha256, size)) by name."""
    items = []
    for i, (name, data) in enumerate(files.items()):
        digest, size = (hashlib.sha256(data).hexdigest(), len(data)) if isinstance(data, bytes) else data
        media = mimetypes.guess_type(name)[0] or "application/pdf"
        items.append(
            f"<File id='f{i}'><Name>{name}</Name><MediaType>{media}</MediaType><Size>{size}</Size>"
            f"<SHA256>{digest}</SHA256></File>"
        )
    content = MINIMAL_CONTENT[: MINIMAL_CONTENT.index("<Dossier>")] + f"<Dossier>{''.join(items)}</Dossier>"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{NS}" version="1.0">'
        f"<CaseNumber>{case}</CaseNumber><Stage>{stage}</Stage><Action>{action}</Action>"
        f"<Sender>POLICE</Sender><LocalNumbers><LocalNumber agency='POLICE'>L-{case}</LocalNumber>"
        f"</LocalNumbers>{content}<Content><Note>{note}</Note></Content></CaseRecord>"
    ).encode()


def drop(directory: Path, stem: str, case: str, **kw: Any) -> bytes:
    """Write a record STEM.xml with one small dossier file STEM.scan.pdf beside it (the file first)."""
    scan = f"scan of {case}".encode()
    (directory / f"{stem}.scan.pdf").write_bytes(scan)
    body = dossier_record(case, {f"{stem}.scan.pdf": scan}, **kw)
    (directory / f"{stem}.xml").write_bytes(body)
    return body


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


async def same_name_in_two_cases(gw: Any, out: Path) -> None:
    """Two cases whose dossiers both list 起诉意见书.pdf, submitted through the memory channel police-in,
    arrive at the drop `out` each with its own file (a folder per message), byte for byte."""
    from gateway.files import FileStore
    from gateway.model import Attachment, MessageStatus

    files = FileStore.for_data_dir(gw.config.gateway.data_dir)
    name = "起诉意见书.pdf"
    sent: dict[str, bytes] = {}
    for case in ("A2026-0709", "A2026-0711"):
        data = f"%PDF {case} ".encode() + os.urandom(5000)
        sha, size = files.put_stream([data])
        receipt = await gw.inbound["police-in"].submit(
            dossier_record(case, {name: data}), attachments=(Attachment(name, sha, size, "application/pdf"),))
        assert receipt.status == MessageStatus.ACCEPTED, receipt.reasons
        sent[receipt.message_id] = data

    async def delivered() -> bool:
        ds = await gw.store.list_deliveries(limit=10)
        return len(ds) == 2 and all(d["state"] == "delivered" for d in ds)

    await wait_for(delivered, 30, "both delivered")
    for message_id, data in sent.items():
        assert (out / message_id / name).read_bytes() == data
        assert (out / f"{message_id}.xml").exists()

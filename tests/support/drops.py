"""File drops (folder and SFTP): writing records with their dossier files, the configurations,
and the receiving side that takes what appears in a directory."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig, parse_config

from .config import base_config
from .records import dossier_record
from .waiting import wait_for


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
        return len(ds) == 2 and all(d.state == "delivered" for d in ds)

    await wait_for(delivered, 30, "both delivered")
    for message_id, data in sent.items():
        assert (out / message_id / name).read_bytes() == data
        assert (out / f"{message_id}.xml").exists()


class FolderReceiver(threading.Thread):
    """The procuratorate's system: takes every visible record, checks it and its dossier are whole."""

    def __init__(self, out: Path, taken: Path, dossier: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.out, self.taken, self.dossier = out, taken, dossier
        self.cases: dict[str, int] = {}
        self.problems: list[str] = []
        self._checked: set[tuple[str, int, float]] = set()
        self.stop_flag = threading.Event()

    def run(self) -> None:
        self.taken.mkdir(parents=True, exist_ok=True)
        while not self.stop_flag.is_set():
            self.scan()
            time.sleep(0.02)

    def scan(self) -> None:
        if not self.out.is_dir():
            return
        for name in visible(self.out):
            p = self.out / name
            try:
                st = p.stat()
                if name.endswith(".xml"):
                    text = p.read_text(encoding="utf-8")
                    m = re.search(r"<CaseNumber>([^<]+)</CaseNumber>", text)
                    if not m or not text.rstrip().endswith("</CaseRecord>"):
                        self.problems.append(f"partial record visible as {name}")
                        continue
                    self.cases[m.group(1)] = self.cases.get(m.group(1), 0) + 1
                    p.rename(self.taken / f"{name}.{time.monotonic_ns()}")
                elif (name, st.st_size, st.st_mtime) not in self._checked:
                    self._checked.add((name, st.st_size, st.st_mtime))
                    digest = hashlib.sha256(p.read_bytes()).hexdigest()
                    if digest != self.dossier.get(name):
                        self.problems.append(
                            f"dossier file {name} visible but not whole ({st.st_size} bytes)"
                        )
            except FileNotFoundError:
                continue

"""The file-drop side of a simulated legacy system: the police's folders on its SFTP server.

It writes each record (GB18030, its own format) with its dossier files into the outbox the
gateway polls over SFTP, every file under a temporary name and renamed when complete, dossier
files first; and it reads what the gateway puts in its inbox (judgments, returns, defect
notices), moving each read file to inbox/read so it is acted on once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from pathlib import Path

from gateway.errors import InputRejected
from gateway.sim.agencies import AgencySystem
from gateway.sim.http import Observer
from gateway.sim.legacy import incoming, outgoing
from gateway.sim.records import CaseStep


class DropAgency:
    """Puts one AgencySystem on two directories: records out to `outbox`, deliveries in from `inbox`."""

    def __init__(self, system: AgencySystem, *, outbox: Path, inbox: Path, observe: Observer,
                 poll: float = 0.1) -> None:
        self.system, self.outbox, self.inbox, self.observe, self.poll = system, outbox, inbox, observe, poll
        self.sent_at: dict[tuple[str, str], list[float]] = {}  # (case, action) -> when each was in place
        self._seq = itertools.count(1)
        for d in (outbox, inbox, inbox / "read"):
            d.mkdir(parents=True, exist_ok=True)

    def submit(self, step: CaseStep) -> None:
        stem = f"{step.case_number}-{next(self._seq):03d}"
        out = outgoing(self.system.code, step.action, step.case_number, stem)
        for name, data in [*out.files.items(), (f"{stem}.xml", out.body)]:
            tmp = self.outbox / f".{name}.part"
            tmp.write_bytes(data)
            tmp.rename(self.outbox / name)
        self.sent_at.setdefault((step.case_number, step.action), []).append(time.time())
        self.observe("submitted", step, self.system.code, "gateway",
                     f"SFTP drop, {len(out.files)} dossier files, GB18030")

    async def run(self, stop: asyncio.Event) -> None:
        """Read the inbox until `stop`; answers go out as new drops."""
        while not stop.is_set():
            for path in sorted(self.inbox.glob("*.xml")):
                self._read(path)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll)

    def _read(self, path: Path) -> None:
        try:
            step = incoming(self.system.code, path.read_bytes())
        except InputRejected as e:
            unknown = CaseStep(path.name, "", "", "")
            self.observe("unreadable", unknown, "gateway", self.system.code, f"SFTP, {e.explain()}")
            step = None
        path.rename(self.inbox / "read" / path.name)
        if step is None:
            return
        self.observe("delivered", step, step.sender, self.system.code, "SFTP, file read")
        for answer in self.system.accept(step, path.name):
            self.submit(answer)

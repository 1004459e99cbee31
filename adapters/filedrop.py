"""File drops taken in, for the SFTP and folder adapters: what is complete, what was taken, where it goes.

Both adapters see a directory through a tiny `DropFS` interface (list, stat, read, write, rename,
remove, mkdir), so the rules live here once:

- a record is taken only when complete: a done-file beside it, the sender's rename from a
  temporary name, or size and mtime unchanged across two polls (never "old enough": a copied
  file keeps its old mtime);
- the record and its dossier files are fetched with SHA-256 computed on the way, dossier files
  streamed into the FileStore, and checked against the hashes the record lists;
- a file already ingested (same name, size and mtime) is never ingested again, even if moving it
  to the archive failed or the gateway died in between; the pipeline's content-hash check covers
  a crash between intake and marking;
- one node at a time polls a drop: each poll runs under the channel's cluster-wide store lock
  (`drop:CHANNEL`), held from the listing through fetch, intake, marking and the archive move, so
  two nodes never take the same file; a node that does not get the lock skips that poll. On
  PostgreSQL the lock is a session advisory lock that dies with a killed node's connection; on
  SQLite it only excludes tasks of one process, so several nodes need PostgreSQL;
- writing deliveries into a drop is `adapters/dropwriter.py`'s job.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import posixpath
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import tenacity
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import InboundAdapter, InboundContext, Intake
from adapters.dropcheck import Completeness, DeclaredFiles, files_listed_in_record
from gateway.audit.chain import AuditEvent
from gateway.backoff import Backoff
from gateway.files import CHUNK
from gateway.model import (
    Attachment,
    InboundRecord,
    MessageStatus,
    Receipt,
)

log = logging.getLogger("adapters.filedrop")


# -- the filesystem seen by a drop ------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    mtime: float


class Readable(Protocol):
    def read(self, n: int) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes) -> Any: ...


class DropFS(Protocol):
    """The few operations a drop needs; paths are POSIX strings."""

    def list_files(self, directory: str) -> list[Entry]: ...

    def stat(self, path: str) -> Entry | None: ...

    def open_read(self, path: str, size: int) -> AbstractContextManager[Readable]: ...

    def open_write(self, path: str) -> AbstractContextManager[Writable]: ...

    def rename(self, src: str, dst: str) -> None:
        """Atomic, replacing `dst` if it exists."""

    def remove(self, path: str) -> None: ...

    def makedirs(self, path: str) -> None: ...


class ChannelStopped(Exception):
    """A problem no retry can fix (a changed host key): the channel stops and says why."""


# -- settings -----------------------------------------------------------------------------------------
DEFAULT_IGNORE = [".*", "*.part", "*.tmp", "*.filepart", "*.error.txt"]


class DropInboundSettings(BaseModel):
    """Where a sender drops records, how the gateway knows one is complete, where it goes after."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="directory the sender drops records in")
    pattern: str = Field("*.xml", description="glob of record file names")
    ignore: list[str] = Field(
        default_factory=lambda: list(DEFAULT_IGNORE),
        description="globs of names never taken (temporary names of files being written)",
    )
    complete_when: Literal["stable", "done-file", "renamed"] = Field(
        "stable",
        description="stable: size and mtime unchanged across two polls; done-file: a marker file "
        "NAME+done_suffix exists; renamed: the sender writes under an ignored temporary "
        "name and renames, so every visible file is complete",
    )
    done_suffix: str = Field(".done", description="suffix of the done-file marker (complete_when: done-file)")
    poll_interval: float = Field(2.0, gt=0, description="seconds between two looks at the directory")
    stable_seconds: float = Field(
        0.0,
        ge=0,
        description="stable mode: also require this many seconds unchanged "
        "(for senders that pause between writes)",
    )
    attachments: str | None = Field(
        "{stem}.*",
        description="glob of the dossier files sent with a record, with "
        "{stem} and {name} of the record; null for none",
    )
    attachment_wait: float = Field(
        300.0,
        ge=0,
        description="seconds to wait for a dossier file the record lists "
        "before the record goes to the error directory",
    )
    after: Literal["archive", "delete"] = Field("archive", description="what happens to a file once ingested")
    archive_dir: str | None = Field(None, description="default PATH/archive")
    error_dir: str | None = Field(
        None, description="files that failed, each with NAME.error.txt; default PATH/error"
    )


class FileProblem(Exception):
    """This file cannot be ingested as it is; it goes to the error directory with this reason."""


# -- inbound ----------------------------------------------------------------------------------------------
_BACKOFF = Backoff(tenacity.wait_exponential_jitter(multiplier=0.5, max=30.0, jitter=0.5))


def backoff(attempt: int) -> float:
    """Seconds before reconnect attempt `attempt` (1, 2, ...), from tenacity's exponential-with-jitter."""
    return _BACKOFF.wait(attempt)


class DropInbound(InboundAdapter):
    """Polls a drop directory; subclasses say how to reach it (`connect`) and how to name it."""

    declared: DeclaredFiles = staticmethod(files_listed_in_record)

    def __init__(self, settings: DropInboundSettings, context: InboundContext) -> None:
        self.s = settings
        self.context = context
        self.channel = context.channel
        self.sender = context.agency
        self.files = context.files
        self.max_bytes = context.limits.max_message_bytes
        self.completeness = Completeness(settings)
        self.archive_dir = settings.archive_dir or posixpath.join(settings.path, "archive")
        self.error_dir = settings.error_dir or posixpath.join(settings.path, "error")
        self._health: dict[str, object] = {"ok": False, "state": "starting", "where": self.where()}
        self.lock_name = f"drop:{self.channel}"

    # -- for subclasses --
    def where(self) -> str:
        return self.s.path

    async def connect(self) -> DropFS:
        raise NotImplementedError

    async def disconnect(self) -> None:
        return None

    def health(self) -> dict[str, object]:
        return dict(self._health)

    # -- the loop --
    async def run(self) -> None:
        intake = self.context.intake
        failures = 0
        await asyncio.to_thread(self.files.sweep)
        while True:
            try:
                fs = await self.connect()
                if self.s.after == "archive":
                    await asyncio.to_thread(fs.makedirs, self.archive_dir)
                await asyncio.to_thread(fs.makedirs, self.error_dir)
                failures = 0
                self._health = {"ok": True, "state": "connected", "where": self.where()}
                while True:
                    await self.poll_if_mine(fs, intake)
                    await asyncio.sleep(self.s.poll_interval)
            except ChannelStopped as e:
                self._health = {"ok": False, "state": "stopped", "where": self.where(), "error": str(e)}
                log.error("channel %s stopped: %s", self.channel, e)
                await self.context.audit(
                    AuditEvent("channel-stopped", self.sender, detail={"channel": self.channel, "why": str(e)})
                )
                await self.disconnect()
                return
            except Exception as e:  # lost connection, unreachable server, or a defect: back off and retry
                failures += 1
                wait = backoff(failures)
                why = _describe(e)
                connection = isinstance(e, (OSError, EOFError)) or _is_connection_error(e)
                self._health = {
                    "ok": False,
                    "state": "reconnecting" if connection else "error",
                    "where": self.where(),
                    "error": why,
                    "failures": failures,
                }
                if connection:
                    log.warning("channel %s: %s; trying again in %.1f s", self.channel, why, wait)
                else:
                    log.exception("channel %s failed; trying again in %.1f s", self.channel, wait)
                await self.disconnect()
                await asyncio.sleep(wait)

    async def poll_if_mine(self, fs: DropFS, intake: Intake) -> int | None:
        """Poll under the channel's cluster-wide lock; None (poll skipped) when another node holds it.

        The whole poll runs under the lock, the archive move included: a file is gone from the
        directory, or marked as ingested, before another node may list it.
        """
        async with self.context.lock(self.lock_name) as mine:
            if not mine:
                self._health["poller"] = "another node holds the lock of this drop; this node stands by"
                return None
            taken = await self.poll_once(fs, intake)
        self._health["poller"] = "this node"
        self._health["last_poll"] = time.time()
        return taken

    async def poll_once(self, fs: DropFS, intake: Intake) -> int:
        """One look at the directory; returns how many records were taken."""
        listing = await asyncio.to_thread(fs.list_files, self.s.path)
        entries = {e.name: e for e in listing}
        now = time.monotonic()
        self.completeness.observe(entries, now)
        ready = self.completeness.ready(entries, now)
        taken = 0
        for name, atts in ready:
            if await self._take(fs, intake, entries, name, atts, now):
                taken += 1
        return taken

    async def _take(
        self, fs: DropFS, intake: Intake, entries: dict[str, Entry], name: str, atts: list[str], now: float
    ) -> bool:
        e = entries[name]
        # size and mtime first, the name last: unambiguous whatever the name holds, and no NUL
        # (PostgreSQL text refuses it)
        fingerprint = f"{e.size}:{int(e.mtime)}:{name}"
        extra = [a for a in atts] + (
            [name + self.s.done_suffix] if self.s.complete_when == "done-file" else []
        )
        earlier = await self.context.drops.seen(fingerprint)
        if earlier is not None:  # ingested before; only the move is left to do
            outcome = await self.context.drops.outcome(earlier)
            rejected = outcome is not None and not outcome[0]
            reasons = [f"message {earlier}: rejected", *outcome[1]] if outcome is not None and rejected else None
            await asyncio.to_thread(
                self._move_away, fs, name, extra, self.error_dir if rejected else self.archive_dir, reasons
            )
            return False
        try:
            body, attachments = await asyncio.to_thread(self._fetch, fs, name, e, atts, entries)
        except _NotYet:
            return False
        except FileProblem as p:
            await asyncio.to_thread(self._move_away, fs, name, extra, self.error_dir, [str(p)])
            await self.context.audit(
                AuditEvent("refused", self.sender, detail={"channel": self.channel, "file": name, "why": str(p)})
            )
            log.warning("channel %s: %s went to %s: %s", self.channel, name, self.error_dir, p)
            return False
        self.completeness.found(name)
        receipt = await intake(
            InboundRecord(
                channel=self.channel,
                sender=self.sender,
                body=body,
                file_name=name,
                attachments=tuple(attachments),
            )
        )
        await self.context.drops.mark(fingerprint, _marked(receipt))
        if receipt.status == MessageStatus.ACCEPTED:
            await asyncio.to_thread(self._move_away, fs, name, extra, self.archive_dir, None)
        else:
            await asyncio.to_thread(self._move_away, fs, name, extra, self.error_dir, _reasons(receipt))
        return True

    # -- blocking parts, run in a thread --
    def _fetch(
        self, fs: DropFS, name: str, e: Entry, atts: list[str], entries: dict[str, Entry]
    ) -> tuple[bytes, list[Attachment]]:
        if e.size > self.max_bytes:
            raise FileProblem(f"the record {name} has {e.size:,} bytes, over the limit of {self.max_bytes:,}")
        started = time.monotonic()
        buf = bytearray()
        with fs.open_read(posixpath.join(self.s.path, name), e.size) as f:
            while chunk := f.read(CHUNK):
                buf += chunk
                if len(buf) > self.max_bytes:
                    raise FileProblem(f"the record {name} grew over the limit of {self.max_bytes:,} bytes")
        body = bytes(buf)
        declared = {d.name: d for d in type(self).declared(body)}
        missing = sorted(set(declared) - set(atts))
        if missing:
            if not self.completeness.waited_too_long(name, time.monotonic()):
                raise _NotYet()
            raise FileProblem(
                f"the record {name} lists dossier file(s) {', '.join(missing)}, which did not arrive "
                f"within {self.s.attachment_wait:.0f} s"
            )
        out = []
        for a in atts:
            sha, size = self._download(fs, a, entries[a].size)
            d = declared.get(a)
            if d is not None and d.sha256 and d.sha256 != sha:
                raise FileProblem(
                    f"dossier file {a} has SHA-256 {sha}, but the record {name} lists {d.sha256}: "
                    f"the file is damaged or not the one the record means"
                )
            if d is not None and d.size is not None and d.size != size:
                raise FileProblem(
                    f"dossier file {a} has {size:,} bytes, but the record {name} lists {d.size:,}"
                )
            out.append(Attachment(a, sha, size, mimetypes.guess_type(a)[0] or "application/octet-stream"))
        total = len(body) + sum(a.size for a in out)
        log.info(
            "channel %s: fetched %s with %d dossier file(s), %d bytes in %.3f s",
            self.channel,
            name,
            len(out),
            total,
            time.monotonic() - started,
        )
        return body, out

    def _download(self, fs: DropFS, name: str, size: int) -> tuple[str, int]:
        with fs.open_read(posixpath.join(self.s.path, name), size) as f, self.files.writer() as w:
            while chunk := f.read(CHUNK):
                w.write(chunk)
            return w.commit()

    def _move_away(
        self, fs: DropFS, name: str, extra: list[str], target: str, reasons: list[str] | None
    ) -> None:
        """Dossier files first, the record, then its done-file: a crash leaves the record to retry with."""
        if self.s.after == "delete" and reasons is None:
            for n in [*extra, name]:
                _quietly(fs.remove, posixpath.join(self.s.path, n))
            return
        dest = _free_name(fs, target, name)
        if reasons is not None:
            tmp = posixpath.join(target, f".{dest}.error.txt.part")
            with fs.open_write(tmp) as f:
                f.write(("\n".join(reasons) + "\n").encode("utf-8"))
            fs.rename(tmp, posixpath.join(target, f"{dest}.error.txt"))
        for n in extra:
            if fs.stat(posixpath.join(self.s.path, n)) is not None:
                fs.rename(posixpath.join(self.s.path, n), posixpath.join(target, _free_name(fs, target, n)))
        fs.rename(posixpath.join(self.s.path, name), posixpath.join(target, dest))


class _NotYet(Exception):
    """A dossier file the record lists has not arrived yet: look again next poll."""


def _free_name(fs: DropFS, directory: str, name: str) -> str:
    """`name`, or `name.N` when the archive already holds a file of that name (a resend)."""
    candidate, n = name, 1
    while fs.stat(posixpath.join(directory, candidate)) is not None:
        candidate, n = f"{name}.{n}", n + 1
    return candidate


def _quietly(fn: Callable[[str], None], path: str) -> None:
    with suppress(FileNotFoundError):
        fn(path)


def _marked(receipt: Receipt) -> str:
    """The message a taken file is marked with: a batch's first refused record (else its first), so a
    file found again after a crash goes where its receipt sent it."""
    if not receipt.records:
        return receipt.message_id
    refused = [r for r in receipt.records if r.status != MessageStatus.ACCEPTED]
    return (refused or list(receipt.records))[0].message_id


def _reasons(receipt: Receipt) -> list[str]:
    if receipt.records:  # a file of several records: each one's fate, the accepted ones forwarded already
        return [line for i, r in enumerate(receipt.records, 1)
                for line in (f"record {i}, message {r.message_id}: {r.status}", *r.reasons)]
    return [f"message {receipt.message_id}: {receipt.status}", *receipt.reasons]


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if type(e).__name__ in text else f"{type(e).__name__}: {text}"


def _is_connection_error(e: BaseException) -> bool:
    return any(c.__name__ in ("SSHException", "ChannelException") for c in type(e).__mro__)

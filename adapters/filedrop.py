"""File drops, shared by the SFTP and folder adapters: what is complete, what was taken, where it goes.

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
- outbound, every file is written under a temporary name and renamed when complete, dossier
  files before the record; a local marker written before the record's rename makes a retry after
  a crash finish the job instead of sending the record twice.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import logging
import mimetypes
import os
import posixpath
import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import tenacity
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import InboundAdapter, InboundContext, Intake
from gateway import xmlsafe
from gateway.audit.chain import AuditEvent
from gateway.backoff import Backoff
from gateway.errors import InputRejected
from gateway.files import CHUNK, FileStore, safe_name
from gateway.model import (
    Attachment,
    DeliveryResult,
    InboundRecord,
    MessageStatus,
    OutboundMessage,
    Receipt,
    sha256_hex,
)
from gateway.private_files import open_private, private_dir

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


class DropOutboundSettings(BaseModel):
    """Where records and their dossier files are written for a receiver."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="directory the receiver reads")
    file_name: str = Field(
        "{message_id}.xml",
        description="record file name; {message_id} {case_number} {file_name} {delivery_id}. An operator's "
        "replay is written as NAME.replay-DELIVERY.EXT, so the receiver sees it is a replay and of which record",
    )
    attachment_name: str = Field(
        "{message_id}/{name}",
        description="dossier file name, '/' making folders; {name} {sha256} {message_id} {case_number}. "
        "Unique per record by default (a folder per message): dossier files of different cases often "
        "share a name, and a name already taken at the receiver by other content is never overwritten",
    )
    temp_prefix: str = Field(".", description="files are written as PREFIX+NAME+SUFFIX, then renamed")
    temp_suffix: str = Field(".part")
    done_file: bool = Field(False, description="write NAME+done_suffix after the record is in place")
    done_suffix: str = Field(".done")
    create_dirs: bool = Field(True, description="create the directory if it is missing")


# -- completeness ------------------------------------------------------------------------------------------
class Completeness:
    """Decides which records in a listing are complete, remembering what the previous poll saw."""

    def __init__(self, s: DropInboundSettings) -> None:
        self.s = s
        self._seen: dict[str, tuple[int, float, float]] = {}  # name -> (size, mtime, unchanged since)
        self._missing_since: dict[str, float] = {}

    def is_record(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.s.pattern) and not self._ignored(name)

    def _ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, g) for g in self.s.ignore) or name.endswith(self.s.done_suffix)

    def attachments_of(self, record: str, names: list[str]) -> list[str]:
        if not self.s.attachments:
            return []
        stem = record.rsplit(".", 1)[0]
        glob = self.s.attachments.replace("{stem}", _glob_escape(stem)).replace(
            "{name}", _glob_escape(record)
        )
        return sorted(
            n
            for n in names
            if n != record and fnmatch.fnmatchcase(n, glob) and not self.is_record(n) and not self._ignored(n)
        )

    def observe(self, entries: dict[str, Entry], now: float) -> None:
        for name in list(self._seen):
            if name not in entries:
                del self._seen[name]
        for name, e in entries.items():
            prev = self._seen.get(name)
            if prev is None or (prev[0], prev[1]) != (e.size, e.mtime):
                self._seen[name] = (e.size, e.mtime, now)

    def _stable(self, name: str, now: float) -> bool:
        """Unchanged since an earlier poll (and stable_seconds): a copied file's old mtime proves nothing."""
        since = self._seen[name][2]
        return since < now and now - since >= self.s.stable_seconds

    def ready(self, entries: dict[str, Entry], now: float) -> list[tuple[str, list[str]]]:
        """(record, its dossier files) for every complete record; call after `observe`."""
        names = list(entries)
        out = []
        for name in sorted(n for n in names if self.is_record(n)):
            atts = self.attachments_of(name, names)
            if self.s.complete_when == "done-file" and name + self.s.done_suffix not in entries:
                continue
            if self.s.complete_when == "stable" and not all(self._stable(n, now) for n in [name, *atts]):
                continue
            out.append((name, atts))
        return out

    def waited_too_long(self, record: str, now: float) -> bool:
        since = self._missing_since.setdefault(record, now)
        return now - since >= self.s.attachment_wait

    def found(self, record: str) -> None:
        self._missing_since.pop(record, None)


def _glob_escape(s: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", s)


# -- what a record says about its dossier ---------------------------------------------------------------
@dataclass(frozen=True)
class DeclaredFile:
    name: str
    sha256: str | None = None
    size: int | None = None


DeclaredFiles = Callable[[bytes], list[DeclaredFile]]

_FILE_ELEMENTS = ("File", "DossierFile", "Attachment")


def _byte_count(text: str | None) -> int | None:
    """A size written in ASCII digits, else none: '²' and '٣' pass str.isdigit() but int() refuses them,
    as it does numbers of over 4300 digits (no file is that large, so such a size is no size either)."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 4300:
        return None
    return int(text)


def files_listed_in_record(body: bytes) -> list[DeclaredFile]:
    """Dossier files a record lists: elements File/DossierFile/Attachment with a name and a SHA-256.

    Read by local name as attribute or child (Name/FileName, SHA256/Sha256, Size), so both the
    shared standard and legacy formats are understood. A record that does not parse lists nothing
    here; the pipeline then rejects it with the line and rule.
    """
    try:
        tree = xmlsafe.parse(body, source="record")
    except InputRejected:
        return []
    found = []
    for el in tree.iter():
        if not isinstance(el.tag, str) or etree.QName(el).localname not in _FILE_ELEMENTS:
            continue
        fields = {
            etree.QName(c).localname.lower(): (c.text or "").strip() for c in el if isinstance(c.tag, str)
        }
        fields.update({k.lower(): v for k, v in el.attrib.items()})
        name = fields.get("name") or fields.get("filename")
        if not name:
            continue
        digest = (fields.get("sha256") or "").lower() or None
        size = fields.get("size")
        found.append(
            DeclaredFile(posixpath.basename(name), digest, _byte_count(size))
        )
    return found


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
        await self.context.drops.mark(fingerprint, receipt.message_id)
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


def _reasons(receipt: Receipt) -> list[str]:
    return [f"message {receipt.message_id}: {receipt.status}", *receipt.reasons]


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if type(e).__name__ in text else f"{type(e).__name__}: {text}"


def _is_connection_error(e: BaseException) -> bool:
    return any(c.__name__ in ("SSHException", "ChannelException") for c in type(e).__mro__)


# -- outbound -----------------------------------------------------------------------------------------------
_safe = safe_name


class DropWriter:
    """Writes one delivery into a directory so the receiver never sees half a file."""

    def __init__(self, settings: DropOutboundSettings, files: FileStore, markers: Path) -> None:
        self.s = settings
        self.files = files
        self.markers = markers
        self._writing: set[str] = set()
        self._lock = threading.Lock()

    def write(self, fs: DropFS, m: OutboundMessage) -> DeliveryResult:
        """Blocking. An attempt that timed out still runs in its thread; a retry must not write beside it."""
        with self._lock:
            if m.idempotency_key in self._writing:
                return DeliveryResult.transient("an earlier attempt of this delivery is still writing")
            self._writing.add(m.idempotency_key)
        try:
            return self._write(fs, m)
        finally:
            with self._lock:
                self._writing.discard(m.idempotency_key)

    def names(self, m: OutboundMessage) -> tuple[str, list[tuple[Attachment, str]]]:
        """The record's file name and each dossier file's path below the drop, from the templates."""
        record = self.s.file_name.format(
            message_id=m.message_id,
            delivery_id=m.delivery_id,
            case_number=_safe(m.case_number),
            file_name=_safe(posixpath.basename(m.file_name)) if m.file_name else f"{m.message_id}.xml",
        )
        atts = [
            (a, _relative(self.s.attachment_name.format(
                name=posixpath.basename(a.name), sha256=a.sha256, message_id=m.message_id,
                case_number=m.case_number)))
            for a in m.attachments
        ]
        if m.replay_of:  # a replay is written beside what the receiver may still hold, never over it
            stem, dot, ext = record.rpartition(".")
            record = f"{stem}.replay-{m.delivery_id}.{ext}" if dot else f"{record}.replay-{m.delivery_id}"
        return _safe(record), atts

    def _write(self, fs: DropFS, m: OutboundMessage) -> DeliveryResult:
        """Dossier files, then the record, each under a temporary name renamed when complete."""
        started = time.monotonic()
        record, atts = self.names(m)
        final = posixpath.join(self.s.path, record)
        tmp = self._tmp(record)
        marker = self.markers / _safe(m.idempotency_key)
        if marker.exists():  # the record's rename was started by an earlier attempt: finish, never resend
            if fs.stat(tmp) is not None:
                fs.rename(tmp, final)
            self._done_file(fs, record, final)
            return DeliveryResult.delivered(f"{record} was already in place from an earlier attempt")
        for a, _name in atts:
            if not self.files.has(a.sha256):
                return DeliveryResult.permanent(
                    f"dossier file {a.name} ({a.sha256}) is not in the gateway's file store"
                )
        if self.s.create_dirs:
            fs.makedirs(self.s.path)
        if len({name for _a, name in atts} | {record}) != len(atts) + 1:
            return DeliveryResult.permanent(
                f"the names {self.s.attachment_name!r} gives this record's dossier files are not unique: "
                "add {sha256} to it, or keep the default {message_id}/{name}")
        total = len(m.body)
        for a, name in atts:
            taken = self._taken_by_other(fs, name, a.sha256, a.size)
            if taken:
                return DeliveryResult.permanent(taken)
            with self.files.open(a.sha256) as src:
                self._put(fs, name, lambda f, src=src: _copy(src, f), a.size)  # type: ignore[misc]
            total += a.size
        taken = self._taken_by_other(fs, record, sha256_hex(m.body), len(m.body))
        if taken:
            return DeliveryResult.permanent(taken)
        self._put(fs, record, lambda f: f.write(m.body), len(m.body), rename=False)
        private_dir(self.markers)
        _write_synced(marker, final.encode())
        fs.rename(tmp, final)
        self._done_file(fs, record, final)
        log.info(
            "wrote %s with %d dossier file(s), %d bytes in %.3f s",
            final,
            len(atts),
            total,
            time.monotonic() - started,
        )
        return DeliveryResult.delivered(
            f"written as {final}" + (f" with {len(atts)} dossier file(s)" if atts else "")
        )

    def _tmp(self, name: str) -> str:
        folder, base = posixpath.split(name)
        return posixpath.join(self.s.path, folder, f"{self.s.temp_prefix}{base}{self.s.temp_suffix}")

    def _taken_by_other(self, fs: DropFS, name: str, sha256: str, size: int) -> str | None:
        """Why `name` cannot be written: the receiver already has a file of that name with other content
        (a file of ours, from an earlier attempt or a replay, has the same bytes and may be replaced)."""
        path = posixpath.join(self.s.path, name)
        there = fs.stat(path)
        if there is None:
            return None
        if there.size == size:
            digest = hashlib.sha256()
            with fs.open_read(path, size) as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
            if digest.hexdigest() == sha256:
                return None
        return (f"{path} already exists at the receiver with other content ({there.size:,} bytes); it was left "
                "as it is and this delivery stopped, so that nothing the receiver holds is overwritten. "
                "Make the file names unique (file_name / attachment_name with {message_id}), then replay")

    def _put(
        self, fs: DropFS, name: str, fill: Callable[[Writable], Any], size: int, rename: bool = True
    ) -> None:
        tmp = self._tmp(name)
        folder = posixpath.dirname(name)
        if folder:
            fs.makedirs(posixpath.join(self.s.path, folder))
        with fs.open_write(tmp) as f:
            fill(f)
        got = fs.stat(tmp)
        if got is None or got.size != size:
            raise OSError(
                f"{tmp} has {got.size if got else 0:,} bytes after writing {size:,}; will write again"
            )
        if rename:
            fs.rename(tmp, posixpath.join(self.s.path, name))

    def _done_file(self, fs: DropFS, record: str, final: str) -> None:
        if self.s.done_file and fs.stat(final) is not None and fs.stat(final + self.s.done_suffix) is None:
            self._put(fs, record + self.s.done_suffix, lambda f: None, 0)


def _relative(template: str) -> str:
    """A dossier file's path below the drop: each part a safe name, nothing that climbs out."""
    parts = [_safe(p) for p in template.split("/") if p.strip() not in ("", ".", "..")]
    return "/".join(parts) or "_"


def _copy(src: Any, dst: Writable) -> None:
    while chunk := src.read(CHUNK):
        dst.write(chunk)


def _write_synced(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

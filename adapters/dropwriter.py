"""Writing a delivery into a drop (folder or SFTP) so the receiver never sees half a file and
never loses one.

Every file is written under a temporary name and renamed when complete, dossier files before the
record, into a folder per message by default. A name the receiver already holds with other content
is never overwritten: the delivery stops as a dead letter saying why. A local marker written before
the record's rename makes a retry after a crash finish the job instead of sending the record twice;
an operator's replay has a key of its own, so the marker never swallows it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.filedrop import DropFS, Writable
from gateway.files import CHUNK, FileStore, safe_name
from gateway.model import Attachment, DeliveryResult, OutboundMessage, sha256_hex
from gateway.private_files import open_private, private_dir

log = logging.getLogger("adapters.dropwriter")


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
            case_number=safe_name(m.case_number),
            file_name=safe_name(posixpath.basename(m.file_name)) if m.file_name else f"{m.message_id}.xml",
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
        return safe_name(record), atts

    def _write(self, fs: DropFS, m: OutboundMessage) -> DeliveryResult:
        """Dossier files, then the record, each under a temporary name renamed when complete."""
        started = time.monotonic()
        record, atts = self.names(m)
        final = posixpath.join(self.s.path, record)
        tmp = self._tmp(record)
        marker = self.markers / safe_name(m.idempotency_key)
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
    parts = [safe_name(p) for p in template.split("/") if p.strip() not in ("", ".", "..")]
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

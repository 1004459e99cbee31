"""Folder adapter: a directory shared with a legacy system (a mount), with the SFTP adapter's rules.

Completeness, archive and error directories, idempotency and atomic delivery live in
`adapters.filedrop`; this module only supplies the local filesystem under them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from adapters.base import AdapterSpec, OutboundContext
from adapters.dropwriter import DropOutboundSettings, DropWriter
from adapters.filedrop import (
    DropFS,
    DropInbound,
    DropInboundSettings,
    Entry,
)
from gateway.model import DeliveryResult, OutboundMessage


class InboundSettings(DropInboundSettings):
    """A local (or mounted) directory a legacy system drops records in."""


class OutboundSettings(DropOutboundSettings):
    """A local (or mounted) directory a legacy system reads records from."""

    fsync: bool = True


class LocalFS:
    """DropFS over the local filesystem; renames are os.replace, writes are fsynced before rename."""

    def __init__(self, fsync: bool = True) -> None:
        self.fsync = fsync

    def list_files(self, directory: str) -> list[Entry]:
        out = []
        with os.scandir(directory) as it:
            for d in it:
                if d.is_file(follow_symlinks=False):
                    st = d.stat(follow_symlinks=False)
                    out.append(Entry(d.name, st.st_size, st.st_mtime))
        return out

    def stat(self, path: str) -> Entry | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return Entry(os.path.basename(path), st.st_size, st.st_mtime)

    @contextlib.contextmanager
    def open_read(self, path: str, size: int) -> Iterator[BinaryIO]:
        with open(path, "rb") as f:
            yield f

    @contextlib.contextmanager
    def open_write(self, path: str) -> Iterator[BinaryIO]:
        with open(path, "wb") as f:
            yield f
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def remove(self, path: str) -> None:
        os.unlink(path)

    def makedirs(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)


class FolderInbound(DropInbound):
    async def connect(self) -> DropFS:
        if not os.path.isdir(self.s.path):
            raise FileNotFoundError(f"the drop folder {self.s.path} does not exist or is not mounted")
        return LocalFS()


class FolderOutbound:
    def __init__(self, settings: OutboundSettings, context: OutboundContext) -> None:
        self.settings = settings
        self.writer = DropWriter(settings, context.files, context.state_dir)
        self.fs = LocalFS(settings.fsync)

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        try:
            return await asyncio.to_thread(self.writer.write, self.fs, message)
        except OSError as e:
            return DeliveryResult.transient(f"could not write to folder {self.settings.path}: {e}")

    async def aclose(self) -> None:
        return None


SPEC = AdapterSpec(
    name="folder", summary="records and dossier files dropped in and written to local or mounted folders",
    inbound_settings=InboundSettings, inbound=FolderInbound, outbound_settings=OutboundSettings,
    outbound=FolderOutbound)

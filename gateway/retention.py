"""Retention: drop the payloads of finished exchanges after a set time, and free their space.

Only payloads go: the raw record, its standard form, the bodies sent, and dossier files no other
message still needs. A message's row, its deliveries, attempts and every exchange-log entry stay,
so status, history and `gateway audit verify` keep working; each pruned message gets a
`payload-pruned` entry, and an audit export then carries those payloads as hashes only.
A message is pruned only when every delivery of it is delivered or discarded and the last one
finished before the cutoff: waiting, in-flight and dead-lettered records are never touched.

Work goes in batches of short transactions (the store's own order, received_at then id), so a
run over millions of old messages never holds a lock long or a large list in memory. Dossier
files are removed from disk after the commit that released them; a file written or stored again
within FILE_GRACE is left for a later run, since a record naming it may be on its way in. Files
no message ever took in (an upload refused after some of its files were stored) go the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

from gateway.config import RetentionSettings
from gateway.files import FileStore
from gateway.store.roles import Retention

DAY = 86400.0
FILE_GRACE = DAY  # a dossier's first file may wait this long while its last ones stream in
_FILE_PAGE = 500


@dataclass
class RetentionReport:
    cutoff: float = 0.0
    messages: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    files: int = 0
    file_bytes: int = 0
    files_waiting: int = 0  # unreferenced but touched within FILE_GRACE: removed by a later run
    orphans: int = 0  # files no message ever took in (an upload refused or cut off), past FILE_GRACE
    orphan_bytes: int = 0
    reclaimed_bytes: int = 0  # given back to the file system by the database (SQLite)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"payloads of {self.messages:,} finished message(s) dropped: {self.blobs:,} stored payload(s) "
            f"({self.blob_bytes / 1e6:,.1f} MB) and {self.files:,} dossier file(s) ({self.file_bytes / 1e6:,.1f} MB) "
            f"removed, {self.reclaimed_bytes / 1e6:,.1f} MB returned to the file system by the database"
            + (f"; {self.files_waiting} file(s) left for a later run (stored again recently)"
               if self.files_waiting else "")
            + (f"; {self.orphans:,} file(s) of uploads whose record never arrived removed "
               f"({self.orphan_bytes / 1e6:,.1f} MB)" if self.orphans else "")
            + f" [{self.seconds:.1f} s]"
        )


async def run_retention(
    store: Retention,
    files: FileStore,
    settings: RetentionSettings,
    *,
    actor: str = "retention",
    now: float | None = None,
    days: float | None = None,
) -> RetentionReport:
    """One retention run; `days` overrides the configured payload_days (None in both: nothing to do)."""
    keep = days if days is not None else settings.payload_days
    report = RetentionReport()
    if keep is None:
        return report
    started = time.monotonic()
    report.cutoff = (time.time() if now is None else now) - keep * DAY
    policy = f"payload_days={keep:g}"
    after: tuple[float, str] | None = None
    while True:
        batch = await store.prune_payloads(report.cutoff, settings.batch, after, actor, policy)
        report.messages += batch.messages
        report.blobs += batch.blobs
        report.blob_bytes += batch.blob_bytes
        if batch.after is None:
            break
        after = batch.after
    await _remove_files(store, files, report)
    await _remove_orphans(store, files, report)
    report.reclaimed_bytes = await store.reclaim_space()
    report.seconds = time.monotonic() - started
    return report


async def _remove_files(store: Retention, files: FileStore, report: RetentionReport) -> None:
    seen: set[str] = set()
    while True:
        listed = [h for h in await store.file_removals(_FILE_PAGE + len(seen)) if h not in seen]
        if not listed:
            return
        seen.update(listed)
        removed = []
        for sha in listed:
            size = await asyncio.to_thread(files.remove_if_idle, sha, FILE_GRACE)
            if size is None:
                report.files_waiting += 1
                continue
            removed.append(sha)
            report.files += 1 if size else 0
            report.file_bytes += size
        if removed:
            await store.files_removed(removed)


async def _remove_orphans(store: Retention, files: FileStore, report: RetentionReport) -> None:
    """Files on disk that no message took in: the dossier of an upload refused or cut off after
    some of its files were stored. Left alone for FILE_GRACE after their last write, like any
    file, since the record naming them may still be streaming in."""
    walk = files.hashes()
    while page := await asyncio.to_thread(lambda: list(itertools.islice(walk, _FILE_PAGE))):
        known = await store.known_files(page)
        for sha in page:
            if sha in known:
                continue
            size = await asyncio.to_thread(files.remove_if_idle, sha, FILE_GRACE)
            if size:
                report.orphans += 1
                report.orphan_bytes += size

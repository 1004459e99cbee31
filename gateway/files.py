"""Content-addressed store for dossier files on disk: DATA_DIR/files/ab/cdef....

Dossier files run to gigabytes, so they never pass through memory or the database: a writer
streams chunks to a temporary file while hashing them, then renames it under its SHA-256.
The rename is atomic, so a crash leaves either the whole file under its hash or only a
temporary file that the next `sweep` removes. Files are the node's user's only (0600, folders 0700).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from gateway.private_files import private_dir

CHUNK = 1024 * 1024


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_MAX_NAME_BYTES = 200  # file systems allow 255 bytes a name; room is left for temporary prefixes


def safe_name(s: str) -> str:
    """`s` as one file name any file system and share takes: no separators, no characters Windows
    refuses, no leading dot, at most 200 bytes in UTF-8 (the extension kept). Letters of any
    script stay as they are, so two Chinese names never fold into the same one."""
    name = _UNSAFE.sub("_", s).lstrip(".").rstrip(". ") or "_"
    if len(name.encode("utf-8")) <= _MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode("utf-8")) > 16:
        stem, ext = name, ""
    room = _MAX_NAME_BYTES - len(ext.encode("utf-8")) - 1
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    return f"{stem}.{ext}" if ext else stem


class FileStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"

    @classmethod
    def for_data_dir(cls, data_dir: str | Path) -> FileStore:
        return cls(Path(data_dir) / "files")

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def writer(self) -> FileWriter:
        private_dir(self.tmp)
        return FileWriter(self)

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store a stream of bytes; returns (sha256, size). Memory use is one chunk."""
        with self.writer() as w:
            for chunk in chunks:
                w.write(chunk)
            return w.commit()

    def put_file(self, src: BinaryIO) -> tuple[str, int]:
        return self.put_stream(iter(lambda: src.read(CHUNK), b""))

    def open(self, sha256: str) -> BinaryIO:
        return self.path_for(sha256).open("rb")

    def remove_if_idle(self, sha256: str, idle_for: float) -> int | None:
        """Remove a file no message references any more; None while it was written or stored again
        within `idle_for` seconds (a record naming it may be on its way), else the bytes removed
        (0: it was not there)."""
        path = self.path_for(sha256)
        try:
            st = path.stat()
            if st.st_mtime > time.time() - idle_for:
                return None
            path.unlink()
        except FileNotFoundError:
            return 0
        return st.st_size

    def hashes(self) -> Iterator[str]:
        """Every stored file's SHA-256, a directory at a time (never the whole list in memory)."""
        if not self.root.is_dir():
            return
        for d in sorted(self.root.iterdir()):
            if len(d.name) != 2 or not d.is_dir():
                continue  # tmp/ and anything that is not a hash prefix
            for f in d.iterdir():
                sha = d.name + f.name
                if len(sha) == 64 and all(c in "0123456789abcdef" for c in sha):
                    yield sha

    def sweep(self, older_than: float = 3600.0) -> int:
        """Remove temporary files a crash left behind (untouched for `older_than` s); returns how many.

        Files still being written are touched by every chunk, so a running transfer is never swept.
        """
        if not self.tmp.is_dir():
            return 0
        n = 0
        limit = time.time() - older_than
        for p in self.tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if p.stat().st_mtime < limit:
                    p.unlink()
                    n += 1
        return n


class FileWriter:
    """Receives chunks, hashes them on the way, and commits the file under its hash."""

    def __init__(self, store: FileStore) -> None:
        self.store = store
        fd, name = tempfile.mkstemp(dir=store.tmp, prefix="in-")  # 0600, kept by the rename
        self._f = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, chunk: bytes | memoryview) -> None:
        self._hash.update(chunk)
        self._f.write(chunk)
        self.size += len(chunk)

    def seal(self) -> tuple[str, int]:
        """The file is complete: fsync and close it, still under its temporary name; (sha256, size).

        A body with several files seals each as it ends and commits them all only once the whole body
        is taken, so a body refused halfway leaves nothing in the store."""
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        return self._hash.hexdigest(), self.size

    def commit(self) -> tuple[str, int]:
        """fsync, then rename into place (a file already stored under that hash is kept)."""
        digest, _ = self.seal()
        final = self.store.path_for(digest)
        private_dir(final.parent)
        if final.is_file() and final.stat().st_size == self.size:
            self._tmp.unlink(missing_ok=True)
            os.utime(final)  # in use again: retention leaves files touched within its grace period
        else:
            os.replace(self._tmp, final)
            dir_fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._done = True
        return digest, self.size

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abandon()

    def abandon(self) -> None:
        """Drop the temporary file unless it was committed."""
        if not self._done:
            self._f.close()
            self._tmp.unlink(missing_ok=True)

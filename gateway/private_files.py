"""Files and folders only the node's user may read: the data folder holds names, ID numbers and keys.

Each is made so where it is created (folders 0700, files 0600), which costs nothing later; the
process umask is left alone, since adapters also write files that receivers' systems must read.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | Path) -> Path:
    """Create `path` and any missing parents readable by this user only; existing ones are left as they are."""
    p = Path(path)
    if p.is_dir():
        return p
    missing = []
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=FOLDER_MODE)
    return Path(path)


def tighten(path: str | Path, mode: int) -> bool:
    """Take group and others' bits off an existing file or folder; True if it had any."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    if not stat.S_IMODE(st.st_mode) & 0o077:
        return False
    os.chmod(path, mode)
    return True


def private_file(path: str | Path) -> bool:
    """Create `path` empty and readable by this user only unless it exists (then its mode is tightened),
    before a library opens it: SQLite gives the -wal and -shm files it makes the database file's mode.
    True if an existing file was readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    return tighten(path, FILE_MODE)


def open_private(path: str | Path) -> BinaryIO:
    """Open `path` for writing (truncated), created readable by this user only."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "wb")

"""The data folder holds names, ID numbers and keys: everything the node makes there is its user's only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime import Gateway

from .support.drops import drop, drop_config, visible
from .support.waiting import wait_for


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask (022), under which a file made with default modes is readable by everyone."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def open_to_others(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {mode:o}")
    return found


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing-0755"])
async def test_nothing_under_the_data_dir_is_readable_by_others(tmp_path: Path, loose_umask: None,
                                                                existing: bool) -> None:
    src, out, data = tmp_path / "police", tmp_path / "proc", tmp_path / "data"
    src.mkdir()
    if existing:  # as an earlier version left it
        data.mkdir(mode=0o755)
        (data / "gateway.db").touch(mode=0o644)
    drop(src, "C1", "C2026-0001")  # a record with one dossier file
    gw = Gateway(drop_config(data, {"adapter": "folder", "settings": {"path": str(src), "poll_interval": 0.1}},
                             {"adapter": "folder", "settings": {"path": str(out)}}))
    await gw.start()
    try:
        await wait_for(lambda: out.is_dir() and any(n.endswith(".xml") for n in visible(out)), what="delivery")
        await gw.checkpoint()
        assert (data / "gateway.db-wal").exists()  # SQLite's own files, while it has the database open
        assert open_to_others(data) == []
    finally:
        await gw.stop()
    made = {p.relative_to(data).parts[0] for p in data.rglob("*")}
    assert {"gateway.db", "signing-key.pem", "files", "outbox"} <= made, made  # what the check below covers
    assert [p for p in (data / "files").rglob("*") if p.is_file() and p.parent.name != "tmp"], "no dossier file"
    assert list((data / "outbox").rglob("*")), "no delivery marker"
    assert open_to_others(data) == []

"""The real OpenSSH sshd (gateway.sim.sshd) as a pytest fixture for SFTP tests.

sshd is installed with apt-get when missing; where that is impossible the tests skip with the
reason, except under CI=true, where they fail: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.sim.sshd import SSHD, SshServer, ensure_sshd, keygen, start_sshd

__all__ = ["SSHD", "SshServer", "ensure_sshd", "keygen", "start_sshd", "sshd_server"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"OpenSSH sshd is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", name="sshd")
def sshd_server() -> Iterator[SshServer]:
    why = ensure_sshd()
    if why:
        _unavailable(why)
    if os.geteuid() != 0:
        _unavailable("sshd for the tests runs as root (root login by key); not root here")
    base = Path(tempfile.mkdtemp(prefix="gw-sshd-"))
    server = start_sshd(base)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)

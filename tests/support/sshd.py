"""The real OpenSSH sshd (gateway.sim.sshd) for SFTP tests, behind the `sshd` fixture.

sshd comes from tests/system-packages.sh (`make test` runs it first); nothing is installed here.
Without it, or without root (the server logs in as root by key), the tests skip with the
reason, and under CI=true they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gateway.sim.sshd import SshServer, sshd_missing, start_sshd

from .required import INSTALL, unavailable


def running_sshd() -> Iterator[SshServer]:
    """A throwaway sshd on a free loopback port, stopped and removed afterwards."""
    missing = sshd_missing()
    if missing:
        unavailable(f"OpenSSH is not installed, missing {', '.join(missing)} ({INSTALL})")
    if os.geteuid() != 0:
        unavailable("sshd for the tests runs as root (root login by key); not root here")
    base = Path(tempfile.mkdtemp(prefix="gw-sshd-"))
    server = start_sshd(base)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)

"""A real OpenSSH sshd on loopback, for the demo's legacy police SFTP server, tests and benchmarks.

Throwaway host and user keys in a given directory, a free port, root login by key only
(`PermitRootLogin prohibit-password`), internal-sftp, and a known_hosts file pinning the host key.
Nothing is installed from here: `make demo` and `make test` install openssh-server first
(tests/system-packages.sh), and `ensure_sshd` says what is missing and how to install it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.sim.server import loopback_socket

SSHD = "/usr/sbin/sshd"


def sshd_missing() -> list[str]:
    """The OpenSSH programs the server needs that are not installed."""
    return [prog for prog in (SSHD, "ssh-keygen") if not shutil.which(prog)]


def ensure_sshd() -> str | None:
    """None when sshd and ssh-keygen are there, else what is missing and the command installing it."""
    missing = sshd_missing()
    if not missing:
        return None
    return (f"OpenSSH is not installed (missing: {', '.join(missing)}); install it with "
            "`make system-packages` (as root) or `sudo apt-get install openssh-server`")


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "test", "-f", str(path)], check=True)
    return path


@dataclass
class SshServer:
    host: str
    port: int
    user: str
    home: Path
    user_key: Path
    host_key: Path
    known_hosts: Path
    proc: subprocess.Popen[bytes]

    def fingerprint(self) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-lf", f"{self.host_key}.pub"], check=True, capture_output=True, text=True
        ).stdout
        return out.split()[1]

    def settings(self, path: str | Path, **extra: Any) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "username": self.user,
            "private_key": {"file": str(self.user_key)},
            "known_hosts": str(self.known_hosts),
            "path": str(path),
            **extra,
        }

    def sftp_batch(self, commands: str) -> float:
        """Run OpenSSH's sftp client with a batch of commands; returns seconds taken."""
        started = time.perf_counter()
        subprocess.run(
            [
                "sftp",
                "-q",
                "-b",
                "-",
                "-P",
                str(self.port),
                "-i",
                str(self.user_key),
                "-o",
                f"UserKnownHostsFile={self.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                f"{self.user}@{self.host}",
            ],
            input=commands.encode(),
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_sshd(base: Path) -> SshServer:
    base.mkdir(parents=True, exist_ok=True)
    host_key = keygen(base / "host_ed25519")
    user_key = keygen(base / "user_ed25519")
    auth = base / "authorized_keys"
    auth.write_text((base / "user_ed25519.pub").read_text())
    with loopback_socket() as probe:
        port = probe.getsockname()[1]
    config = base / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {base / "sshd.pid"}
AuthorizedKeysFile {auth}
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
MaxStartups 50
MaxSessions 50
""")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    log = (base / "sshd.log").open("wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    pub = (base / "host_ed25519.pub").read_text().split()
    known = base / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {(base / 'sshd.log').read_text()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("sshd did not start listening within 10 s") from None
            time.sleep(0.05)
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
    return SshServer("127.0.0.1", port, user, base, user_key, host_key, known, proc)


"""SFTP adapter (paramiko): polls a sender's drop directory, writes records into a receiver's.

The rules of a file drop (completeness, archive, error sidecars, idempotency, atomic writes)
are in `adapters.filedrop`; this module supplies a pinned, authenticated connection and the
`DropFS` over it. Host keys are pinned from a known_hosts file or an OpenSSH fingerprint and
checked explicitly after the key exchange: an unknown or changed key is refused, never learned.
Transfers pipeline their requests (reads in `readv` segments, writes without waiting for each
acknowledgement) over a modest SSH window, so memory stays flat whatever the file size.

    inbound:
      - name: police-drop
        adapter: sftp
        settings:
          host: sftp.police.example
          username: gateway
          private_key: {file: /etc/gateway/keys/police}
          known_hosts: /etc/gateway/known_hosts      # or host_key_fingerprint: "SHA256:..."
          path: /outbox
          pattern: "*.xml"
          complete_when: done-file                   # or renamed, or stable (the default)
          attachments: "{stem}.*"                    # dossier files beside the record
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import logging
import posixpath
import socket
import stat
import threading
from collections.abc import Iterator

import paramiko
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.base import AdapterSpec, InboundContext, OutboundContext
from adapters.dropwriter import DropOutboundSettings, DropWriter
from adapters.filedrop import (
    ChannelStopped,
    DropFS,
    DropInbound,
    DropInboundSettings,
    Entry,
)
from gateway.model import DeliveryResult, OutboundMessage
from gateway.secrets import SecretRef

log = logging.getLogger("adapters.sftp")

WINDOW = 2 * 1024 * 1024  # SSH window; paramiko shifts its whole unread buffer per read: keep it small
SEGMENT = 4 * 1024 * 1024  # bytes of read requests in flight per download


class Connection(BaseModel):
    """How to reach and trust an SFTP server."""

    model_config = ConfigDict(extra="forbid")
    host: str
    port: int = Field(22, ge=1, le=65535)
    username: str
    password: SecretRef | None = Field(None, description="password, by reference")
    private_key: SecretRef | None = Field(
        None, description="OpenSSH/PEM private key, by reference ({file: ...})"
    )
    private_key_passphrase: SecretRef | None = None
    known_hosts: str | None = Field(None, description="OpenSSH known_hosts file holding the server's key")
    host_key_fingerprint: str | None = Field(
        None,
        pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$",
        description="the server's key as `ssh-keygen -lf` prints it (SHA256:...)",
    )
    connect_timeout: float = Field(15.0, gt=0)

    @model_validator(mode="after")
    def _pinned_and_authenticated(self) -> Connection:
        if not self.known_hosts and not self.host_key_fingerprint:
            raise ValueError("pin the server's host key: give known_hosts or host_key_fingerprint")
        if self.password is None and self.private_key is None:
            raise ValueError("give password or private_key (by reference) to log in")
        return self


class InboundSettings(DropInboundSettings, Connection):
    """An SFTP directory a legacy system drops records in."""


class OutboundSettings(DropOutboundSettings, Connection):
    """An SFTP directory a legacy system reads records from."""


class HostKeyRejected(ChannelStopped):
    """The server's host key is not the pinned one."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a public key."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _pinned(c: Connection) -> tuple[str, dict[str, paramiko.PKey]]:
    """(where it is pinned, key type -> pinned key) for the configured host and port."""
    if c.host_key_fingerprint:
        return "host_key_fingerprint", {}
    assert c.known_hosts
    hk = paramiko.HostKeys()
    try:
        hk.load(c.known_hosts)
    except OSError as e:
        raise HostKeyRejected(f"cannot read known_hosts file {c.known_hosts}: {e.strerror}") from None
    name = c.host if c.port == 22 else f"[{c.host}]:{c.port}"
    found = hk.lookup(name)
    return c.known_hosts, dict(found) if found else {}


def _check_host_key(c: Connection, key: paramiko.PKey) -> None:
    where, keys = _pinned(c)
    got = fingerprint(key)
    server = f"{c.host}:{c.port}"
    if c.host_key_fingerprint:
        if got.rstrip("=") != c.host_key_fingerprint.rstrip("="):
            raise HostKeyRejected(
                f"host key of SFTP server {server} is {key.get_name()} {got}, not the pinned "
                f"{c.host_key_fingerprint}: refusing to connect (the server was replaced or the connection "
                f"is intercepted)"
            )
        return
    if not keys:
        raise HostKeyRejected(
            f"host key of SFTP server {server} ({key.get_name()} {got}) is unknown: {where} has no key "
            f"for it; refusing to connect until an operator adds the verified key"
        )
    pinned = keys.get(key.get_name())
    if pinned is None or pinned.asbytes() != key.asbytes():
        known = ", ".join(f"{t} {fingerprint(k)}" for t, k in keys.items())
        raise HostKeyRejected(
            f"host key of SFTP server {server} CHANGED: it presented {key.get_name()} {got}, but {where} "
            f"pins {known}; refusing to connect (the server was replaced or the connection is intercepted)"
        )


def _load_key(c: Connection) -> paramiko.PKey:
    assert c.private_key
    text = c.private_key.resolve()
    passphrase = c.private_key_passphrase.resolve() if c.private_key_passphrase else None
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text + "\n"), password=passphrase)
        except paramiko.SSHException:
            continue
    raise paramiko.AuthenticationException(
        "the private key is not an Ed25519, ECDSA or RSA key, or its passphrase is wrong"
    )


def open_transport(c: Connection) -> paramiko.Transport:
    """Connect, check the host key against the pin, log in. Blocking."""
    sock = socket.create_connection((c.host, c.port), timeout=c.connect_timeout)
    t = paramiko.Transport(sock, default_window_size=WINDOW, default_max_packet_size=32768)
    try:
        _, keys = _pinned(c)
        opts = t.get_security_options()
        if keys:  # ask the server for the key type that is pinned, not whichever it prefers
            opts.key_types = [k for k in opts.key_types if k in keys] or list(opts.key_types)
        # encrypt-then-MAC first: one MAC over ciphertext, measurably faster in paramiko than MAC-then-encrypt
        opts.digests = sorted(opts.digests, key=lambda d: "-etm@" not in d)
        t.start_client(timeout=c.connect_timeout)
        _check_host_key(c, t.get_remote_server_key())
        if c.private_key is not None:
            t.auth_publickey(c.username, _load_key(c))
        else:
            assert c.password
            t.auth_password(c.username, c.password.resolve())
        t.set_keepalive(30)
        return t
    except BaseException:
        t.close()
        raise


class SegmentedReader:
    """Reads a remote file as pipelined segments: SEGMENT bytes of 32 KiB requests in flight at once.

    paramiko's whole-file prefetch either floods memory (no limit) or stalls in a sleep loop (with a
    limit); one `readv` per segment keeps the pipe full and memory bounded by one segment.
    """

    def __init__(self, f: paramiko.SFTPFile, size: int) -> None:
        self._chunks = self._segments(f, size)

    @staticmethod
    def _segments(f: paramiko.SFTPFile, size: int) -> Iterator[bytes]:
        step = paramiko.SFTPFile.MAX_REQUEST_SIZE
        for start in range(0, size, SEGMENT):
            end = min(start + SEGMENT, size)
            yield from f.readv([(o, min(step, end - o)) for o in range(start, end, step)])
        while tail := f.read(step):  # the file grew after it was listed (not in stable mode)
            yield tail

    def read(self, n: int) -> bytes:
        """The next piece (at most 32 KiB, whatever `n`), b"" at the end."""
        return next(self._chunks, b"")


class PipelinedWriter:
    """Hands paramiko one 32 KiB request at a time: it re-slices (copies) what is left of a larger
    write after every request, which costs more than the encryption on a 1 MiB write."""

    def __init__(self, f: paramiko.SFTPFile) -> None:
        self._f = f

    def write(self, data: bytes) -> None:
        step = paramiko.SFTPFile.MAX_REQUEST_SIZE
        view = memoryview(data)
        for i in range(0, len(view), step):
            self._f.write(bytes(view[i : i + step]))


class SftpFS:
    """DropFS over one SFTP session."""

    def __init__(self, sftp: paramiko.SFTPClient) -> None:
        self.sftp = sftp

    def list_files(self, directory: str) -> list[Entry]:
        return [
            Entry(a.filename, a.st_size or 0, float(a.st_mtime or 0))
            for a in self.sftp.listdir_attr(directory)
            if a.st_mode is not None and stat.S_ISREG(a.st_mode)
        ]

    def stat(self, path: str) -> Entry | None:
        try:
            a = self.sftp.stat(path)
        except FileNotFoundError:
            return None
        return Entry(posixpath.basename(path), a.st_size or 0, float(a.st_mtime or 0))

    @contextlib.contextmanager
    def open_read(self, path: str, size: int) -> Iterator[SegmentedReader]:
        with self.sftp.open(path, "rb") as f:
            yield SegmentedReader(f, size)

    @contextlib.contextmanager
    def open_write(self, path: str) -> Iterator[PipelinedWriter]:
        with self.sftp.open(path, "wb", bufsize=0) as f:
            f.set_pipelined(True)
            yield PipelinedWriter(f)

    def rename(self, src: str, dst: str) -> None:
        self.sftp.posix_rename(src, dst)

    def remove(self, path: str) -> None:
        self.sftp.remove(path)

    def makedirs(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        cur = "/" if path.startswith("/") else ""
        for p in parts:
            cur = posixpath.join(cur, p) if cur else p
            try:
                self.sftp.stat(cur)
            except FileNotFoundError:
                self.sftp.mkdir(cur)


class SftpInbound(DropInbound):
    def __init__(self, settings: InboundSettings, context: InboundContext) -> None:
        self.conn = settings
        self._transport: paramiko.Transport | None = None
        super().__init__(settings, context)

    def where(self) -> str:
        c = self.conn
        return f"sftp://{c.username}@{c.host}:{c.port}/{self.s.path.lstrip('/')}"

    async def connect(self) -> DropFS:
        await self.disconnect()
        self._transport = await asyncio.to_thread(open_transport, self.conn)
        sftp = paramiko.SFTPClient.from_transport(self._transport)
        assert sftp is not None
        return SftpFS(sftp)

    async def disconnect(self) -> None:
        t, self._transport = self._transport, None
        if t is not None:
            await asyncio.to_thread(t.close)

    async def aclose(self) -> None:
        await self.disconnect()


class SftpOutbound:
    """One SSH connection reused by every delivery; each delivery gets its own SFTP channel on it."""

    def __init__(self, settings: OutboundSettings, context: OutboundContext) -> None:
        self.settings = settings
        self.writer = DropWriter(settings, context.files, context.state_dir)
        self._transport: paramiko.Transport | None = None
        self._lock = threading.Lock()

    def _session(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._transport is None or not self._transport.is_active():
                if self._transport is not None:
                    self._transport.close()
                self._transport = open_transport(self.settings)
            sftp = paramiko.SFTPClient.from_transport(self._transport)
            assert sftp is not None
            return sftp

    def _deliver(self, message: OutboundMessage) -> DeliveryResult:
        with self._session() as sftp:
            return self.writer.write(SftpFS(sftp), message)

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        s = self.settings
        where = f"SFTP server {s.host}:{s.port}, directory {s.path}"
        try:
            return await asyncio.to_thread(self._deliver, message)
        except HostKeyRejected as e:
            return DeliveryResult.transient(str(e))
        except paramiko.AuthenticationException as e:
            return DeliveryResult.transient(f"{where}: login as {s.username} refused: {e}")
        except (OSError, EOFError, paramiko.SSHException) as e:
            self._drop()
            return DeliveryResult.transient(f"{where}: {type(e).__name__}: {e}")

    def _drop(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self._drop)


SPEC = AdapterSpec(
    name="sftp", summary="records and dossier files polled from and written to SFTP servers, host keys pinned",
    inbound_settings=InboundSettings, inbound=SftpInbound, outbound_settings=OutboundSettings,
    outbound=SftpOutbound)

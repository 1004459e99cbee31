"""SFTP adapter (paramiko): polls a sender's drop directory, writes records into a receiver's.

The rules of a file drop (completeness, archive, error sidecars, idempotency, atomic writes)
are in `adapters.filedrop`; this module supplies a pinned, authenticated connection and the
`DropFS` over it. Host keys are pinned from a known_hosts file or an OpenSSH fingerprint and
checked explicitly after the key exchange: an unknown or changed key is refused, never learned.
Transfers pipeline their requests (a sliding window of reads, writes without waiting for each
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
import collections
import contextlib
import hashlib
import io
import logging
import posixpath
import socket
import stat
import threading
from collections.abc import Iterator
from typing import Protocol, cast

import paramiko
from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS, CMD_WRITE, int64
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

# SSH window: paramiko shifts its whole unread buffer per read, so it stays modest; large packets
# and requests instead, since paramiko's cost is per packet and per request far more than per byte
WINDOW = 4 * 1024 * 1024
PACKET = 128 * 1024  # largest SSH packet the server may send us (OpenSSH allows up to 256 KiB)
REQUEST = 128 * 1024  # bytes asked for by one SFTP read request (OpenSSH answers up to 255 KiB)
DEPTH = WINDOW // REQUEST  # read requests in flight per download
# AES-GCM first: paramiko does it in one call into OpenSSL per packet; CTR adds an HMAC pass in Python
_AEAD = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


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
    t = paramiko.Transport(sock, default_window_size=WINDOW, default_max_packet_size=PACKET)
    try:
        _, keys = _pinned(c)
        opts = t.get_security_options()
        if keys:  # ask the server for the key type that is pinned, not whichever it prefers
            opts.key_types = [k for k in opts.key_types if k in keys] or list(opts.key_types)
        # encrypt-then-MAC first: one MAC over ciphertext, measurably faster in paramiko than MAC-then-encrypt
        opts.digests = sorted(opts.digests, key=lambda d: "-etm@" not in d)
        opts.ciphers = sorted(opts.ciphers, key=lambda c: c not in _AEAD)
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


class _Wire(Protocol):
    """The request and reply calls of paramiko's SFTPClient that its public API keeps to itself
    (and its type stubs leave out): the windows below need requests without waiting for replies."""

    def _async_request(self, fileobj: object, t: int, *args: object) -> int: ...
    def _read_response(self, waitfor: int | None = None) -> tuple[int | None, paramiko.Message | None]: ...
    def _convert_status(self, msg: paramiko.Message) -> None: ...


class _Replies:
    """Where paramiko hands the replies to a download's read requests, keyed by request number (it
    reads whichever reply comes next; one not claimed by a file object would be dropped)."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        self.got[num] = (t, msg)


class WindowedReader:
    """Reads a remote file with DEPTH read requests always in flight, each answered reply asking
    for the next piece at once, as OpenSSH's sftp does.

    paramiko's own prefetch either floods memory (no limit) or stalls in a sleep loop (with a
    limit), and batches of `readv` drain the pipe at the end of every batch; here the pipe never
    drains and memory is bounded by the window. A short read (a server may answer less than asked)
    asks for the rest before going on, and smaller pieces from then on; a file that grew after it
    was listed is read to its end.
    """

    def __init__(self, sftp: paramiko.SFTPClient, f: paramiko.SFTPFile, size: int) -> None:
        self._chunks = self._pieces(cast(_Wire, sftp), f, size)

    @staticmethod
    def _pieces(sftp: _Wire, f: paramiko.SFTPFile, size: int) -> Iterator[bytes]:
        replies = _Replies()
        pending: collections.deque[tuple[int, int, int]] = collections.deque()
        asked, request = 0, REQUEST

        def ask(offset: int, length: int) -> tuple[int, int, int]:
            return sftp._async_request(replies, CMD_READ, f.handle, int64(offset), length), offset, length

        def refill() -> None:
            nonlocal asked
            while asked < size and len(pending) < DEPTH:
                n = min(request, size - asked)
                pending.append(ask(asked, n))
                asked += n

        refill()
        while pending:
            num, offset, length = pending.popleft()
            while num not in replies.got:
                sftp._read_response()  # one reply, to whichever request it answers
            t, msg = replies.got.pop(num)
            if t == CMD_STATUS:
                sftp._convert_status(msg)  # EOFError at the end of a file shorter than listed
            elif t != CMD_DATA:
                raise paramiko.SFTPError(f"expected data from the server, got message type {t}")
            data = msg.get_string()
            if 0 < len(data) < length:  # a server answering less: the rest first, smaller asks from now on
                pending.appendleft(ask(offset + len(data), length - len(data)))
                request = min(request, len(data))
            refill()
            yield data
        f.seek(size)
        while tail := f.read(REQUEST):  # the file grew after it was listed (not in stable mode)
            yield tail

    def read(self, n: int) -> bytes:
        """The next piece (at most REQUEST bytes, whatever `n`), b"" at the end."""
        try:
            return next(self._chunks, b"")
        except EOFError:  # the file ended before its listed size: what came is what there is
            return b""


class WindowedWriter:
    """Writes a remote file in REQUEST-sized write requests, DEPTH of them unacknowledged at most.

    paramiko's own writes are 32 KiB requests whose acknowledgements are collected only now and
    then, and it re-slices (copies) what is left of a larger write after every request; here each
    piece is sliced once and the acknowledgements are read as the window moves, so a refusal (disk
    full, permission) stops the transfer within DEPTH requests. `finish` reads the last ones.
    """

    def __init__(self, sftp: paramiko.SFTPClient, f: paramiko.SFTPFile) -> None:
        self._sftp, self._f = cast(_Wire, sftp), f
        self._replies = _Replies()
        self._pending: collections.deque[int] = collections.deque()
        self._offset = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        for i in range(0, len(view), REQUEST):
            piece = bytes(view[i : i + REQUEST])
            self._pending.append(self._sftp._async_request(
                self._replies, CMD_WRITE, self._f.handle, int64(self._offset), piece))
            self._offset += len(piece)
            while len(self._pending) > DEPTH:
                self._settle(self._pending.popleft())

    def finish(self) -> None:
        while self._pending:
            self._settle(self._pending.popleft())

    def _settle(self, num: int) -> None:
        while num not in self._replies.got:
            self._sftp._read_response()
        t, msg = self._replies.got.pop(num)
        if t != CMD_STATUS:
            raise paramiko.SFTPError(f"expected a status from the server, got message type {t}")
        self._sftp._convert_status(msg)  # IOError naming the server's reason when it refused


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
    def open_read(self, path: str, size: int) -> Iterator[WindowedReader]:
        with self.sftp.open(path, "rb") as f:
            yield WindowedReader(self.sftp, f, size)

    @contextlib.contextmanager
    def open_write(self, path: str) -> Iterator[WindowedWriter]:
        with self.sftp.open(path, "wb", bufsize=0) as f:
            w = WindowedWriter(self.sftp, f)
            yield w
            w.finish()

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

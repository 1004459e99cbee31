"""The SFTP transfer windows against servers that behave as OpenSSH does not: replies out of
order, reads answered short, a file shorter than listed, a write refused mid-file.

OpenSSH answers in order and in full (tests/test_sftp.py runs against it); these edges are what
other servers may do, so a scripted server stands in for them here.
"""

from __future__ import annotations

import os
from typing import Any

import paramiko
import pytest
from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS, CMD_WRITE, SFTP_EOF, SFTP_FAILURE, SFTP_OK

from adapters import sftp


def _reply(kind: int, *fields: Any) -> paramiko.Message:
    m = paramiko.Message()
    for f in fields:
        if isinstance(f, int):
            m.add_int(f)
        else:
            m.add_string(f)
    m.rewind()
    m.kind = kind  # type: ignore[attr-defined]
    return m


class ScriptedServer:
    """Just enough of paramiko.SFTPClient for the windows: requests queue up, and replies come
    back newest first (the worst order), reads at most `cap` bytes."""

    _convert_status = vars(paramiko.SFTPClient)["_convert_status"]

    def __init__(self, content: bytes, cap: int, refuse_write_at: int | None = None) -> None:
        self.content, self.cap, self.refuse_write_at = content, cap, refuse_write_at
        self.written = bytearray()
        self.queued: list[tuple[Any, int, paramiko.Message]] = []
        self.most_in_flight = 0
        self._num = 0

    def _async_request(self, fileobj: Any, t: int, handle: bytes, offset: int, arg: Any) -> int:
        self._num += 1
        if t == CMD_READ:
            data = self.content[offset : offset + min(arg, self.cap)]
            reply = _reply(CMD_DATA, data) if data else _reply(CMD_STATUS, SFTP_EOF, "EOF", "")
        else:
            assert t == CMD_WRITE
            if self.refuse_write_at is not None and offset >= self.refuse_write_at:
                reply = _reply(CMD_STATUS, SFTP_FAILURE, "disk full", "")
            else:
                self.written[offset : offset + len(arg)] = arg
                reply = _reply(CMD_STATUS, SFTP_OK, "", "")
        self.queued.append((fileobj, self._num, reply))
        self.most_in_flight = max(self.most_in_flight, len(self.queued))
        return self._num

    def _read_response(self) -> None:
        fileobj, num, msg = self.queued.pop()
        fileobj._async_response(msg.kind, msg, num)  # type: ignore[attr-defined]


class ScriptedFile:
    handle = b"h"

    def __init__(self, server: ScriptedServer) -> None:
        self.server, self.pos = server, 0

    def seek(self, offset: int) -> None:
        self.pos = offset

    def read(self, n: int) -> bytes:
        data = self.server.content[self.pos : self.pos + n]
        self.pos += len(data)
        return data


def _read_all(server: ScriptedServer, listed: int) -> bytes:
    reader = sftp.WindowedReader(server, ScriptedFile(server), listed)  # type: ignore[arg-type]
    out = bytearray()
    while piece := reader.read(1 << 20):
        out += piece
    return bytes(out)


def test_short_out_of_order_reads_come_back_whole_and_in_order() -> None:
    content = os.urandom(3 * sftp.REQUEST * sftp.DEPTH + 12345)
    server = ScriptedServer(content, cap=sftp.REQUEST // 3 + 7)
    assert _read_all(server, len(content)) == content
    assert server.most_in_flight <= sftp.DEPTH + 1


def test_a_file_shorter_than_listed_gives_what_there_is() -> None:
    content = os.urandom(sftp.REQUEST * 5 + 99)
    assert _read_all(ScriptedServer(content, cap=sftp.REQUEST), len(content) * 2) == content


def test_a_file_grown_since_listed_is_read_to_its_end() -> None:
    content = os.urandom(sftp.REQUEST * 3)
    assert _read_all(ScriptedServer(content, cap=sftp.REQUEST), sftp.REQUEST * 2) == content


def test_writes_land_at_their_offsets_and_a_refusal_stops_the_transfer() -> None:
    data = os.urandom(sftp.REQUEST * 7 + 5)
    server = ScriptedServer(b"", cap=0)
    w = sftp.WindowedWriter(server, ScriptedFile(server))  # type: ignore[arg-type]
    w.write(data[:1000])
    w.write(data[1000:])
    w.finish()
    assert bytes(server.written) == data

    refusing = ScriptedServer(b"", cap=0, refuse_write_at=sftp.REQUEST * 2)
    w = sftp.WindowedWriter(refusing, ScriptedFile(refusing))  # type: ignore[arg-type]
    with pytest.raises(OSError, match="disk full"):
        for _ in range(sftp.DEPTH + 3):
            w.write(os.urandom(sftp.REQUEST))
        w.finish()

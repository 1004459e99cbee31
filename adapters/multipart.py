"""A record with its dossier files as one multipart/form-data body, both ways, streamed.

Part `record` carries the record; each part `file` carries one dossier file, named by its
filename and typed by its Content-Type (RFC 7578). Files never pass through memory whole:
going out they are read from the file store a chunk at a time behind an exact Content-Length
(some legacy receivers refuse chunked uploads); coming in they are written to the file store as
the parts arrive, through python-multipart's streaming parser (the one Starlette uses).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from gateway.files import CHUNK, FileStore, FileWriter
from gateway.model import Attachment

RECORD, FILE = "record", "file"


def _quoted(name: str) -> str:
    """A filename as browsers write it in form data: UTF-8, with quote and line breaks escaped."""
    return name.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


@dataclass(frozen=True)
class Form:
    content_type: str
    length: int
    _parts: Sequence[bytes | tuple[str, int]]  # literal bytes, or (file hash, size) to stream
    _files: FileStore

    async def stream(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
                continue
            sha, size = part
            f = await asyncio.to_thread(self._files.open, sha)
            try:
                sent = 0
                while chunk := await asyncio.to_thread(f.read, CHUNK):
                    sent += len(chunk)
                    yield chunk
                if sent != size:  # the length promised in the header would be a lie
                    raise OSError(f"dossier file {sha} changed size while it was sent")
            finally:
                f.close()


def encode(record: bytes, record_name: str, record_type: str, attachments: Sequence[Attachment],
           files: FileStore) -> Form:
    """The form for one delivery; raises FileNotFoundError naming a dossier file not in the store."""
    boundary = "case-exchange-" + secrets.token_hex(16)
    parts: list[bytes | tuple[str, int]] = []

    def head(name: str, filename: str, media_type: str) -> bytes:
        return (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{_quoted(filename)}"\r\n'
                f"Content-Type: {media_type}\r\n\r\n").encode()

    parts += [head(RECORD, record_name, record_type), record, b"\r\n"]
    length = len(parts[0]) + len(record) + 2
    for a in attachments:
        path = files.path_for(a.sha256)
        if not path.is_file():
            raise FileNotFoundError(a.name)
        size = path.stat().st_size
        h = head(FILE, a.name, a.media_type)
        parts += [h, (a.sha256, size), b"\r\n"]
        length += len(h) + size + 2
    tail = f"--{boundary}--\r\n".encode()
    parts.append(tail)
    length += len(tail)
    return Form(f"multipart/form-data; boundary={boundary}", length, parts, files)


class FormError(Exception):
    def __init__(self, rule: str, text: str, status: int = 400) -> None:
        super().__init__(text)
        self.rule = rule
        self.status = status


def _unavailable(e: OSError) -> FormError:
    return FormError("gateway.unavailable", f"the gateway could not store the dossier files just now "
                                            f"({e.strerror or type(e).__name__}), send them again", 503)


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)  # raw: a filename may be UTF-8
    name: str = ""
    filename: str = ""
    media_type: str = "application/octet-stream"
    writer: FileWriter | None = None


class FormReader:
    """Feeds on a multipart/form-data body chunk by chunk (call `feed` off the event loop: it
    writes files), keeping the record in memory and writing each file to the store as it comes."""

    def __init__(self, content_type: str, files: FileStore, max_record: int, max_files: int,
                 max_file_count: int = 1000) -> None:
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise FormError("http.multipart", "the multipart body names no boundary in its Content-Type")
        self.files, self.max_record, self.max_files, self.max_file_count = files, max_record, max_files, max_file_count
        self.record: bytearray | None = None
        self.record_name: str | None = None
        self.record_type = "application/xml"
        self.attachments: list[Attachment] = []
        self._sealed: list[FileWriter] = []  # complete files, committed only when the whole body is taken
        self._files_bytes = 0
        self._part = _Part()
        self._field = b""
        self._value = b""
        self._error: FormError | None = None
        self._ended = False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_part_data": self._data, "on_part_end": self._end,
            "on_header_field": self._hfield, "on_header_value": self._hvalue, "on_header_end": self._hend,
            "on_headers_finished": self._headers_done, "on_end": self._all_done,
        })

    # -- python-multipart's callbacks -------------------------------------------------------
    def _begin(self) -> None:
        self._part = _Part()

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _hend(self) -> None:
        self._part.headers[self._field.decode("latin-1").lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        p = self._part
        _, disp = parse_options_header(p.headers.get("content-disposition", b""))
        p.name = disp.get(b"name", b"").decode("utf-8", "replace")
        p.filename = disp.get(b"filename", b"").decode("utf-8", "replace")
        declared = p.headers.get("content-type", b"").decode("latin-1").strip()
        p.media_type = declared or "application/octet-stream"
        if p.name == RECORD:
            if self.record is not None:
                raise FormError("http.multipart", "the body has two parts named 'record'; send one record at a time")
            self.record = bytearray()
            self.record_name = p.filename or None
            self.record_type = declared or "application/xml"
        elif p.name == FILE:
            if len(self.attachments) >= self.max_file_count:
                raise FormError("http.multipart", f"more than {self.max_file_count} dossier files in one body",
                                413)
            if not p.filename:
                raise FormError("http.multipart", f"dossier file {len(self.attachments) + 1} has no filename")
            p.writer = self.files.writer()
        else:
            raise FormError("http.multipart", f"a part named '{p.name}': this endpoint takes a part 'record' "
                                              "and parts 'file' only")

    def _data(self, data: bytes, start: int, end: int) -> None:
        p = self._part
        if p.writer is not None:
            self._files_bytes += end - start
            if self._files_bytes > self.max_files:
                raise FormError("http.too-large", f"the dossier files are over the limit of {self.max_files:,} bytes",
                                413)
            p.writer.write(data[start:end])
        elif self.record is not None and p.name == RECORD:
            self.record += data[start:end]
            if len(self.record) > self.max_record:
                raise FormError("xml.too-large", f"the record is over the limit of {self.max_record:,} bytes", 413)

    def _end(self) -> None:
        p = self._part
        if p.writer is not None:
            sha, size = p.writer.seal()
            self._sealed.append(p.writer)
            p.writer = None
            self.attachments.append(Attachment(p.filename, sha, size, p.media_type))

    def _all_done(self) -> None:
        self._ended = True

    # -- the reader's own interface ------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormError:
            self.discard()
            raise
        except OSError as e:  # the file store cannot take the files (a full disk): not the sender's fault
            self.discard()
            raise _unavailable(e) from None
        except Exception as e:  # python-multipart's own MultipartParseError and friends
            self.discard()
            raise FormError("http.multipart", f"the multipart body is malformed: {e}") from None

    def finish(self, keep: bool = True) -> tuple[bytes, list[Attachment]]:
        """The record and its files; `keep` False: the files were only hashed, and leave the store now."""
        if not self._ended:
            self.discard()
            raise FormError("http.multipart", "the multipart body ends before its closing boundary")
        if self.record is None:
            self.discard()
            raise FormError("http.multipart", "the multipart body has no part named 'record'")
        if not keep:
            self.discard()
            record, self.record = bytes(self.record), bytearray()
            return record, self.attachments
        try:
            for w in self._sealed:
                w.commit()
        except OSError as e:
            self.discard()
            raise _unavailable(e) from None
        self._sealed.clear()
        record, self.record = bytes(self.record), bytearray()  # the buffer goes now, not when gc breaks our cycle
        return record, self.attachments

    def discard(self) -> None:
        """Drop every file of a body that is refused or breaks off: nothing of it stays in the store."""
        if self._part.writer is not None:
            self._part.writer.abandon()
            self._part.writer = None
        for w in self._sealed:
            w.abandon()
        self._sealed.clear()

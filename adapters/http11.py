"""A kept-alive HTTP/1.1 connection as an httpx transport: the HTTP adapter's way out.

httpx's own transport (httpcore over anyio, h11 in pure Python) costs the gateway 1.4 times the
CPU per delivered record; a POST with a known body and one answer needs none of its generality.
Measured with bench/http_pipeline.py (5 KB records, SQLite store, 2 cores busy with other work),
the clients taking turns within each invocation, 15 rounds in all:

    python bench/http_pipeline.py --records 5000 --latency-records 0 --client http11 httpx --rounds 3
    python bench/http_pipeline.py --records 5000 --latency-records 0 --client http11 httpx httpx-pool --rounds 3
    python bench/http_pipeline.py --records 10000 --latency-records 0 --durability normal \
        --client http11 httpx --rounds 3

  * end to end: 270 records/s against 211/s for httpx's transport (medians); per round, this one
    delivered 1.38 times as many (median; 0.73-2.4 as the machine's load moved, 11 of 15 rounds
    1.2 or more);
  * gateway CPU per record: 1.94 ms against 2.70 ms, httpx 1.40 times (1.28-1.49 in every round).
httpx's transport was lent out one kept connection each, as here; shared as one pool of 16
connections (`httpx-pool`) it took 4.1 ms per record, its pool's bookkeeping growing with the
connections.

This transport keeps one connection to one origin on asyncio streams and reads answers with
httptools (the C parser uvicorn already uses), behind httpx's public transport interface, so the
adapter's code, error classes and tests stay httpx's. One request at a time: the adapter pools
transports, not connections. A body is either bytes or an async stream.

Timeouts: `connect` bounds opening the connection (and the TLS handshake); `read` bounds the
whole exchange after that, from the first byte sent to the last byte of the answer. A streamed
body (a record with its dossier files) restarts that limit with each chunk sent, so a large
upload that keeps moving is not cut off, while one that stalls is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import httptools
import httpx

MAX_ANSWER = 16 * 1024 * 1024  # bytes of an answer kept; a larger one is cut and its connection closed


class _Answer:
    """httptools callbacks: status, headers and body of one response."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.keep_alive = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.headers_done = False
        self.done = False
        self.too_large = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, chunk: bytes) -> None:
        if len(self.body) + len(chunk) > MAX_ANSWER:
            self.too_large = True
            return
        self.body += chunk

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # 100 Continue and the like: the answer follows
            self.headers, self.body, self.headers_done = [], bytearray(), False
            return
        self.done = True
        self.keep_alive = self.parser.should_keep_alive()  # the parser forgets it once the message ends


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """One HTTP/1.1 connection to one origin, opened on first use and kept while the peer keeps it."""

    def __init__(self, ssl_context: ssl.SSLContext | None, connect_timeout: float, read_timeout: float) -> None:
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"{url.scheme!r} is not http or https", request=request)
        reader, writer = await self._connection(url, request)
        head = [f"{request.method} {url.raw_path.decode('ascii')} HTTP/1.1\r\n".encode("ascii")]
        head += [k + b": " + v + b"\r\n" for k, v in request.headers.raw]
        head.append(b"\r\n")
        answer = _Answer()
        closed = False
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:  # a streamed body (a dossier): sent a chunk at a time
            body = None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._read_timeout) as deadline:
                if body is not None:
                    writer.write(b"".join(head) + body)
                    await writer.drain()
                else:
                    writer.write(b"".join(head))
                    assert isinstance(request.stream, httpx.AsyncByteStream)
                    async for chunk in request.stream:
                        writer.write(chunk)
                        await writer.drain()
                        # an upload that moves is not stuck: the time limit counts from the last chunk
                        deadline.reschedule(loop.time() + self._read_timeout)
                while not answer.done:
                    data = await reader.read(65536)
                    if not data:
                        closed = True
                        self._eof(answer, request)
                        break
                    answer.parser.feed_data(data)
        except TimeoutError:
            await self.aclose()
            raise httpx.ReadTimeout(f"no complete answer within {self._read_timeout:g} s", request=request) from None
        except httptools.HttpParserError as e:
            await self.aclose()
            raise httpx.RemoteProtocolError(f"the receiver's answer is not valid HTTP: {e}", request=request) from e
        except OSError as e:
            await self.aclose()
            raise httpx.WriteError(f"the connection broke: {e}", request=request) from e
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            await self.aclose()
            raise
        if closed or answer.too_large or not answer.keep_alive:
            await self.aclose()
        return httpx.Response(answer.parser.get_status_code(), headers=answer.headers, content=bytes(answer.body),
                              extensions={"http_version": b"HTTP/1.1"}, request=request)

    @staticmethod
    def _eof(answer: _Answer, request: httpx.Request) -> None:
        """The peer closed: complete only for an answer whose body runs to the end of the connection."""
        framed = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in answer.headers)
        if answer.headers_done and not framed:
            answer.done = True
            return
        what = "before answering" if not answer.headers_done else "in the middle of its answer"
        raise httpx.RemoteProtocolError(f"the receiver closed the connection {what}", request=request)

    async def _connection(
        self, url: httpx.URL, request: httpx.Request
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kept_reader, kept_writer = self._reader, self._writer
        if kept_reader is not None and kept_writer is not None and not kept_reader.at_eof() \
                and not kept_writer.is_closing():
            return kept_reader, kept_writer
        await self.aclose()  # the peer dropped the idle connection: open a new one
        tls = url.scheme == "https"
        port = url.port or (443 if tls else 80)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(url.host, port, ssl=self._ssl if tls else None,
                                        server_hostname=url.host if tls else None, limit=65536),
                self._connect_timeout)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection within {self._connect_timeout:g} s",
                                       request=request) from None
        except OSError as e:
            raise httpx.ConnectError(str(e) or type(e).__name__, request=request) from e
        self._reader, self._writer = reader, writer
        return reader, writer

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):  # a peer that never confirms the close
                await asyncio.wait_for(writer.wait_closed(), 1.0)


__all__ = ["MAX_ANSWER", "KeepAliveTransport"]

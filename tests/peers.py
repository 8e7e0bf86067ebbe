"""Hostile and faulty peers for the robustness tests, and a memory probe.

- :func:`serving`: a ``wsframed.serve`` server on 127.0.0.1 whose handler outcomes are
  recorded, so a test can assert what the handler saw after the connection ended.
- :class:`RawWsClient`: a WebSocket client written by hand over a plain TCP
  connection, so a test can send frames that no well-behaved library would (huge
  declared lengths, unmasked frames, half a frame then a reset).
- :func:`reset`: drop a TCP connection with an RST instead of a FIN.
- :func:`traced`: the peak of Python allocations in a block (``tracemalloc``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

import wsframed
from wsframed import Framed

KiB = 1024
MiB = 1024 * KiB


# wsframed.serve with recorded outcomes --------------------------------------------


@dataclass
class Outcomes:
    """What each handler call received and how it ended (in order of completion)."""

    items: list[list[Any]] = field(default_factory=list)
    errors: list[BaseException | None] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` handler calls have finished (bounded)."""
        async with asyncio.timeout(timeout):
            while len(self.errors) < count:
                self.done.clear()
                await self.done.wait()


def recording_handler(
    outcomes: Outcomes,
    body: Callable[[Framed[Any], list[Any]], Awaitable[None]] | None = None,
) -> Callable[[Framed[Any]], Awaitable[None]]:
    """A handler that receives every frame (or runs ``body``) and records the outcome.

    The exception, if any, is re-raised so that ``wsframed.serve`` handles it as it
    handles any failing handler (log, close with 1011).
    """

    async def handler(framed: Framed[Any]) -> None:
        items: list[Any] = []
        outcomes.items.append(items)
        try:
            if body is None:
                async for item in framed:
                    items.append(item)
            else:
                await body(framed, items)
        except BaseException as exc:
            outcomes.errors.append(exc)
            outcomes.done.set()
            raise
        outcomes.errors.append(None)
        outcomes.done.set()

    return handler


@asynccontextmanager
async def serving(
    codec: Any,
    body: Callable[[Framed[Any], list[Any]], Awaitable[None]] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[str, Outcomes, wsframed.FramedServer]]:
    """Run ``wsframed.serve`` on an ephemeral loopback port; yield (url, outcomes, server)."""
    outcomes = Outcomes()
    async with wsframed.serve(
        recording_handler(outcomes, body), "127.0.0.1", 0, codec=codec, **options
    ) as server:
        yield f"ws://127.0.0.1:{server.port}", outcomes, server


def close_code(exc: WsConnectionClosed) -> int | None:
    """The close code the peer sent, as seen by a websockets connection (None: none)."""
    return None if exc.rcvd is None else int(exc.rcvd.code)


# A plain websockets server that hands its connections to the test -----------------


@asynccontextmanager
async def raw_server(**options: Any) -> AsyncIterator[tuple[str, asyncio.Queue[Any]]]:
    """Run a websockets server; yield (url, queue of its ServerConnections).

    Each connection stays open until the test closes it or the block exits.
    """
    connections: asyncio.Queue[Any] = asyncio.Queue()
    release = asyncio.Event()

    async def handler(connection: Any) -> None:
        connections.put_nowait(connection)
        await release.wait()

    async with serve(handler, "127.0.0.1", 0, **{"compression": None, **options}) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        try:
            yield f"ws://127.0.0.1:{port}", connections
        finally:
            release.set()
            for connection in list(server.connections):
                connection.transport.abort()


# TCP -----------------------------------------------------------------------------


def reset(transport: asyncio.BaseTransport) -> None:
    """Abort ``transport`` with a TCP RST (SO_LINGER 0), not a FIN."""
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


def shrink_buffers(*transports: asyncio.BaseTransport, size: int = 64 * 1024) -> None:
    """Make the kernel's send buffers small, so that backpressure starts early.

    Loopback sockets otherwise absorb megabytes before a writer blocks. Only the send
    side is shrunk: a small receive window makes loopback TCP crawl (delayed ACKs).
    """
    for transport in transports:
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


# A WebSocket client by hand ----------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def frame_header(
    opcode: int, length: int, *, fin: bool = True, mask: bool = True, rsv: int = 0
) -> bytes:
    """The header of a WebSocket frame (RFC 6455 section 5.2), without the masking key."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask else 0
    if length < 126:
        return bytes([first, mask_bit | length])
    if length < 1 << 16:
        return bytes([first, mask_bit | 126]) + struct.pack(">H", length)
    return bytes([first, mask_bit | 127]) + struct.pack(">Q", length)


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0
) -> bytes:
    """A complete WebSocket frame as a client sends it (masked unless told otherwise)."""
    header = frame_header(opcode, len(payload), fin=fin, mask=mask, rsv=rsv)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


class RawWsClient:
    """A hand-written WebSocket client: it does the opening handshake, then lets the
    test write any bytes, and reads the server's frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, *, path: str = "/") -> RawWsClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        if not status.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"handshake refused: {status!r}")
        return cls(reader, writer)

    def send(self, opcode: int, payload: bytes, **options: Any) -> None:
        self.writer.write(frame(opcode, payload, **options))

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_frame(self) -> tuple[int, bytes]:
        """Read the server's next frame: (opcode, payload). IncompleteReadError at EOF."""
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Skip the server's frames until its close frame; return its code (None: EOF)."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    opcode, payload = await self.read_frame()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return None
                if opcode == OP_CLOSE:
                    return struct.unpack(">H", payload[:2])[0] if payload else 1005

    def reset(self) -> None:
        reset(self.writer.transport)

    def close(self) -> None:
        self.writer.close()


# Memory -----------------------------------------------------------------------------


@dataclass
class Peak:
    """The peak of traced allocations above the level when tracing started, in bytes."""

    bytes: int = 0


@contextmanager
def traced() -> Iterator[Peak]:
    """Measure the peak of Python allocations made inside the block.

    Tracing slows allocation-heavy code several times: keep traced blocks small.
    """
    peak = Peak()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        yield peak
    finally:
        peak.bytes = tracemalloc.get_traced_memory()[1] - baseline
        if started:
            tracemalloc.stop()

"""connect(): what the server sees when the client's connection ends on an error path.

A real websockets server on 127.0.0.1 records the close frame each connection got;
the client is wsframed.connect() used the three ways it documents (await, async with,
async for). Written for mutants of wsframed/client.py that no test killed
(docs/contributing.md, Testing).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidURI

import wsframed
from wsframed.codecs import LinesCodec

pytestmark = pytest.mark.timeout(30)


class Peer:
    """A websockets server that sends ``greeting`` and records each connection's close."""

    def __init__(self, greeting: bytes | None = None):
        self.greeting = greeting
        self.closes: list[tuple[int | None, str | None]] = []
        self.received: list[bytes | str] = []  # by every connection, in order
        self.ended = asyncio.Condition()
        self.port = 0

    async def handler(self, connection: ServerConnection) -> None:
        if self.greeting is not None:
            await connection.send(self.greeting)
        try:
            async for message in connection:
                self.received.append(message)
        except WsConnectionClosed:
            pass
        received = connection.protocol.close_rcvd
        async with self.ended:
            self.closes.append(
                (None, None) if received is None else (received.code, received.reason)
            )
            self.ended.notify_all()

    async def wait_for_closes(self, count: int) -> list[tuple[int | None, str | None]]:
        async with asyncio.timeout(10), self.ended:
            await self.ended.wait_for(lambda: len(self.closes) >= count)
        return self.closes

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@asynccontextmanager
async def peer(greeting: bytes | None = None) -> AsyncIterator[Peer]:
    server_peer = Peer(greeting)
    async with serve(server_peer.handler, "127.0.0.1", 0, compression=None) as server:
        server_peer.port = next(iter(server.sockets)).getsockname()[1]
        yield server_peer


LIMIT_0 = r"^limit must be a positive number of bytes, not 0$"


def quick() -> Generator[float]:
    return (0.01 for _ in itertools.count())


async def test_leaving_async_with_cleanly_closes_with_1000() -> None:
    async with peer() as server:
        async with wsframed.connect(server.uri, LinesCodec()) as framed:
            await framed.send("hello")
        assert await server.wait_for_closes(1) == [(1000, "")]


async def test_leaving_async_with_by_an_exception_closes_with_1011() -> None:
    """The server can tell a failed client from a finished one (1011, not 1000)."""
    async with peer() as server:
        with pytest.raises(KeyError):
            async with wsframed.connect(server.uri, LinesCodec()):
                raise KeyError("the client's own bug")
        assert await server.wait_for_closes(1) == [(1011, "")]


async def test_the_loop_going_round_closes_the_connection_of_the_turn_before() -> None:
    """``async for framed in connect(...)``: going round closes the previous connection
    with 1000 although the server keeps it open, before the next one is handed over,
    and what the turn fed without flushing is sent before that close."""
    async with peer() as server:
        turns = 0
        async with asyncio.timeout(10):
            async for framed in wsframed.connect(server.uri, LinesCodec(), reconnect_delays=quick):
                turns += 1
                if turns == 1:
                    framed.feed("last words")  # buffered, not flushed
                    continue
                assert server.received == [b"last words\n"]
                assert await server.wait_for_closes(1) == [(1000, "")]
                await framed.aclose()
                break
        assert await server.wait_for_closes(2) == [(1000, ""), (1000, "")]


async def test_bad_stream_options_close_the_connection_just_opened() -> None:
    """``limit=0`` is refused after the handshake: the caller gets the ValueError and
    the server sees the connection closed with 1000, not left open."""
    async with peer() as server:
        with pytest.raises(ValueError, match=LIMIT_0):
            await wsframed.connect(server.uri, LinesCodec(), limit=0)
        assert await server.wait_for_closes(1) == [(1000, "")]
        with pytest.raises(ValueError, match=LIMIT_0):
            async with wsframed.connect(server.uri, LinesCodec(), limit=0):
                pass
        assert await server.wait_for_closes(2) == [(1000, ""), (1000, "")]


async def test_a_failed_connect_raises_its_error_after_a_loop_turn() -> None:
    """Nothing listens, or the URI is not one: ``await connect()`` raises that error
    (ConnectionRefusedError, InvalidURI: not some later error), and other tasks ran
    before it did, so a reconnect loop cannot hold the event loop."""
    async with peer() as server:
        port = server.port
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        for _ in range(3):
            before = ticks
            with pytest.raises(ConnectionRefusedError):
                await wsframed.connect(f"ws://127.0.0.1:{port}", LinesCodec())
            assert ticks > before
            before = ticks
            with pytest.raises(InvalidURI, match=r"^not a uri isn't a valid URI: "):
                await wsframed.connect("not a uri", LinesCodec())
            assert ticks > before
    finally:
        task.cancel()


@pytest.mark.parametrize(("size", "fits"), [(64 * 1024, True), (64 * 1024 + 1, False)])
async def test_the_default_limit_of_the_stream_is_64_kib(size: int, fits: bool) -> None:
    """connect() gives its WsStream ``limit=65536``: readline() takes a line of 65,536
    bytes before its ``\\n`` and refuses one of 65,537 with consumed=65,537."""
    async with (
        peer(b"x" * size + b"\n") as server,
        wsframed.connect(server.uri, LinesCodec()) as framed,
    ):
        stream = framed.stream
        assert isinstance(stream, wsframed.WsStream)
        async with asyncio.timeout(10):
            if fits:
                assert await stream.readline() == b"x" * size + b"\n"
                return
            with pytest.raises(asyncio.LimitOverrunError) as overrun:
                await stream.readline()
        assert overrun.value.consumed == size

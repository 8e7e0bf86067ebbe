"""Every public coroutine gives the event loop a turn (issue 14, item 3).

A ticker task counts the turns the loop gets while a coroutine is called again and
again. In a failing state (a failed decoder, the end of stream, a closed side, a frame
that does not encode, a dropped connection) every call must let the ticker run, and a
retry loop of such calls must be stoppable by ``asyncio.wait_for``; in a success state
that needs no waiting (frames decoded ahead, sends the transport takes at once,
idempotent closes) at least one call in every ``BUDGET`` must let it run.

Everything runs over real connections on 127.0.0.1, except where a success must go on
for ever without waiting: there an in-memory byte stream (the asyncio
``read``/``write``/``drain`` shape Framed accepts) stands in for a peer that is always
ahead. A regression hangs the loop; pytest-timeout then fails the test.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidURI

import wsframed
from wsframed import (
    ClosedStreamError,
    ConnectionClosed,
    EndOfStream,
    Framed,
    FrameTooLarge,
    IncompleteFrame,
    ProtocolError,
    WsStream,
)
from wsframed.anyio import as_anyio_stream
from wsframed.bytestreams import AnyioByteStream, ReaderWriterByteStream, byte_stream
from wsframed.checkpoint import BUDGET
from wsframed.codecs import LengthPrefixedCodec, LinesCodec, MsgpackCodec
from wsframed.rpc import RpcPeer

from .conftest import tcp_pair, wait_for, ws_pair
from .peers import reset

pytestmark = pytest.mark.timeout(60)

Call = Callable[[], Awaitable[Any]]
Expected = type[BaseException] | tuple[type[BaseException], ...] | None

LENGTH = LengthPrefixedCodec(max_frame_size=100)
OVERSIZED_HEADER = b"\xff\xff\xff\xff"  # a length-prefixed frame of 4 GiB - 1


# The harness ---------------------------------------------------------------------


@dataclass
class Ticker:
    """How many turns the ticker task has had."""

    count: int = 0


@asynccontextmanager
async def ticking() -> AsyncIterator[Ticker]:
    """Run a task that counts its turns: one per turn the event loop gets."""
    ticker = Ticker()

    async def tick() -> None:
        while True:
            ticker.count += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(tick())
    await asyncio.sleep(0)  # let it start
    try:
        yield ticker
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def _call_once(call: Call, expected: Expected) -> None:
    if expected is None:
        await call()
    else:
        with pytest.raises(expected):
            await call()


async def check_failing(call: Call, expected: Expected, calls: int = 3 * BUDGET) -> None:
    """Each call yields at least once; a retry loop of calls can be timed out."""
    async with ticking() as ticker:
        starved = []
        for number in range(calls):
            before = ticker.count
            await _call_once(call, expected)
            if ticker.count == before:
                starved.append(number)
        assert starved == [], f"{len(starved)} of {calls} failing calls never yielded"
    await check_timeout_fires(call, expected)


async def check_timeout_fires(call: Call, expected: Expected) -> None:
    """``wait_for`` stops a loop that calls ``call`` for ever (rather than hanging)."""
    done = 0
    catch = expected or ()

    async def call_forever() -> None:
        nonlocal done
        while True:
            with suppress(catch):
                await call()
            done += 1

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call_forever(), 0.5)
    assert done > 0


async def check_budgeted(call: Call, calls: int = 4 * BUDGET, forever: bool = False) -> None:
    """Of every ``BUDGET`` consecutive successful calls, one at least yields."""
    async with ticking() as ticker:
        counts = [ticker.count]
        for _ in range(calls):
            await call()
            counts.append(ticker.count)
    starved = [i for i in range(BUDGET, calls + 1) if counts[i] == counts[i - BUDGET]]
    assert starved == [], f"{len(starved)} runs of {BUDGET} calls never yielded"
    if forever:
        await check_timeout_fires(call, None)


# Peers and byte streams ----------------------------------------------------------


class MemoryStream:
    """A byte stream whose peer is always ahead: reads and drains never wait.

    ``read()`` returns ``chunk`` (many frames) every time; written bytes are kept in
    ``sent`` when drained.
    """

    def __init__(self, chunk: bytes = b""):
        self.chunk = chunk
        self.pending = bytearray()
        self.sent = bytearray()

    async def read(self, n: int = -1) -> bytes:
        return self.chunk

    def write(self, data: bytes) -> None:
        self.pending += data

    async def drain(self) -> None:
        self.sent += self.pending
        self.pending.clear()


@asynccontextmanager
async def ws_stream() -> AsyncIterator[tuple[WsStream, ServerConnection]]:
    """A client WsStream and the raw websockets server connection it talks to."""
    async with ws_pair() as (client, server):
        yield WsStream(client), server


async def peer_closes(server: ServerConnection, stream: WsStream) -> None:
    """The peer closes cleanly (1000) and the client's side has seen it."""
    await asyncio.wait_for(server.close(), 5)
    await wait_for(lambda: stream.close_code is not None)


async def peer_drops(server: ServerConnection, stream: WsStream) -> None:
    """The peer drops the TCP connection (1006) and the client's side has seen it."""
    server.transport.abort()
    await wait_for(lambda: stream.close_code is not None)


async def framed_after_too_large(stack: AsyncExitStack) -> Framed[bytes]:
    """A Framed whose decoder failed on an oversized length from the peer."""
    stream, server = await stack.enter_async_context(ws_stream())
    framed = Framed(stream, LENGTH)
    await server.send(LENGTH.encode(b"ok") + OVERSIZED_HEADER)
    assert await asyncio.wait_for(framed.recv(), 5) == b"ok"
    with pytest.raises(FrameTooLarge):
        await asyncio.wait_for(framed.recv(), 5)
    return framed


async def framed_at_end(stack: AsyncExitStack) -> Framed[bytes]:
    """A Framed whose peer closed cleanly, its last frame received."""
    stream, server = await stack.enter_async_context(ws_stream())
    framed = Framed(stream, LENGTH)
    await server.send(LENGTH.encode(b"last"))
    assert await asyncio.wait_for(framed.recv(), 5) == b"last"
    await peer_closes(server, stream)
    return framed


async def framed_dropped(stack: AsyncExitStack) -> Framed[bytes]:
    """A Framed whose peer dropped the connection."""
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_drops(server, stream)
    return Framed(stream, LENGTH)


async def framed_send_closed(stack: AsyncExitStack) -> Framed[bytes]:
    stream, _ = await stack.enter_async_context(ws_stream())
    framed = Framed(stream, LENGTH)
    await asyncio.wait_for(framed.send_eof(), 5)
    return framed


async def feed_flush(framed: Any, item: Any) -> None:
    framed.feed(item)
    await framed.flush()


async def one_async(item: Any) -> AsyncIterator[Any]:
    yield item


async def expect_empty(call: Call) -> None:
    assert await call() == b""


# Failing states ------------------------------------------------------------------

FAILING: dict[str, Callable[[AsyncExitStack], Awaitable[tuple[Call, Expected]]]] = {}


def failing(name: str) -> Callable[[Any], Any]:
    def register(factory: Any) -> Any:
        FAILING[name] = factory
        return factory

    return register


@failing("Framed.recv after FrameTooLarge")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return (await framed_after_too_large(stack)).recv, FrameTooLarge


@failing("Framed.recv_many after FrameTooLarge")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return (await framed_after_too_large(stack)).recv_many, FrameTooLarge


@failing("Framed.__anext__ after FrameTooLarge")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return (await framed_after_too_large(stack)).__anext__, FrameTooLarge


@failing("FramedStream.recv after FrameTooLarge")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return (await framed_after_too_large(stack)).split()[1].recv, FrameTooLarge


@failing("FramedStream.recv_many after FrameTooLarge")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return (await framed_after_too_large(stack)).split()[1].recv_many, FrameTooLarge


@failing("FramedStream.__anext__ after FrameTooLarge")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream = (await framed_after_too_large(stack)).split()[1]
    return aiter(stream).__anext__, FrameTooLarge


@failing("Framed.recv at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return (await framed_at_end(stack)).recv, EndOfStream


@failing("Framed.recv_many at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return (await framed_at_end(stack)).recv_many, EndOfStream


@failing("Framed.__anext__ at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return (await framed_at_end(stack)).__anext__, StopAsyncIteration


@failing("Framed.recv after the end inside a frame")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await server.send(b"\x00\x00\x00\x10half")
    await peer_closes(server, stream)
    return Framed(stream, LENGTH).recv, IncompleteFrame


@failing("Framed.recv after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return (await framed_dropped(stack)).recv, ConnectionClosed


@failing("Framed.recv over TCP after a reset")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    client, server = await stack.enter_async_context(tcp_pair())
    framed = Framed.from_streams(*client, LENGTH)
    reset(server[1].transport)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(framed.recv(), 5)
    return framed.recv, ConnectionResetError


@failing("Framed.recv over TCP at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    client, server = await stack.enter_async_context(tcp_pair())
    framed = Framed.from_streams(*client, LENGTH)
    server[1].close()
    with pytest.raises(EndOfStream):
        await asyncio.wait_for(framed.recv(), 5)
    return framed.recv, EndOfStream


@failing("Framed.send of a frame too large")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, _ = await stack.enter_async_context(ws_stream())
    framed = Framed(stream, LENGTH)
    return lambda: framed.send(b"x" * 101), FrameTooLarge


@failing("Framed.send of an item the codec cannot encode")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, _ = await stack.enter_async_context(ws_stream())
    framed = Framed(stream, MsgpackCodec())
    return lambda: framed.send(object()), TypeError


@failing("Framed.send after send_eof")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    framed = await framed_send_closed(stack)
    return lambda: framed.send(b"x"), ClosedStreamError


@failing("Framed.send after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    framed = await framed_dropped(stack)
    return lambda: framed.send(b"x"), ConnectionClosed


@failing("Framed.feed+flush after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    framed = await framed_dropped(stack)
    return lambda: feed_flush(framed, b"x"), ConnectionClosed


@failing("Framed.send_all of a frame too large")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, _ = await stack.enter_async_context(ws_stream())
    framed = Framed(stream, LENGTH)
    return lambda: framed.send_all([b"x" * 101]), FrameTooLarge


@failing("Framed.send_all of an async iterable, a frame too large")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, _ = await stack.enter_async_context(ws_stream())
    framed = Framed(stream, LENGTH)
    return lambda: framed.send_all(one_async(b"x" * 101)), FrameTooLarge


@failing("Framed.send_all after send_eof")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    framed = await framed_send_closed(stack)
    return lambda: framed.send_all([b"x"]), ClosedStreamError


@failing("Framed.send_all after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    framed = await framed_dropped(stack)
    return lambda: framed.send_all([b"x"]), ConnectionClosed


@failing("FramedSink.send after close")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    sink = (await framed_send_closed(stack)).split()[0]
    return lambda: sink.send(b"x"), ClosedStreamError


@failing("FramedSink.send_all after close")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    sink = (await framed_send_closed(stack)).split()[0]
    return lambda: sink.send_all([b"x"]), ClosedStreamError


@failing("FramedSink.feed+flush after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    sink = (await framed_dropped(stack)).split()[0]
    return lambda: feed_flush(sink, b"x"), ConnectionClosed


# The byte-stream adapters and connect() -------------------------------------------


@failing("AnyioByteStream.read_some at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    adapter = byte_stream(as_anyio_stream(stream))
    assert isinstance(adapter, AnyioByteStream)
    await peer_closes(server, stream)
    return lambda: expect_empty(adapter.read_some), None


@failing("AnyioByteStream.drain after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    adapter = byte_stream(as_anyio_stream(stream))
    await peer_drops(server, stream)

    async def write_drain() -> None:
        adapter.write(b"x")
        await adapter.drain()

    return write_drain, anyio.BrokenResourceError


@failing("Framed over an anyio stream: recv at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    framed = Framed(as_anyio_stream(stream), LENGTH)
    await peer_closes(server, stream)
    return framed.recv, EndOfStream


@failing("AnyioWsStream.receive at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_closes(server, stream)
    return as_anyio_stream(stream).receive, anyio.EndOfStream


@failing("AnyioWsStream.receive(0)")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, _ = await stack.enter_async_context(ws_stream())
    adapter = as_anyio_stream(stream)
    return lambda: adapter.receive(0), ValueError


@failing("AnyioWsStream.receive after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_drops(server, stream)
    return as_anyio_stream(stream).receive, anyio.BrokenResourceError


@failing("AnyioWsStream.send after send_eof")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, _ = await stack.enter_async_context(ws_stream())
    adapter = as_anyio_stream(stream)
    await asyncio.wait_for(adapter.send_eof(), 5)
    return lambda: adapter.send(b"x"), anyio.ClosedResourceError


@failing("connect() to an invalid URI")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    return lambda: wsframed.connect("not a websocket uri", LENGTH), InvalidURI


@failing("connect() to a refused port")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    sock = stack.enter_context(socket.socket())
    sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    url = f"ws://127.0.0.1:{sock.getsockname()[1]}"
    return lambda: wsframed.connect(url, LENGTH, open_timeout=5), ConnectionRefusedError


# WsStream and RpcPeer (fixed in their own modules) ---------------------------------


@failing("WsStream.read at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_closes(server, stream)
    return lambda: expect_empty(lambda: stream.read(100)), None


@failing("WsStream.readexactly at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_closes(server, stream)
    return lambda: stream.readexactly(1), asyncio.IncompleteReadError


@failing("WsStream.readuntil at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_closes(server, stream)
    return stream.readuntil, asyncio.IncompleteReadError


@failing("WsStream.readline at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_closes(server, stream)
    return lambda: expect_empty(stream.readline), None


@failing("WsStream.receive at the end of stream")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_closes(server, stream)
    return stream.receive, EndOfStream


@failing("WsStream.read after a rejected text message")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await server.send("text")
    with pytest.raises(ProtocolError):
        await asyncio.wait_for(stream.read(100), 5)
    return lambda: stream.read(100), ProtocolError


@failing("WsStream.read after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_drops(server, stream)
    return lambda: stream.read(100), ConnectionClosed


@failing("WsStream.drain after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_drops(server, stream)

    async def write_drain() -> None:
        stream.write(b"x")
        await stream.drain()

    return write_drain, ConnectionClosed


@failing("WsStream.send after send_eof")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, _ = await stack.enter_async_context(ws_stream())
    await asyncio.wait_for(stream.send_eof(), 5)
    return lambda: stream.send(b"x"), ClosedStreamError


@failing("WsStream.ping after the peer dropped the connection")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    stream, server = await stack.enter_async_context(ws_stream())
    await peer_drops(server, stream)
    return stream.ping, ConnectionClosed


async def rpc_peer(stack: AsyncExitStack) -> RpcPeer:
    stream, _ = await stack.enter_async_context(ws_stream())
    return RpcPeer(Framed(stream, MsgpackCodec()))


@failing("RpcPeer.call after aclose")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    peer = await rpc_peer(stack)
    await asyncio.wait_for(peer.aclose(), 5)
    return lambda: peer.call("m"), ClosedStreamError


@failing("RpcPeer.notify after aclose")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    peer = await rpc_peer(stack)
    await asyncio.wait_for(peer.aclose(), 5)
    return lambda: peer.notify("m"), ClosedStreamError


@failing("RpcPeer.call with params the codec cannot encode")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    peer = await stack.enter_async_context(await rpc_peer(stack))
    return lambda: peer.call("m", object()), TypeError


@failing("RpcPeer.notify with params the codec cannot encode")
async def _(stack: AsyncExitStack) -> tuple[Call, Expected]:
    peer = await stack.enter_async_context(await rpc_peer(stack))
    return lambda: peer.notify("m", object()), TypeError


@pytest.mark.parametrize("name", list(FAILING))
async def test_every_failing_call_yields_and_a_retry_loop_can_time_out(name: str) -> None:
    async with AsyncExitStack() as stack:
        call, expected = await FAILING[name](stack)
        await check_failing(call, expected)


# Success without waiting ---------------------------------------------------------

SUCCEEDING: dict[str, Callable[[AsyncExitStack], Awaitable[tuple[Call, bool]]]] = {}
"""name -> factory of (call, whether the success can go on for ever)."""


def succeeding(name: str) -> Callable[[Any], Any]:
    def register(factory: Any) -> Any:
        SUCCEEDING[name] = factory
        return factory

    return register


async def framed_with_queued_frames(stack: AsyncExitStack) -> Framed[bytes]:
    """A Framed that received, in one message, more frames than the test takes."""
    stream, server = await stack.enter_async_context(ws_stream())
    framed = Framed(stream, LENGTH)
    await server.send(b"".join(LENGTH.encode(b"%d" % i) for i in range(5 * BUDGET)))
    assert await asyncio.wait_for(framed.recv(), 5) == b"0"  # the read: the rest is queued
    return framed


@succeeding("Framed.recv of queued frames")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    return (await framed_with_queued_frames(stack)).recv, False


@succeeding("Framed.recv_many(1) of queued frames")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    framed = await framed_with_queued_frames(stack)
    return lambda: framed.recv_many(1), False


@succeeding("Framed.__anext__ of queued frames")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    return (await framed_with_queued_frames(stack)).__anext__, False


@succeeding("FramedStream.recv of queued frames")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    return (await framed_with_queued_frames(stack)).split()[1].recv, False


@succeeding("FramedStream.recv_many(1) of queued frames")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream = (await framed_with_queued_frames(stack)).split()[1]
    return lambda: stream.recv_many(1), False


@succeeding("FramedStream.__anext__ of queued frames")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream = (await framed_with_queued_frames(stack)).split()[1]
    return aiter(stream).__anext__, False


async def framed_ws(stack: AsyncExitStack) -> Framed[bytes]:
    stream, _ = await stack.enter_async_context(ws_stream())
    return Framed(stream, LENGTH)


@succeeding("Framed.send")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    framed = await framed_ws(stack)
    return lambda: framed.send(b"x"), False


@succeeding("Framed.feed+flush")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    framed = await framed_ws(stack)
    return lambda: feed_flush(framed, b"x"), False


@succeeding("Framed.flush with nothing fed")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    return (await framed_ws(stack)).flush, True


@succeeding("Framed.send_all")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    framed = await framed_ws(stack)
    return lambda: framed.send_all([b"x", b"y"]), False


@succeeding("Framed.send_all of an async iterable")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    framed = await framed_ws(stack)
    return lambda: framed.send_all(one_async(b"x")), False


@succeeding("Framed.send_eof again")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    return (await framed_send_closed(stack)).send_eof, True


@succeeding("Framed.aclose again")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    framed = await framed_ws(stack)
    await asyncio.wait_for(framed.aclose(), 5)
    return framed.aclose, True


@succeeding("Framed.__aenter__")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    return (await framed_ws(stack)).__aenter__, True


@succeeding("FramedSink.send")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    sink = (await framed_ws(stack)).split()[0]
    return lambda: sink.send(b"x"), False


@succeeding("FramedSink.feed+flush")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    sink = (await framed_ws(stack)).split()[0]
    return lambda: feed_flush(sink, b"x"), False


@succeeding("FramedSink.send_all")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    sink = (await framed_ws(stack)).split()[0]
    return lambda: sink.send_all([b"x"]), False


@succeeding("FramedSink.close again")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    return (await framed_send_closed(stack)).split()[0].close, True


@succeeding("ReaderWriterByteStream.send_eof over TCP")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    client, _ = await stack.enter_async_context(tcp_pair())
    adapter = byte_stream(client)
    assert isinstance(adapter, ReaderWriterByteStream)
    await asyncio.wait_for(adapter.send_eof(), 5)
    return adapter.send_eof, True


@succeeding("ReaderWriterByteStream.aclose again, over a WsStream")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    adapter = byte_stream(stream)
    await asyncio.wait_for(adapter.aclose(), 5)
    return adapter.aclose, True


@succeeding("AnyioByteStream.drain with nothing written")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    return byte_stream(as_anyio_stream(stream)).drain, True


@succeeding("AnyioByteStream.aclose again")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    adapter = byte_stream(as_anyio_stream(stream))
    await asyncio.wait_for(adapter.aclose(), 5)
    return adapter.aclose, True


@succeeding("AnyioWsStream.receive(1) of buffered bytes")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, server = await stack.enter_async_context(ws_stream())
    adapter = as_anyio_stream(stream)
    await server.send(b"x" * (5 * BUDGET))
    assert await asyncio.wait_for(adapter.receive(1), 5) == b"x"
    return lambda: adapter.receive(1), False


@succeeding("AnyioWsStream.send")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    adapter = as_anyio_stream(stream)
    return lambda: adapter.send(b"x"), False


@succeeding("AnyioWsStream.send_eof again")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    adapter = as_anyio_stream(stream)
    await asyncio.wait_for(adapter.send_eof(), 5)
    return adapter.send_eof, True


@succeeding("AnyioWsStream.aclose again")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    adapter = as_anyio_stream(stream)
    await asyncio.wait_for(adapter.aclose(), 5)
    return adapter.aclose, True


async def ws_with_buffered_bytes(stack: AsyncExitStack, data: bytes) -> WsStream:
    stream, server = await stack.enter_async_context(ws_stream())
    await server.send(data)
    assert await asyncio.wait_for(stream.readexactly(1), 5) == data[:1]
    return stream


@succeeding("WsStream.read(1) of buffered bytes")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream = await ws_with_buffered_bytes(stack, b"x" * (5 * BUDGET))
    return lambda: stream.read(1), False


@succeeding("WsStream.readexactly(1) of buffered bytes")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream = await ws_with_buffered_bytes(stack, b"x" * (5 * BUDGET))
    return lambda: stream.readexactly(1), False


@succeeding("WsStream.readline of buffered lines")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream = await ws_with_buffered_bytes(stack, b"\n" * (5 * BUDGET))
    return stream.readline, False


@succeeding("WsStream.readuntil of buffered lines")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream = await ws_with_buffered_bytes(stack, b"\n" * (5 * BUDGET))
    return stream.readuntil, False


@succeeding("WsStream.receive(1) of buffered bytes")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream = await ws_with_buffered_bytes(stack, b"x" * (5 * BUDGET))
    return lambda: stream.receive(1), False


@succeeding("WsStream.send")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    return lambda: stream.send(b"x"), False


@succeeding("WsStream.drain with nothing written")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    return stream.drain, True


@succeeding("WsStream.send_eof again")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    await asyncio.wait_for(stream.send_eof(), 5)
    return stream.send_eof, True


@succeeding("WsStream.aclose again")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    await asyncio.wait_for(stream.aclose(), 5)
    return stream.aclose, True


@succeeding("WsStream.wait_closed again")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    stream, _ = await stack.enter_async_context(ws_stream())
    await asyncio.wait_for(stream.aclose(), 5)
    return stream.wait_closed, True


@succeeding("RpcPeer.notify")
async def _(stack: AsyncExitStack) -> tuple[Call, bool]:
    peer = await stack.enter_async_context(await rpc_peer(stack))
    return lambda: peer.notify("m"), False


@pytest.mark.parametrize("name", list(SUCCEEDING))
async def test_one_call_in_every_budget_yields_on_success(name: str) -> None:
    async with AsyncExitStack() as stack:
        call, forever = await SUCCEEDING[name](stack)
        await check_budgeted(call, forever=forever)


# Success for ever: a peer that is always ahead ---------------------------------


def memory_framed() -> tuple[Framed[bytes], MemoryStream]:
    stream = MemoryStream(b"".join(LENGTH.encode(b"%d" % i) for i in range(3 * BUDGET)))
    return Framed(stream, LENGTH), stream


ENDLESS: dict[str, Callable[[Framed[bytes]], Call]] = {
    "Framed.recv": lambda framed: framed.recv,
    "Framed.recv_many(1)": lambda framed: lambda: framed.recv_many(1),
    "Framed.recv_many": lambda framed: framed.recv_many,
    "Framed.__anext__": lambda framed: framed.__anext__,
    "FramedStream.recv": lambda framed: framed.split()[1].recv,
    "Framed.send": lambda framed: lambda: framed.send(b"x"),
    "Framed.feed+flush": lambda framed: lambda: feed_flush(framed, b"x"),
    "Framed.send_all": lambda framed: lambda: framed.send_all([b"x"] * 3),
    "FramedSink.send": lambda framed: lambda: framed.split()[0].send(b"x"),
}


@pytest.mark.parametrize("name", list(ENDLESS))
async def test_an_endless_success_without_waiting_can_time_out(name: str) -> None:
    framed, _ = memory_framed()
    call = ENDLESS[name](framed)
    await check_budgeted(call, forever=True)


async def test_framed_yields_exactly_once_per_budget_of_queued_frames() -> None:
    async with AsyncExitStack() as stack:
        framed = await framed_with_queued_frames(stack)  # 5 * BUDGET - 1 frames queued
        async with ticking() as ticker:
            received = [await framed.recv() for _ in range(4 * BUDGET)]
            assert ticker.count - 1 == 4  # 1: the ticker's first turn
        assert received == [b"%d" % i for i in range(1, 4 * BUDGET + 1)]


async def test_framed_send_yields_exactly_once_per_budget_of_sends() -> None:
    framed, stream = memory_framed()
    async with ticking() as ticker:
        for i in range(4 * BUDGET):
            await framed.send(b"%d" % i)
        assert ticker.count - 1 == 4
    assert bytes(stream.sent) == b"".join(LENGTH.encode(b"%d" % i) for i in range(4 * BUDGET))


# The retry loop of issue 14 ------------------------------------------------------


async def test_the_retry_loop_of_the_issue_can_time_out_and_lets_other_tasks_run() -> None:
    async def handler(framed: Framed[bytes]) -> None:
        await framed.send(b"before")
        framed.stream.write(OVERSIZED_HEADER)  # a frame no honest encoder would send
        await framed.stream.drain()
        await framed.stream.wait_closed()  # until the client leaves

    async with wsframed.serve(handler, "127.0.0.1", 0, codec=LENGTH) as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with wsframed.connect(url, LENGTH) as framed:
            received: list[bytes] = []
            errors = 0

            async def retry_loop() -> None:  # as in the issue
                nonlocal errors
                while True:
                    try:
                        async for x in framed:
                            received.append(x)
                    except FrameTooLarge:
                        errors += 1
                        continue

            async with ticking() as ticker:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(retry_loop(), 0.5)
                turns = ticker.count
    assert received == [b"before"]
    assert errors > 0
    assert turns >= errors  # the other task ran once per failing call, at least


# Cancellation at a checkpoint loses nothing ------------------------------------------


async def test_cancelling_recv_at_its_checkpoint_loses_no_frame() -> None:
    count = 5 * BUDGET
    async with AsyncExitStack() as stack:
        framed = await framed_with_queued_frames(stack)
        received = [b"0"]
        cancelled = 0
        for _ in range(2 * count):  # bounded: a lost frame fails below, not by timeout
            if len(received) == count:
                break
            task = asyncio.create_task(framed.recv())
            await asyncio.sleep(0)  # the task runs to its first yield, or to the end
            if task.done():
                received.append(task.result())
            else:  # it yields at its checkpoint (or waits to read): cancel it there
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                cancelled += 1
        assert received == [b"%d" % i for i in range(count)]
        # 319 frames served from the queue took 324 calls: every BUDGET-th yielded.
        assert cancelled == 5


async def test_cancelling_recv_before_a_stored_error_keeps_the_error() -> None:
    codec = LinesCodec(max_frame_size=10, on_overflow="discard")  # the error comes once
    async with AsyncExitStack() as stack:
        stream, server = await stack.enter_async_context(ws_stream())
        framed = Framed(stream, codec)
        await server.send(b"a\n" + b"x" * 20 + b"\nb\n")
        assert await asyncio.wait_for(framed.recv(), 5) == "a"
        task = asyncio.create_task(framed.recv())
        await asyncio.sleep(0)
        assert not task.done()  # it yields before raising
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(FrameTooLarge) as info:
            await asyncio.wait_for(framed.recv(), 5)  # the error was kept
        assert (info.value.size, info.value.limit) == (11, 10)  # refused at 11 bytes
        assert await asyncio.wait_for(framed.recv(), 5) == "b"


async def test_cancelling_send_at_its_checkpoint_sends_nothing_of_that_frame() -> None:
    count = 5 * BUDGET
    async with tcp_pair() as (client, server):
        sender = Framed.from_streams(*client, LENGTH)
        receiver = Framed.from_streams(*server, LENGTH)
        completed: list[bytes] = []
        cancelled: list[bytes] = []
        for i in range(count):
            item = b"%d" % i
            task = asyncio.create_task(sender.send(item))
            await asyncio.sleep(0)
            if task.done():
                task.result()
                completed.append(item)
            else:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                cancelled.append(item)
        await asyncio.wait_for(sender.send_eof(), 5)
        received = []
        async with asyncio.timeout(10):
            async for item in receiver:  # EndOfStream, not IncompleteFrame: no half frame
                received.append(item)
    assert len(cancelled) == 5  # once per BUDGET sends
    assert received == completed  # every completed send arrived; no cancelled one did

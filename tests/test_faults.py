"""Transport faults: resets, vanishing peers, stuck close handshakes, failing handlers,
cancellation at every await, and use after close.

Each fault is injected on real loopback sockets. What must hold: the frames accepted
before the fault are delivered (or, on the sending side, every byte reaches the peer
in order and exactly once); the fault surfaces as the documented exception within a
bound derived from the configured timeouts; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

import wsframed
from wsframed import (
    ClosedStreamError,
    ConnectionClosed,
    EndOfStream,
    Framed,
    WsFramedError,
    WsStream,
)
from wsframed.codecs import LengthPrefixedCodec, LinesCodec, MsgpackCodec

from .conftest import framed_pair, tcp_pair, wait_for, ws_pair
from .peers import (
    OP_BINARY,
    KiB,
    MiB,
    RawWsClient,
    close_code,
    frame,
    frame_header,
    raw_server,
    reset,
    serving,
    shrink_buffers,
)

# 1. TCP reset in the middle of a frame ---------------------------------------------


@pytest.mark.parametrize(
    ("codec", "good", "partial"),
    [
        (LengthPrefixedCodec(), [b"one", b"two"], b"\x00\x00\x01\x00" + b"x" * 100),
        (MsgpackCodec(), [{"a": 1}, [1, 2]], b"\x92\x01\xda\x01\x00" + b"y" * 50),
        (LinesCodec(), ["one", "two"], b"half a li"),
    ],
    ids=["length", "msgpack", "lines"],
)
async def test_client_reset_mid_frame_reaches_the_handler_as_connection_closed(
    codec: Any, good: list[Any], partial: bytes
) -> None:
    """The client sends whole frames, half a codec frame, half a WebSocket frame, and
    resets. The handler gets the whole frames, then ConnectionClosed(1006): neither a
    clean end nor a truncated frame passed off as data."""
    async with serving(codec) as (url, outcomes, server):
        peer = await RawWsClient.connect(server.port)
        peer.send(OP_BINARY, b"".join(codec.encode(item) for item in good) + partial)
        half = frame(OP_BINARY, b"z" * 1000)
        peer.write(half[: len(half) // 2])
        await peer.writer.drain()
        await asyncio.sleep(0.05)  # let the server read it all before the RST
        peer.reset()
        await outcomes.wait(1)
        assert outcomes.items[0] == good
        error = outcomes.errors[0]
        assert isinstance(error, ConnectionClosed)
        assert error.code == 1006
        async with connect(url, compression=None) as ws:  # still serving
            await ws.send(codec.encode(good[0]))
        await outcomes.wait(2)
        assert outcomes.items[1] == good[:1]


async def test_server_reset_mid_frame_reaches_the_client_as_connection_closed() -> None:
    codec = LengthPrefixedCodec()
    async with ws_pair() as (client, server):
        framed = Framed(WsStream(client), codec)
        await server.send(codec.encode(b"whole") + b"\x00\x00\x10\x00" + b"p" * 100)
        await (await server.ping())  # the pong proves the client holds that message
        # Half of a WebSocket frame, then the RST.
        server.transport.write(frame_header(OP_BINARY, 4096, mask=False) + b"q" * 10)
        await asyncio.sleep(0.05)
        reset(server.transport)
        assert await asyncio.wait_for(framed.recv(), 5) == b"whole"
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(framed.recv(), 5)
        assert info.value.code == 1006
        with pytest.raises(ConnectionClosed):  # and it stays that way
            await framed.recv()


async def test_peer_reset_while_sending_a_large_frame_raises_promptly() -> None:
    """A 4 MiB frame leaves as 64 KiB messages; the peer resets after a few. The send
    raises ConnectionClosed at once, and what the peer got is a prefix of the frame."""
    codec = LengthPrefixedCodec(max_frame_size=8 * MiB)
    payload = random.Random(1).randbytes(4 * MiB)
    wire = codec.encode(payload)
    received = bytearray()
    async with ws_pair() as (client, server):
        shrink_buffers(client.transport, server.transport)
        framed = Framed(WsStream(client, write_chunk_size=64 * KiB), codec)

        async def peer() -> None:
            for _ in range(5):
                received.extend(await server.recv())
            reset(server.transport)

        peer_task = asyncio.create_task(peer())
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(framed.send(payload), 5)
        assert time.monotonic() - started < 2
        await peer_task
        assert wire.startswith(bytes(received))
        assert len(received) == 5 * 64 * KiB
        with pytest.raises(ConnectionClosed):
            await framed.send(b"after the reset")


async def test_client_reset_while_the_handler_sends_a_large_frame() -> None:
    codec = LengthPrefixedCodec(max_frame_size=8 * MiB)

    async def body(framed: Framed[Any], items: list[Any]) -> None:
        item = await framed.recv()
        items.append(item)
        await framed.send(b"x" * (4 * MiB) if item == b"big" else item)

    async with serving(codec, body) as (url, outcomes, _server):
        async with connect(url, compression=None, max_queue=1) as ws:
            await ws.send(codec.encode(b"big"))
            await ws.recv()  # one message of the reply, then vanish with a RST
            reset(ws.transport)
        await outcomes.wait(1)
        assert isinstance(outcomes.errors[0], ConnectionClosed)
        async with connect(url, compression=None) as ws:  # still serving
            await ws.send(codec.encode(b"small"))
            assert await ws.recv() == codec.encode(b"small")


# 2. A peer that vanishes without closing -----------------------------------------

KEEPALIVE = {"ping_interval": 0.2, "ping_timeout": 0.2, "close_timeout": 0.3}
# ping_interval + ping_timeout until websockets gives up, then close_timeout for the
# close handshake it starts; the rest is slack for a loaded CI machine.
KEEPALIVE_BOUND = 0.2 + 0.2 + 0.3 + 1.0


async def test_keepalive_drops_a_client_that_vanished_within_its_bound() -> None:
    async with serving(MsgpackCodec(), **KEEPALIVE) as (url, outcomes, _server):
        async with contextlib.AsyncExitStack() as stack:
            ws = await connect(url, compression=None, ping_interval=None)
            stack.push_async_callback(_abort, ws)
            await ws.send(msgpack.packb("hello"))
            await asyncio.sleep(0.05)
            ws.transport.pause_reading()  # the client is gone: it answers nothing
            started = time.monotonic()
            await outcomes.wait(1, timeout=15)
            elapsed = time.monotonic() - started
        assert outcomes.items[0] == ["hello"]
        assert isinstance(outcomes.errors[0], ConnectionClosed)
        assert elapsed < KEEPALIVE_BOUND, elapsed


async def test_keepalive_drops_a_server_that_vanished_within_its_bound() -> None:
    async with raw_server() as (url, connections):
        framed = await wsframed.connect(url, MsgpackCodec(), **KEEPALIVE)
        try:
            ws_server = await asyncio.wait_for(connections.get(), 5)
            ws_server.transport.pause_reading()
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(framed.recv(), 15)
            assert time.monotonic() - started < KEEPALIVE_BOUND
        finally:
            await framed.aclose()


async def _abort(ws: ClientConnection) -> None:
    ws.transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.wait_closed(), 5)


# 3. A peer that never completes the close handshake ---------------------------------


async def test_server_drops_a_client_that_never_answers_its_close() -> None:
    async def body(framed: Framed[Any], items: list[Any]) -> None:
        items.append(await framed.recv())  # then return: the server closes with 1000

    async with serving(MsgpackCodec(), body, close_timeout=0.5) as (url, outcomes, server):
        ws = await connect(url, compression=None, ping_interval=None)
        try:
            ws.transport.pause_reading()  # never reads the close frame, never replies
            await ws.send(msgpack.packb(1))
            await outcomes.wait(1)
            started = time.monotonic()
            await wait_for(lambda: not server.ws_server.connections, timeout=5)
            assert time.monotonic() - started < 0.5 + 1.0
        finally:
            await _abort(ws)


async def test_client_drops_a_server_that_never_answers_its_close() -> None:
    async with raw_server() as (url, connections):
        async with wsframed.connect(url, MsgpackCodec(), close_timeout=0.5) as framed:
            (await asyncio.wait_for(connections.get(), 5)).transport.pause_reading()
            await framed.send("bye")
            started = time.monotonic()
        assert time.monotonic() - started < 0.5 + 1.0
        stream = framed.stream
        assert isinstance(stream, WsStream)
        assert stream.close_code == 1006  # no close frame came back


async def test_a_failing_handler_is_not_held_up_by_a_flooding_client() -> None:
    """The handler raises while the client floods: the server reads and drops the
    flood so the client's close reply gets through, well before close_timeout."""

    async def body(framed: Framed[Any], items: list[Any]) -> None:
        items.append(await framed.recv())
        raise RuntimeError("handler bug")

    async with (
        serving(MsgpackCodec(), body, close_timeout=5, max_queue=2) as (url, outcomes, server),
        connect(url, compression=None) as ws,
    ):

        async def flood() -> None:
            with contextlib.suppress(WsConnectionClosed):
                while True:
                    await ws.send(msgpack.packb("x" * 1000))

        flooder = asyncio.create_task(flood())
        await outcomes.wait(1)
        started = time.monotonic()
        await wait_for(lambda: not server.ws_server.connections, timeout=5)
        assert time.monotonic() - started < 2
        await asyncio.wait_for(flooder, 5)
        assert ws.close_code == 1011


# 4. A handler that raises ------------------------------------------------------------


async def test_a_raising_handler_closes_with_1011_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(framed: Framed[Any], items: list[Any]) -> None:
        item = await framed.recv()
        items.append(item)
        if item == "boom":
            raise ValueError("handler bug")
        await framed.send({"echo": item})

    async with serving(MsgpackCodec(), body) as (url, outcomes, _server):
        async with wsframed.connect(url, MsgpackCodec()) as bystander:
            for attempt in range(3):
                async with connect(url, compression=None) as ws:
                    await ws.send(msgpack.packb("boom"))
                    with pytest.raises(WsConnectionClosed) as info:
                        await asyncio.wait_for(ws.recv(), 5)
                    assert close_code(info.value) == 1011
                    assert info.value.rcvd is not None
                    assert info.value.rcvd.reason == "internal error"
                    await outcomes.wait(attempt + 1)
            # A connection opened before the failures is unaffected.
            await bystander.send("still here")
            assert await asyncio.wait_for(bystander.recv(), 5) == {"echo": "still here"}
        async with wsframed.connect(url, MsgpackCodec()) as late:
            await late.send("after")
            assert await asyncio.wait_for(late.recv(), 5) == {"echo": "after"}
    assert all(isinstance(e, ValueError) for e in outcomes.errors[:3])
    failures = [r for r in caplog.records if r.name == "wsframed.server"]
    assert len(failures) == 3
    assert all(r.exc_info is not None for r in failures)


# 5. Cancellation ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ws", "tcp"])
async def test_cancelled_recv_loses_no_frame_and_no_byte(transport: str) -> None:
    codec = LengthPrefixedCodec()
    async with framed_pair(transport, codec) as (client, server):
        # Cancelled while nothing has arrived ...
        waiting = asyncio.create_task(client.recv())
        await asyncio.sleep(0.02)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # ... and while half a frame has arrived, many times over.
        wire = codec.encode(b"a" * 1000) + codec.encode(b"b")
        for cut in (2, 4, 500):
            server._io.write(wire[:cut])
            await server.flush()
            waiting = asyncio.create_task(client.recv())
            await asyncio.sleep(0.02)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            server._io.write(wire[cut:])
            await server.flush()
            assert await asyncio.wait_for(client.recv(), 5) == b"a" * 1000
            assert await asyncio.wait_for(client.recv(), 5) == b"b"


@asynccontextmanager
async def stalled_peer(
    write_chunk_size: int = 16 * KiB,
) -> AsyncIterator[tuple[WsStream, ServerConnection, bytearray]]:
    """A WsStream whose peer has stopped reading: drain() blocks on backpressure.

    Yields (stream, peer, received); once the test resumes reading on the peer's
    transport, a background task appends what the peer reads to ``received``.
    """
    async with ws_pair(server_options={"max_queue": 1}) as (client, server):
        shrink_buffers(client.transport, server.transport)
        stream = WsStream(client, write_chunk_size=write_chunk_size)
        server.transport.pause_reading()
        received = bytearray()

        async def collect() -> None:
            with contextlib.suppress(WsConnectionClosed):
                async for message in server:
                    assert isinstance(message, bytes)
                    received.extend(message)

        collector = asyncio.create_task(collect())
        try:
            yield stream, server, received
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
            client.transport.abort()  # no close handshake with a stalled peer


async def _block(coro: Any, settle: float = 0.05) -> asyncio.Task[Any]:
    """Start ``coro`` and return its task once it is blocked (not finished)."""
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(settle)
    assert not task.done(), "expected it to block on backpressure"
    return task


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_cancelled_send_blocked_on_backpressure_leaves_the_stream_byte_exact() -> None:
    """Sends are cancelled while blocked in drain(), many times, at different points.
    Every frame fed goes out whole, in order, exactly once: the peer decodes exactly
    the frames sent, and its bytes hash to the concatenation of their encodings."""
    codec = LengthPrefixedCodec(max_frame_size=MiB)
    rng = random.Random(7)
    frames = [struct.pack(">I", n) + rng.randbytes(rng.randrange(1, 200 * KiB)) for n in range(40)]
    async with stalled_peer() as (stream, server, received):
        framed = Framed(stream, codec)
        cancelled = 0
        for item in frames:
            task = asyncio.ensure_future(framed.send(item))
            await asyncio.sleep(rng.choice((0, 0, 0.001, 0.01)))
            if not task.done():
                await _cancel(task)
                cancelled += 1
        assert cancelled > 10  # the peer is stalled: most sends block
        assert stream.write_buffer_size > 0  # what was not sent stays buffered
        server.transport.resume_reading()
        await asyncio.wait_for(framed.flush(), 10)
        expected = b"".join(codec.encode(item) for item in frames)
        await wait_for(lambda: len(received) >= len(expected), timeout=10)
        assert hashlib.sha256(received).digest() == hashlib.sha256(expected).digest()
        decoder = codec.decoder()
        decoder.feed(bytes(received))
        assert list(decoder) == frames


async def test_cancelled_drain_then_more_writes_keeps_byte_order() -> None:
    async with stalled_peer(write_chunk_size=8 * KiB) as (stream, server, received):
        rng = random.Random(3)
        sent = bytearray()
        for _ in range(30):
            chunk = rng.randbytes(rng.randrange(1, 64 * KiB))
            stream.write(chunk)
            sent += chunk
            task = asyncio.ensure_future(stream.drain())
            await asyncio.sleep(rng.choice((0, 0.001, 0.005)))
            await _cancel(task)
        assert 0 < stream.write_buffer_size <= len(sent)
        server.transport.resume_reading()
        await asyncio.wait_for(stream.drain(), 10)
        await wait_for(lambda: len(received) >= len(sent), timeout=10)
        assert bytes(received) == bytes(sent)


async def test_cancelled_concurrent_senders_never_interleave_or_duplicate_frames() -> None:
    """Eight tasks send frames at once through one Framed; half of them are cancelled
    at random moments. Every frame at the peer is whole and appears once; every
    frame whose send() returned is there."""
    codec = LengthPrefixedCodec(max_frame_size=MiB)
    async with stalled_peer() as (stream, server, received):
        framed = Framed(stream, codec)
        completed: set[bytes] = set()

        async def sender(tag: int) -> None:
            rng = random.Random(tag)
            for n in range(25):
                item = struct.pack(">BH", tag, n) + bytes([tag]) * rng.randrange(1, 40 * KiB)
                await framed.send(item)
                completed.add(item)

        tasks = [asyncio.create_task(sender(tag)) for tag in range(8)]
        rng = random.Random(99)
        resumed = False
        for _ in range(40):
            await asyncio.sleep(0.005)
            victim = rng.choice(tasks[:4])
            victim.cancel()
            if not resumed and rng.random() < 0.2:
                server.transport.resume_reading()
                resumed = True
        server.transport.resume_reading()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
        assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results)
        await asyncio.wait_for(framed.flush(), 10)
        await asyncio.sleep(0.1)
        decoder = codec.decoder()
        decoder.feed(bytes(received))
        got = list(decoder)
        decoder.feed_eof()  # no partial frame left over
        assert len(got) == len(set(got))
        for item in got:
            tag, _ = struct.unpack_from(">BH", item)
            assert item[3:] == bytes([tag]) * (len(item) - 3)
        assert completed <= set(got)
        last: dict[int, int] = {}
        for item in got:  # each sender's frames arrive in its order
            tag, n = struct.unpack_from(">BH", item)
            assert n > last.get(tag, -1)
            last[tag] = n
        assert all(results[i] is None for i in range(4, 8))  # never cancelled: all sent


async def test_cancelling_a_task_waiting_for_its_turn_to_drain_passes_the_turn_on() -> None:
    async with stalled_peer() as (stream, server, received):
        stream.write(b"a" * (2 * MiB))
        first = await _block(stream.drain())
        stream.write(b"b" * 10)
        second = await _block(stream.drain())
        stream.write(b"c" * 10)
        third = await _block(stream.drain())
        await _cancel(second)  # waiting for its turn: cancelled, nothing lost
        await _cancel(first)  # the one sending: cancelled, the turn passes on
        server.transport.resume_reading()
        await asyncio.wait_for(third, 10)
        await wait_for(lambda: len(received) >= 2 * MiB + 20, timeout=5)
        assert bytes(received) == b"a" * (2 * MiB) + b"b" * 10 + b"c" * 10
        assert stream.write_buffer_size == 0


# 6. Use after close ------------------------------------------------------------------


async def test_sending_after_aclose_raises_closed_stream_error() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (client, _server):
        await client.aclose()
        with pytest.raises(ClosedStreamError, match="closed"):
            await client.send(1)
        with pytest.raises(ClosedStreamError):
            client.feed(1)
        stream = client.stream
        assert isinstance(stream, WsStream)
        with pytest.raises(ClosedStreamError, match="write side is closed"):
            stream.write(b"x")
        assert isinstance(ClosedStreamError("x"), WsFramedError | RuntimeError)


async def test_sending_after_send_eof_raises_closed_stream_error_and_reading_goes_on() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (client, server):
        await server.send("in flight")
        await client.send_eof()
        with pytest.raises(ClosedStreamError):
            await client.send(2)
        assert await asyncio.wait_for(client.recv(), 5) == "in flight"
        with pytest.raises(EndOfStream):
            await asyncio.wait_for(client.recv(), 5)


@pytest.mark.parametrize("how", ["close-1000", "close-4000", "reset"])
async def test_sending_after_the_peer_went_away_raises_connection_closed(how: str) -> None:
    async with ws_pair() as (client, server):
        framed = Framed(WsStream(client), MsgpackCodec())
        if how == "reset":
            reset(server.transport)
        else:
            await server.close(int(how.split("-")[1]))
        await asyncio.wait_for(client.wait_closed(), 5)
        with pytest.raises(ConnectionClosed) as info:
            await framed.send("too late")
        assert isinstance(info.value, ConnectionError)
        assert info.value.code == {"close-1000": 1000, "close-4000": 4000, "reset": 1006}[how]
        assert str(info.value.code) in str(info.value)


async def test_sending_after_close_over_tcp_raises_too() -> None:
    async with tcp_pair() as (client, _server):
        framed = Framed.from_streams(*client, MsgpackCodec())
        await framed.aclose()
        with pytest.raises(ClosedStreamError):
            await framed.send(1)

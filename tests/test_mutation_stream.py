"""WsStream's reading, writing and closing paths that mutants of wsframed/stream.py and
wsframed/stream_core.py showed unchecked (tools/mutation.py; docs/contributing.md,
Testing). Real websockets connections on 127.0.0.1, the public API only.
"""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import ProtocolError

from wsframed import ClosedStreamError, ConnectionClosed, EventSubscription, Framed, WsStream
from wsframed.codecs import LengthPrefixedCodec
from wsframed.events import Closed, Error, Event, TextMessage

from .conftest import ticks_while, ws_pair

pytestmark = pytest.mark.timeout(30)


async def test_read_to_the_end_empties_the_buffer() -> None:
    """``read()`` (n < 0) returns every byte once: the next read is the end, b""."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"one ")
        await server.send(b"two")
        await server.close()
        assert await asyncio.wait_for(stream.read(), 5) == b"one two"
        assert stream.at_eof() is True
        assert await asyncio.wait_for(stream.read(), 5) == b""
        server.transport.resume_reading()  # the server side ends now, not in 10 s
        assert await asyncio.wait_for(stream.read(5), 5) == b""


async def test_reading_at_the_end_gives_the_loop_a_turn_every_call() -> None:
    """A loop calling ``read()`` or ``read(n)`` at the end of stream gets b"" each time
    and must not spin: each call lets other tasks run (not only every few calls)."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.close()
        assert await asyncio.wait_for(stream.read(), 5) == b""
        server.transport.resume_reading()  # the server side ends now, not in 10 s
        for call in [stream.read, lambda: stream.read(3)] * 20:
            ticks, error = await ticks_while(call)
            assert (ticks > 0, error) == (True, None)



async def test_a_drain_cancelled_as_its_turn_comes_passes_the_turn_on() -> None:
    """Three drains take turns: the second is cancelled just as the first hands it the
    turn (before it could run). It passes the turn on, so the third completes and every
    byte arrives once, in order."""
    async with ws_pair({"max_queue": 1}) as (client, server):
        stream = WsStream(client, write_chunk_size=65536)
        data = bytes(range(256)) * 4096 * 8  # 8 MiB: more than the socket buffers hold
        stream.write(data)
        second = asyncio.create_task(stream.drain())
        third = asyncio.create_task(stream.drain())
        received = bytearray()

        async def receive() -> None:
            await asyncio.sleep(0.2)  # the first drain waits for the peer meanwhile
            while len(received) < len(data) + 5:
                message = await server.recv()
                assert isinstance(message, bytes)
                received.extend(message)

        receiving = asyncio.create_task(receive())
        async with asyncio.timeout(10):  # (not wait_for: its task would run last)
            await stream.drain()  # the first: both others queued behind it
        second.cancel()  # its turn was given; it has not run yet
        stream.write(b"after")
        await asyncio.wait_for(third, 10)
        with pytest.raises(asyncio.CancelledError):
            await second
        await asyncio.wait_for(stream.drain(), 10)
        await asyncio.wait_for(receiving, 10)
        assert received == data + b"after"


async def test_send_eof_flushes_first_and_refuses_writes_while_it_flushes() -> None:
    """``send_eof()`` sends what was written, then its close frame; while it waits
    for backpressure, a ``write()`` is already refused (ClosedStreamError), so no byte
    can be accepted and then lost behind the close frame."""
    async with ws_pair({"max_queue": 1}) as (client, server):
        stream = WsStream(client, write_chunk_size=65536)
        data = bytes(range(256)) * 4096 * 8  # 8 MiB: send_eof() waits for the peer
        stream.write(data)
        closing = asyncio.create_task(stream.send_eof(1000, "done"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not closing.done()
        with pytest.raises(ClosedStreamError, match=r"^cannot write: this stream's write side"):
            stream.write(b"late")
        received = bytearray()

        async def receive_all() -> None:
            async with asyncio.timeout(10):
                while True:
                    message = await server.recv()
                    assert isinstance(message, bytes)
                    received.extend(message)

        with pytest.raises(WsConnectionClosed) as closed:
            await receive_all()
        assert received == data
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "done")
        await asyncio.wait_for(closing, 10)


async def test_aclose_drops_a_peer_that_never_answers_within_the_timeout() -> None:
    """The peer stops reading, so its close reply never comes: ``aclose(timeout=...)``
    drops the TCP connection after the timeout and returns once it is gone (1006),
    not after websockets' own 10 s close timeout."""
    async with ws_pair(client_options={"close_timeout": 30}) as (client, server):
        stream = WsStream(client)
        server.transport.pause_reading()  # our close frame is never read
        await asyncio.wait_for(stream.aclose(1000, "bye", timeout=0.2), 5)
        assert stream.close_code == 1006
        assert client.transport.is_closing()
        assert await asyncio.wait_for(stream.read(), 5) == b""
        server.transport.resume_reading()  # the server side ends now, not in 10 s


async def test_wait_closed_waits_for_the_peer_s_close() -> None:
    """``wait_closed()`` on an open stream returns only once the connection is closed
    (here by the peer, 1000), not at once."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        waiting = asyncio.create_task(stream.wait_closed())
        for _ in range(10):
            await asyncio.sleep(0)
        assert not waiting.done()
        assert stream.close_code is None
        await server.close(1000, "over")
        await asyncio.wait_for(waiting, 10)
        assert (stream.close_code, stream.close_reason) == (1000, "over")


async def test_anyio_receive_takes_at_most_64_kib_by_default() -> None:
    """anyio's ``receive()`` without ``max_bytes``: 65,536 bytes of a larger message,
    the rest on the next call."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        message = bytes(range(256)) * 300  # 76,800 bytes
        await server.send(message)
        first = await asyncio.wait_for(stream.receive(), 5)
        assert first == message[:65536]
        assert await asyncio.wait_for(stream.receive(), 5) == message[65536:]


async def test_anyio_receive_and_send_after_this_side_closed() -> None:
    """anyio's ``receive()`` after ``aclose()``: the bytes buffered before, then
    ClosedStreamError ("you closed it", not the end of stream); ``send()`` after
    ``send_eof()``: ClosedStreamError, each raised after a loop turn."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"kept")
        assert await asyncio.wait_for(stream.readexactly(1), 5) == b"k"
        await asyncio.wait_for(stream.aclose(), 10)
        assert await asyncio.wait_for(stream.receive(), 5) == b"ept"
        ticks, error = await ticks_while(stream.receive)
        assert isinstance(error, ClosedStreamError)
        assert str(error) == (
            "cannot receive: this side closed the stream (aclose() or close()); "
            "the bytes buffered before were all read"
        )
        assert ticks > 0
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await stream.send_eof()
        for _ in range(3):
            ticks, error = await ticks_while(lambda: stream.send(b"late"))
            assert isinstance(error, ClosedStreamError)
            assert str(error).startswith("cannot write: this stream's write side is closed")
            assert ticks > 0


async def test_a_text_queued_before_the_stream_is_reported_when_the_connection_drops() -> None:
    """A text message queued before the stream existed, then the TCP connection drops
    (no close frame, so no frame event reports it): the subscriber still gets its
    TextMessage, before the end's Error and Closed(1006)."""
    async with ws_pair() as (client, server):
        await server.send("xyz")
        await server.send(b"b")
        await asyncio.wait_for(await server.ping(), 5)  # both are queued
        stream = WsStream(client, text="ignore")
        events = stream.events()
        server.transport.abort()
        got = await asyncio.wait_for(_collect(events), 10)
        assert got[0] == TextMessage(3)
        assert isinstance(got[1], Error)
        assert isinstance(got[1].exc, ConnectionClosed)
        assert got[1].exc.code == 1006
        assert got[2:] == [Closed(1006, "")]
        assert await asyncio.wait_for(stream.read(1), 5) == b"b"


async def _collect(subscription: EventSubscription) -> list[Event]:
    return [event async for event in subscription]


async def test_a_frame_sent_alone_after_send_eof_is_refused_not_lost() -> None:
    """``Framed.send`` over a stream whose write side was closed by ``send_eof()``:
    the frame alone would take the direct path (nothing buffered, no drain), but the
    closed write side refuses it, as ``write()`` does; nothing is silently dropped."""
    async with ws_pair() as (client, _server):
        stream = WsStream(client)
        framed = Framed(stream, LengthPrefixedCodec())
        await asyncio.wait_for(stream.send_eof(), 10)
        with pytest.raises(ClosedStreamError) as error:
            await asyncio.wait_for(framed.send(b"late"), 10)
        assert str(error.value).startswith("cannot write: this stream's write side is closed")


async def test_a_ping_the_backend_refuses_raises_its_error_after_a_turn() -> None:
    """A ping the library refuses on an open stream (websockets: a payload over 125
    bytes, a control frame too long) raises the library's own error, not None, and a
    retry loop around it still lets other tasks run; the stream stays usable."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        ticks, error = await ticks_while(lambda: stream.ping(b"x" * 126))
        assert (ticks > 0, type(error), str(error)) == (
            True, ProtocolError, "control frame too long"
        )
        stream.write(b"still open")
        await asyncio.wait_for(stream.drain(), 5)
        assert await asyncio.wait_for(server.recv(), 5) == b"still open"

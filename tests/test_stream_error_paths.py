"""WsStream on its error and close paths, as the caller and the peer see them.

The caller's mistakes (bad arguments) raise exact errors after a loop turn; the
StreamWriter-style close (write_eof) delivers what was written before its close frame;
an event observer that unsubscribes ends its iteration. Written for code of
wsframed/stream.py no test reached or checked (tools/mutation.py, coverage), against
the public API only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from wsframed import ClosedStreamError, ProtocolError, WsStream
from wsframed.events import Closed, Ping

from .conftest import ticks_while, ws_pair

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("name", ["write_chunk_size", "limit", "event_queue_size"])
@pytest.mark.parametrize("value", [0, -1])
async def test_sizes_must_be_positive(name: str, value: int) -> None:
    async with ws_pair() as (client, _):
        message = rf"^{name} must be a positive number of bytes, not {value}$"
        with pytest.raises(ValueError, match=message):
            WsStream(client, **{name: value})
        assert WsStream(client, **{name: 1}) is not None  # 1 is allowed


async def test_an_unknown_text_policy_is_refused() -> None:
    async with ws_pair() as (client, _):
        with pytest.raises(
            ValueError,
            match=r"^text must be one of \('reject', 'bytes', 'ignore'\), not 'drop'$",
        ):
            WsStream(client, text="drop")  # type: ignore[arg-type]


async def test_bad_read_arguments_raise_after_a_loop_turn_and_lose_nothing() -> None:
    """``readexactly(-1)`` and ``readuntil(b"")`` are the caller's mistakes: the
    messages asyncio.StreamReader gives, raised after other tasks ran, and the
    buffered bytes are still there for the next read."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"kept\n")
        assert await asyncio.wait_for(stream.readexactly(1), 5) == b"k"
        ticks, error = await ticks_while(lambda: stream.readexactly(-1))
        assert isinstance(error, ValueError)
        assert str(error) == "readexactly size can not be less than zero, got -1"
        assert ticks > 0
        ticks, error = await ticks_while(lambda: stream.readuntil(b""))
        assert isinstance(error, ValueError)
        assert str(error) == "separator should be at least one-byte string"
        assert ticks > 0
        assert await asyncio.wait_for(stream.readline(), 5) == b"ept\n"


async def test_write_eof_sends_what_was_written_then_closes_with_1000() -> None:
    """StreamWriter's ``write_eof()``: the bytes written before it arrive, then the
    close frame (1000); later writes are refused; the read side stays open until the
    peer's close reply, after which reads see the end of stream."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        assert stream.can_write_eof() is True
        stream.write(b"last ")
        stream.write(b"words")
        stream.write_eof()
        stream.write_eof()  # idempotent: one close
        assert stream.is_closing()
        with pytest.raises(ClosedStreamError, match=r"^cannot write: this stream's write side"):
            stream.write(b"more")
        assert await asyncio.wait_for(server.recv(), 5) == b"last words"
        with pytest.raises(WsConnectionClosed) as closed:
            await asyncio.wait_for(server.recv(), 5)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "")
        assert await asyncio.wait_for(stream.read(), 5) == b""
        assert stream.close_code == 1000


async def test_extra_attributes_are_empty() -> None:
    """anyio's typed attributes: none (get_extra_info answers instead)."""
    async with ws_pair() as (client, _):
        stream = WsStream(client)
        assert stream.extra_attributes == {}
        assert stream.get_extra_info("peername") == client.remote_address


async def next_event(events: AsyncIterator[Any]) -> Any:
    return await asyncio.wait_for(anext(events), 5)


async def test_closing_a_subscription_ends_a_waiting_iteration_and_stops_new_events() -> None:
    """An observer that unsubscribes while its iterator waits: the waiting ``anext``
    ends (StopAsyncIteration), events queued before the close are still read, and
    none arrive after it."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        watching = stream.events()
        waiting = asyncio.create_task(anext(watching))
        await asyncio.sleep(0.01)  # the iterator is waiting for an event
        watching.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, 5)

        events = stream.events()
        await server.ping(b"one")
        assert await next_event(events) == Ping(b"one")
        await server.ping(b"two")
        await server.ping(b"three")
        while events.pending() < 2:
            await asyncio.sleep(0.005)
        events.close()
        events.close()  # idempotent
        await server.ping(b"after")
        assert [e async for e in events] == [Ping(b"two"), Ping(b"three")]
        ticks, error = await ticks_while(lambda: anext(events))
        assert isinstance(error, StopAsyncIteration)
        assert ticks > 0  # a loop polling an ended subscription lets others run
        await stream.aclose()
        assert (watching.pending(), events.pending()) == (0, 0)


async def test_a_subscription_made_after_the_close_gets_only_closed() -> None:
    async with ws_pair() as (client, _):
        stream = WsStream(client)
        await stream.aclose()
        assert [e async for e in stream.events()] == [Closed(1000, "")]


@pytest.mark.parametrize(("size", "fits"), [(64 * 1024, True), (64 * 1024 + 1, False)])
async def test_the_default_limit_is_64_kib(size: int, fits: bool) -> None:
    """``WsStream(connection)``: readline() takes a line of 65,536 bytes before its
    ``\\n`` and refuses one of 65,537 (consumed=65,537), leaving it buffered."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"x" * size + b"\n")
        if fits:
            assert await asyncio.wait_for(stream.readline(), 5) == b"x" * size + b"\n"
            return
        with pytest.raises(asyncio.LimitOverrunError) as overrun:
            await asyncio.wait_for(stream.readline(), 5)
        assert overrun.value.consumed == size
        assert await asyncio.wait_for(stream.readexactly(size + 1), 5) == b"x" * size + b"\n"


async def test_is_closing_turns_true_with_close_and_only_then() -> None:
    """StreamWriter's ``is_closing()``: False on a new stream, True as soon as
    ``close()`` is called (before the handshake ends), and after it."""
    async with ws_pair() as (client, _):
        stream = WsStream(client)
        assert stream.is_closing() is False
        stream.close()
        assert stream.is_closing() is True
        await asyncio.wait_for(stream.wait_closed(), 5)
        assert (stream.is_closing(), stream.close_code) == (True, 1000)


async def test_a_rejected_text_message_does_not_stall_the_close_behind_unread_messages() -> None:
    """``text="reject"``: the peer sends a text message, then more binary messages than
    the connection queues. The stream closes with 1003 and keeps dropping what arrives,
    so the peer's close reply gets through and the handshake completes (within its
    timeout of 30 s, in a fraction of it)."""
    async with ws_pair() as (client, server):
        stream = WsStream(client, close_timeout=30)
        await server.send("a text message")
        for _ in range(64):
            await server.send(b"x" * 1024)
        with pytest.raises(ProtocolError, match=r"^received a text message of 14 bytes"):
            await asyncio.wait_for(stream.read(1), 5)
        await asyncio.wait_for(stream.wait_closed(), 5)
        assert (stream.close_code, stream.close_reason) == (1003, "text messages are not accepted")

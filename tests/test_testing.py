"""wsframed.testing: in-memory pairs behave as a real websockets connection does.

Each scenario runs twice, over ``wsframed.testing`` and over a real websockets
connection on 127.0.0.1, and the outcomes must be equal: the memory backend is tested
against the thing it stands in for, not against its own idea of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.conftest import ws_pair
from wsframed import ProtocolError, WsStream
from wsframed.backends import BackendClosed
from wsframed.codecs import LinesCodec, MsgpackCodec
from wsframed.events import Closed, CloseFrame, Error, Ping, TextMessage
from wsframed.testing import framed_pair, memory_connection_pair, stream_pair

WAIT = 10.0


@asynccontextmanager
async def raw_pair(kind: str, **server_limits: Any) -> AsyncIterator[tuple[Any, Any]]:
    """(client, server) raw connections: in memory, or websockets on loopback.

    ``server_limits`` (``max_size``, ``max_queue``) apply to the server end only.
    """
    if kind == "memory":
        client, server = memory_connection_pair()
        for name, value in server_limits.items():
            setattr(server, name, value)
        yield client, server
    else:
        async with ws_pair(server_limits) as pair:
            yield pair


async def send_text(connection: Any, text: str) -> None:
    await connection.send(text)  # both kinds take a str as a text message


KINDS = ["memory", "websockets"]


async def bounded(aw: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(aw, WAIT)


async def outcome(call: Callable[[], Awaitable[Any]]) -> Any:
    """What a call gives: its result, or its exception's type and text."""
    try:
        return await bounded(call())
    except Exception as exc:
        return (type(exc).__name__, str(exc))


@pytest.mark.parametrize("kind", KINDS)
async def test_a_close_code_and_reason_reach_the_reader(kind: str) -> None:
    async with raw_pair(kind) as (a, b):
        client, server = WsStream(a), WsStream(b)
        client.write(b"last words")
        await bounded(client.aclose(4000, "bye"))
        assert await bounded(server.read(100)) == b"last words"
        assert await outcome(lambda: server.read(100)) == (
            "ConnectionClosed",
            "connection closed with code 4000 (bye)",
        )
        assert (client.close_code, client.close_reason) == (4000, "bye")
        assert (server.close_code, server.close_reason) == (4000, "bye")
        await bounded(server.aclose())


@pytest.mark.parametrize("kind", KINDS)
async def test_send_eof_ends_the_peer_cleanly_and_keeps_reading(kind: str) -> None:
    async with raw_pair(kind) as (a, b):
        client, server = WsStream(a), WsStream(b)
        server.write(b"sent before the close")
        await bounded(server.drain())
        await bounded(client.send_eof())
        assert await bounded(server.read(100)) == b""
        assert await bounded(client.read(100)) == b"sent before the close"
        assert await bounded(client.read(100)) == b""
        await bounded(client.wait_closed())
        assert (client.close_code, server.close_code) == (1000, 1000)
        assert await outcome(lambda: server.send(b"late")) == (
            "ConnectionClosed",
            "connection closed with code 1000",
        )


@pytest.mark.parametrize("kind", KINDS)
async def test_a_text_message_is_rejected_with_1003_after_the_bytes_before_it(kind: str) -> None:
    async with raw_pair(kind) as (a, b):
        stream = WsStream(a)
        events = stream.events()
        await b.send(b"ab")
        await send_text(b, "text")
        assert await bounded(stream.read(2)) == b"ab"
        assert await outcome(lambda: stream.read(1)) == (
            "ProtocolError",
            "received a text message of 4 bytes; this stream carries binary messages "
            "only (text='reject'): closing with 1003",
        )
        seen = [event async for event in events]
        assert [type(e) for e in seen] == [TextMessage, Error, CloseFrame, Closed]
        assert seen[0] == TextMessage(4)
        assert seen[-1] == Closed(1003, "text messages are not accepted")
        assert isinstance(seen[1].exc, ProtocolError)


@pytest.mark.parametrize("kind", KINDS)
async def test_text_bytes_policy_joins_the_stream(kind: str) -> None:
    async with raw_pair(kind) as (a, b):
        stream = WsStream(a, text="bytes")
        await b.send(b"ab")
        await send_text(b, "cd\u00e9")
        assert await bounded(stream.readexactly(6)) == b"abcd\xc3\xa9"
        await bounded(stream.aclose())


SENDER_SEES = {  # the reason is each library's own wording; the code is the same
    "memory": "connection closed with code 1009 (message too big: 11 bytes > limit of 10)",
    "websockets": (
        "connection closed with code 1009 (frame with 11 bytes exceeds limit of 10 bytes)"
    ),
}


@pytest.mark.parametrize("kind", KINDS)
async def test_an_oversized_message_fails_with_1009_at_the_sender(kind: str) -> None:
    async with raw_pair(kind, max_size=10) as (a, b):
        sender, receiver = WsStream(a), WsStream(b)
        sender.write(b"x" * 11)
        await bounded(sender.drain())
        assert await outcome(lambda: receiver.read(100)) == (
            "ConnectionClosed",
            "connection closed with code 1006",
        )
        assert await outcome(lambda: sender.read(100)) == ("ConnectionClosed", SENDER_SEES[kind])
        assert sender.close_code == 1009


@pytest.mark.parametrize("kind", KINDS)
async def test_ping_is_seen_by_the_peer(kind: str) -> None:
    async with raw_pair(kind) as (a, b):
        client, server = WsStream(a), WsStream(b)
        events = server.events()
        rtt = await bounded(client.ping(b"\x01\x02"))
        assert rtt >= 0.0
        assert await bounded(anext(events)) == Ping(b"\x01\x02")
        await bounded(client.aclose())
        assert await outcome(lambda: client.ping(b"late")) == (
            "ConnectionClosed",
            "connection closed with code 1000",
        )


async def test_a_reader_that_stops_stops_the_writer_at_max_queue() -> None:
    client, server = stream_pair(write_chunk_size=1, max_queue=4)
    client.write(b"0123456789")
    drain = asyncio.create_task(client.drain())
    for _ in range(20):
        await asyncio.sleep(0)
    connection = server.get_extra_info("connection")
    assert (connection.queued, drain.done()) == (4, False)
    assert await bounded(server.readexactly(10)) == b"0123456789"
    await bounded(drain)
    assert connection.queued == 0
    await bounded(asyncio.gather(client.aclose(), server.aclose()))


async def test_framed_pair_round_trips_and_splits() -> None:
    client, server = framed_pair(MsgpackCodec())
    async with client, server:
        await bounded(client.send_all([1, "two", [3]]))
        assert [await bounded(server.recv()) for _ in range(3)] == [1, "two", [3]]
        sink, stream = server.split()
        await bounded(sink.send({"x": 1}))
        assert await bounded(client.recv()) == {"x": 1}
        await bounded(client.stream.aclose())
        assert [item async for item in stream] == []


async def test_framed_pair_with_another_server_codec_shows_the_mismatch() -> None:
    client, server = framed_pair(LinesCodec(), MsgpackCodec())
    await bounded(client.send("hello"))  # every byte of b"hello\n" is a msgpack fixint
    assert [await bounded(server.recv()) for _ in range(6)] == [104, 101, 108, 108, 111, 10]
    await bounded(asyncio.gather(client.aclose(), server.aclose()))


async def test_framed_pair_refuses_a_codec_class_before_starting_streams() -> None:
    with pytest.raises(TypeError, match=r"framed_pair\(\)"):
        framed_pair(LinesCodec)  # type: ignore[arg-type]
    assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()


async def test_memory_ends_report_addresses_subprotocol_and_request() -> None:
    client, server = framed_pair(LinesCodec(), subprotocol="wsframed.lines")
    a = client.stream.get_extra_info("connection")
    assert client.stream.get_extra_info("sockname") == a.name
    assert client.stream.get_extra_info("peername") == a.peer.name
    assert (client.subprotocol, server.subprotocol) == ("wsframed.lines", "wsframed.lines")
    assert server.request is None
    await bounded(asyncio.gather(client.aclose(), server.aclose()))


async def test_an_end_is_wrapped_once() -> None:
    a, _ = memory_connection_pair()
    stream = WsStream(a)
    with pytest.raises(ValueError, match="wrapped by a stream already"):
        WsStream(a)
    stream._backend.abort()
    assert await outcome(lambda: stream.read(1)) == (
        "ConnectionClosed",
        "connection closed with code 1006",
    )


async def test_the_protocol_unit_test_example_passes(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.protocol_unit_test import test_key_value_store

    await bounded(test_key_value_store())
    assert capsys.readouterr().out == (
        "refused with 4000 (unknown request)\nkey_value_store: 3 requests, 2 answers, 1 refusal\n"
    )


@pytest.mark.parametrize("method", ["receive", "send", "close", "ping", "wait_closed"])
async def test_every_call_on_a_closed_end_gives_the_loop_a_turn(method: str) -> None:
    a, _ = memory_connection_pair()
    a.abort()
    call = {
        "receive": a.receive,
        "send": lambda: a.send(b"x"),
        "close": a.close,
        "ping": a.ping,
        "wait_closed": a.wait_closed,
    }[method]
    turns = 0

    async def tick() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    before = turns
    for _ in range(10):
        with contextlib.suppress(BackendClosed):
            await call()
    ticker.cancel()
    assert turns - before >= 10


async def test_rpc_peers_over_a_memory_pair() -> None:
    """Protocol-level code needs no socket: RpcPeer calls both ways, then a drop."""
    from wsframed.rpc import RpcPeer

    client_side, server_side = framed_pair(MsgpackCodec())
    client, server = RpcPeer(client_side), RpcPeer(server_side)
    server.register("add", lambda a, b: a + b)
    client.register("name", lambda: "memory")
    async with client, server:
        assert await bounded(client.call("add", 2, 3)) == 5
        assert await bounded(server.call("name")) == "memory"
        blocked = asyncio.Event()

        async def never(value: int) -> int:
            blocked.set()
            await asyncio.Event().wait()
            return value

        server.register("never", never)
        call = asyncio.create_task(client.call("never", 1))
        await bounded(blocked.wait())
        client_side.stream.get_extra_info("connection").abort()
        assert await outcome(lambda: call) == (
            "ConnectionClosed",
            "connection closed with code 1006",
        )

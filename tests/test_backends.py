"""WsStream over every backend: websockets, aiohttp (server and client), Starlette/uvicorn.

Each test runs against real servers on 127.0.0.1; the far end is always a plain
websockets connection (``peer``), so the assertions read the same for every backend.
Where a backend cannot do what websockets does, the test states the documented
guarantee instead (see docs/integrations.md).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from wsframed import ConnectionClosed, EndOfStream, Framed, ProtocolError, WsStream
from wsframed.codecs import MsgpackCodec
from wsframed.events import Closed, CloseFrame, Ping, Pong, TextMessage

from .backend_pairs import BACKENDS as LIBRARY_BACKENDS
from .backend_pairs import backend_pair as library_pair
from .backend_pairs import bytes_waiting, pings_answered_late
from .conftest import LOOP, wait_for
from .picows_pairs import PICOWS_BACKENDS, picows_pair

BACKENDS = LIBRARY_BACKENDS + PICOWS_BACKENDS


def backend_pair(kind: str, **options: Any) -> Any:
    """``(connection of kind, websockets peer)``: the library backends and picows."""
    if kind in PICOWS_BACKENDS:
        options.pop("aiohttp_options", None)
        return picows_pair(kind, **options)
    return library_pair(kind, **options)

pytestmark = pytest.mark.timeout(20)

CAN_SEE_LATE_BYTES = {"websockets", "aiohttp-server", "aiohttp-client", *PICOWS_BACKENDS}
"""Backends that deliver bytes arriving during this side's close handshake."""


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_line_split_across_messages_is_read_whole(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        await peer.send(b"hello, ")
        await peer.send(b"")
        await peer.send(b"world\nnext")
        assert await stream.readline() == b"hello, world\n"
        await peer.send(b" line\n")
        assert await stream.readline() == b"next line\n"


async def test_readexactly_across_messages(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        for part in (b"12", b"345", b"6789"):
            await peer.send(part)
        assert await stream.readexactly(8) == b"12345678"
        assert await stream.read(10) == b"9"


async def test_one_mib_arrives_identical_both_ways(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn, write_chunk_size=64 * 1024)
        payload = os.urandom(1024 * 1024)
        received = bytearray()

        async def collect() -> None:
            while len(received) < len(payload):
                message = await peer.recv()
                assert isinstance(message, bytes)
                assert len(message) <= 64 * 1024
                received.extend(message)

        collector = asyncio.create_task(collect())
        for start in range(0, len(payload), 100_000):
            stream.write(payload[start : start + 100_000])
        await stream.drain()
        await asyncio.wait_for(collector, 10)
        assert received == payload

        back = payload[::-1]

        async def peer_sends() -> None:
            for start in range(0, len(back), 50_000):
                await peer.send(back[start : start + 50_000])

        sender = asyncio.create_task(peer_sends())
        assert await asyncio.wait_for(stream.readexactly(len(back)), 10) == back
        await sender


async def test_peer_initiated_close_delivers_the_rest_then_eof(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        events = stream.events()
        await peer.send(b"last ")
        await peer.send(b"bytes")
        await peer.close(1000, "done")
        assert await stream.readexactly(10) == b"last bytes"
        assert await stream.read(100) == b""
        with pytest.raises(EndOfStream):
            await stream.receive()
        assert stream.at_eof()
        assert (stream.close_code, stream.close_reason) == (1000, "done")
        async with asyncio.timeout(5):
            seen = [event async for event in events]
        assert seen[-2:] == [CloseFrame(1000, "done"), Closed(1000, "done")]


async def test_abnormal_close_code_is_raised_after_the_bytes(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        await peer.send(b"partial")
        await peer.close(4001, "application failure")
        assert await stream.read(100) == b"partial"
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(stream.read(100), 5)
        assert (info.value.code, info.value.reason) == (4001, "application failure")
        with pytest.raises(ConnectionClosed):
            await stream.read(100)  # it stays failed


async def test_tcp_end_without_a_close_frame_is_connection_closed_1006(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        await peer.send(b"A" * 1000)
        await peer.send(b"B" * 10)
        peer.transport.close()  # flushes, then FIN: no close frame
        assert await stream.readexactly(1010) == b"A" * 1000 + b"B" * 10
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(stream.read(10), 5)
        assert isinstance(info.value, ConnectionError)
        assert info.value.code == 1006
        assert stream.close_code == 1006


async def test_text_reject_closes_with_1003_after_the_earlier_bytes(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        events = stream.events()
        await peer.send(b"binary first")
        await peer.send("some text")
        assert await stream.read(100) == b"binary first"
        with pytest.raises(ProtocolError, match="text message of 9 bytes"):
            await stream.read(100)
        with pytest.raises(WsConnectionClosed) as info:
            await asyncio.wait_for(peer.recv(), 5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1003
        assert TextMessage(9) in [event async for event in events]


async def test_text_bytes_policy_joins_the_stream(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn, text="bytes")
        await peer.send(b"a")
        await peer.send("é\n")
        assert await stream.readline() == "aé\n".encode()


async def test_aclose_completes_the_handshake_with_a_normal_peer(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        stream.write(b"final")
        started = time.monotonic()
        await stream.aclose(4000, "finished")
        assert time.monotonic() - started < 2
        assert await peer.recv() == b"final"
        with pytest.raises(WsConnectionClosed) as info:
            await asyncio.wait_for(peer.recv(), 5)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "finished")
        assert stream.is_closing()
        assert stream.close_code is not None
        await stream.aclose()  # idempotent


async def test_aclose_with_timeout_drops_a_peer_that_never_answers(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        peer.transport.pause_reading()  # the peer never reads our close frame
        started = time.monotonic()
        await stream.aclose(timeout=0.5)
        elapsed = time.monotonic() - started
        peer.transport.resume_reading()
        if kind == "starlette":
            # ASGI: the server took the close and finishes the handshake itself.
            assert elapsed < 0.45
            assert stream.close_code == 1000
        else:
            assert 0.45 <= elapsed < 1.5
            assert stream.close_code == 1006
            await asyncio.wait_for(peer.wait_closed(), 5)  # the TCP connection is gone
        assert await stream.read() == b""


async def test_send_eof_then_read_to_the_end(kind: str) -> None:
    """Bytes the peer sent before this side's close frame, and in flight after it.

    What each backend loses, exactly: nothing, except under Starlette/uvicorn, where
    the server drops every message arriving after it sent its close frame.
    """
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        before = [os.urandom(4096) for _ in range(12)]  # under the pump's read-ahead
        for chunk in before:
            await peer.send(chunk)
        await asyncio.wait_for(await peer.ping(), 5)  # all of them reached the server
        first = await stream.readexactly(4096)
        # The peer stops reading, so it does not see the close frame and keeps sending.
        peer.transport.pause_reading()
        await stream.send_eof()
        await wait_for(lambda: bytes_waiting(peer), 5)  # the close frame reached the peer
        in_flight = [os.urandom(4096) for _ in range(5)]
        for chunk in in_flight:
            await peer.send(chunk)
        peer.transport.resume_reading()
        received = bytearray(first)
        async with asyncio.timeout(10):
            while data := await stream.read(65536):  # a clean end: no exception
                received += data
        if kind in CAN_SEE_LATE_BYTES:
            assert received == b"".join(before + in_flight)
        else:  # uvicorn drops what arrives after its close frame, and only that
            assert received == b"".join(before)
        assert stream.close_code == 1000


async def test_writing_after_the_peer_left_raises_connection_closed(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        await peer.close()
        assert await asyncio.wait_for(stream.read(), 5) == b""
        stream.write(b"too late")
        with pytest.raises(ConnectionClosed):
            await stream.drain()


async def test_cancelled_read_loses_no_bytes(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        await peer.send(b"abc")
        waiting = asyncio.create_task(stream.readexactly(6))
        await asyncio.sleep(0.02)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await stream.read(100) == b"abc"  # nothing was lost
        pending = asyncio.create_task(stream.read(1))
        await asyncio.sleep(0.02)
        pending.cancel()  # cancelled while the backend waits for a message
        with pytest.raises(asyncio.CancelledError):
            await pending
        await peer.send(b"def")
        assert await asyncio.wait_for(stream.readexactly(3), 5) == b"def"
        assert stream.close_code is None  # cancelling did not fail the connection


async def test_backpressure_reaches_the_peer_when_the_reader_stops(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        chunk = b"z" * 65536
        sent = 0

        async def send_forever() -> None:
            nonlocal sent
            while True:
                await peer.send(chunk)
                sent += len(chunk)

        sender = asyncio.create_task(send_forever())
        previous = -1
        async with asyncio.timeout(10):
            while sent != previous:  # the peer must come to a stop
                previous = sent
                await asyncio.sleep(0.2)
        assert not sender.done()
        assert sent < 32 * 1024 * 1024
        received = 0
        target = sent + 10 * len(chunk)  # past what was stuck: the peer moved again
        async with asyncio.timeout(10):
            while received < target:
                received += len(await stream.read(1 << 20))
        sender.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sender
        await stream.aclose()  # discards the rest, so the handshake is prompt


async def test_events_and_closed_without_a_reader(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        events = stream.events()
        await peer.close(1001, "going away")
        # Nobody reads: the end is still noticed and reported.
        await asyncio.wait_for(stream.wait_closed(), 5)
        async with asyncio.timeout(5):
            seen = [event async for event in events]
        assert seen[-1] == Closed(1001, "going away")
        assert CloseFrame(1001, "going away") in seen


async def test_extra_info(kind: str) -> None:
    async with backend_pair(kind, subprotocols=["bin"]) as (conn, peer):
        stream = WsStream(conn)
        assert stream.get_extra_info("connection") is conn
        assert stream.get_extra_info("peername")[:2] == peer.local_address[:2]
        assert stream.get_extra_info("sockname")[:2] == peer.remote_address[:2]
        assert stream.get_extra_info("nonexistent", "dflt") == "dflt"
        if kind == "starlette":  # Starlette does not record the accepted subprotocol
            assert stream.get_extra_info("subprotocol", "?") == "?"
        else:
            assert stream.get_extra_info("subprotocol") == "bin"


async def test_framed_msgpack_round_trips(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        here = Framed(WsStream(conn), MsgpackCodec())
        there = Framed(WsStream(peer), MsgpackCodec())

        async def echo() -> None:
            async for item in there:
                await there.send({"echo": item})

        echo_task = asyncio.create_task(echo())
        items = [{"id": i, "data": b"\x00" * i, "text": "é" * (i % 7)} for i in range(200)]
        await here.send_all(items)
        async with asyncio.timeout(10):
            replies = [await here.recv() for _ in items]
        assert replies == [{"echo": item} for item in items]
        await here.aclose()
        await asyncio.wait_for(echo_task, 5)  # the echo side saw a clean end


# Pings --------------------------------------------------------------------------


async def test_ping_support_per_backend(kind: str) -> None:
    async with backend_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        if kind == "websockets" or kind in PICOWS_BACKENDS:
            # The peer answers 0.2 s after the ping reached it.
            assert await pings_answered_late(stream.ping(), peer, 0.2) >= 0.2
            return
        with pytest.raises(NotImplementedError, match=r"autoping=False|no access to ping"):
            await stream.ping()


@pytest.mark.parametrize("kind", ["websockets", "aiohttp-server", *PICOWS_BACKENDS])
def test_ping_times_a_loopback_round_trip_on_uvloop(kind: str) -> None:
    """uvloop's loop.time() has a millisecond resolution: a loopback round trip timed
    with it reads 0.0. Each ping's time is above 0 and within the wall time around it."""
    import uvloop

    async def pings() -> list[tuple[float, float]]:
        async with backend_pair(kind, aiohttp_options={"autoping": False}) as (conn, _peer):
            stream = WsStream(conn)
            timed = []
            for _ in range(20):
                started = time.perf_counter()
                rtt = await asyncio.wait_for(stream.ping(), 5)
                timed.append((rtt, time.perf_counter() - started))
            return timed

    for rtt, elapsed in uvloop.run(pings()):
        assert 0 < rtt <= elapsed


async def test_the_suite_runs_on_the_loop_wsframed_loop_names() -> None:
    loop = type(asyncio.get_running_loop())
    assert (loop.__module__.partition(".")[0] == "uvloop") == (LOOP == "uvloop")


@pytest.mark.parametrize("kind", ["aiohttp-server", "aiohttp-client"])
async def test_aiohttp_autoping_off_gives_ping_and_pong_events(kind: str) -> None:
    async with backend_pair(kind, aiohttp_options={"autoping": False}) as (conn, peer):
        stream = WsStream(conn)
        events = stream.events()
        await asyncio.wait_for(await peer.ping(b"from peer"), 5)  # answered by wsframed
        times = await asyncio.wait_for(asyncio.gather(*(stream.ping() for _ in range(3))), 5)
        assert all(0 <= t < 5 for t in times)
        await peer.pong(b"unsolicited")
        await peer.send(b"data")
        assert await stream.read(10) == b"data"
        seen = [await anext(events) for _ in range(5)]
        assert seen[0] == Ping(b"from peer")
        assert sum(isinstance(e, Pong) for e in seen) == 4
        assert seen[-1] == Pong(b"unsolicited")


@pytest.mark.parametrize("kind", ["aiohttp-server", "aiohttp-client"])
async def test_aiohttp_autoclose_off_still_answers_the_peers_close(kind: str) -> None:
    async with backend_pair(kind, aiohttp_options={"autoclose": False}) as (conn, peer):
        stream = WsStream(conn)
        await peer.send(b"bye")
        await asyncio.wait_for(peer.close(1001, "leaving"), 5)  # wsframed replied
        assert await stream.read() == b"bye"
        assert (stream.close_code, stream.close_reason) == (1001, "leaving")


@pytest.mark.parametrize("kind", ["aiohttp-server", "aiohttp-client"])
async def test_aiohttp_message_over_max_msg_size_fails_after_the_bytes(kind: str) -> None:
    async with backend_pair(kind, aiohttp_options={"max_msg_size": 1000}) as (conn, peer):
        stream = WsStream(conn)
        await peer.send(b"small")
        await peer.send(b"x" * 2000)
        assert await stream.read(100) == b"small"
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(stream.read(100), 5)
        assert info.value.code == 1009
        assert "2000" in info.value.reason


async def test_aiohttp_heartbeat_ends_the_stream_when_the_peer_stops_answering() -> None:
    async with backend_pair("aiohttp-server", aiohttp_options={"heartbeat": 0.1}) as (
        conn,
        peer,
    ):
        stream = WsStream(conn)
        await peer.send(b"before")
        peer.transport.pause_reading()  # pings go unanswered from now on
        assert await stream.read(100) == b"before"
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(stream.read(100), 5)
        assert info.value.code == 1006
        assert "PONG" in info.value.reason
        peer.transport.resume_reading()


# Construction -------------------------------------------------------------------


async def test_type_error_names_every_accepted_type() -> None:
    with pytest.raises(TypeError) as info:
        WsStream(object())
    message = str(info.value)
    for name in ("ClientConnection or ServerConnection", "aiohttp", "WebSocketResponse",
                 "ClientWebSocketResponse", "Starlette", "FastAPI", "PicowsConnection",
                 "builtins.object"):
        assert name in message


async def test_unprepared_aiohttp_response_is_refused() -> None:
    from aiohttp import web

    with pytest.raises(ValueError, match=r"await ws.prepare\(request\)"):
        WsStream(web.WebSocketResponse())


async def test_unaccepted_starlette_websocket_is_refused() -> None:
    from starlette.websockets import WebSocket

    async def receive() -> dict[str, Any]:
        raise AssertionError("not connected")

    async def send(message: MutableMapping[str, Any]) -> None:
        raise AssertionError("not connected")

    websocket = WebSocket({"type": "websocket", "path": "/", "headers": []}, receive, send)
    with pytest.raises(ValueError, match=r"websocket.accept\(\)"):
        WsStream(websocket)


@pytest.mark.parametrize(
    ("library", "module", "extra"),
    [
        ("aiohttp", "wsframed.backends.aiohttp", "wsframed[aiohttp]"),
        ("starlette", "wsframed.backends.starlette", "wsframed[starlette]"),
        ("anyio", "wsframed.anyio", "wsframed[anyio]"),
        ("picows", "wsframed.backends.picows", "wsframed[picows]"),
    ],
)
def test_a_missing_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, library: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, library, None)  # "import library" now fails
    for name in list(sys.modules):
        if name.startswith(f"{library}."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=re.escape(f"pip install '{extra}'")):
        importlib.import_module(module)

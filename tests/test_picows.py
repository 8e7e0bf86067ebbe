"""What the picows backend does itself: picows hands over frames and leaves the rest.

Every test of tests/test_backends.py also runs over a picows client and server; these
cover what picows leaves to its user (fragments, limits, UTF-8, the close reply) and
``connect()``/``serve()`` with ``backend="picows"``. Peers are real: websockets, or a
hand-written client (tests/peers.py) for frames no library sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import struct
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

import wsframed
from wsframed import ConnectionClosed, Framed, ProtocolError, WsStream
from wsframed.backends.picows import PicowsConnection
from wsframed.codecs import LengthPrefixedCodec, MsgpackCodec
from wsframed.events import Closed, CloseFrame, TextMessage

from .conftest import wait_for
from .peers import (
    OP_BINARY,
    OP_CONT,
    OP_TEXT,
    KiB,
    MiB,
    RawWsClient,
    close_code,
    reset,
    serving,
    shrink_buffers,
)
from .picows_pairs import PICOWS_BACKENDS, picows_pair

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(params=PICOWS_BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_close_without_a_reason_is_echoed_and_ends_the_stream_cleanly(kind: str) -> None:
    async with picows_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        events = stream.events()
        await peer.send(b"last")
        await asyncio.wait_for(peer.close(), 5)  # 1000, no reason
        assert peer.close_code == 1000  # its close frame came back
        assert await stream.read() == b"last"
        assert (stream.close_code, stream.close_reason) == (1000, "")
        async with asyncio.timeout(5):
            seen = [event async for event in events]
        assert seen == [CloseFrame(1000, ""), Closed(1000, "")]


async def test_a_fragmented_message_joins_the_stream_whole(kind: str) -> None:
    async with picows_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        await peer.send([b"frag", b"", b"mented"])  # three frames and an empty last one
        await peer.send(b"!")
        assert await asyncio.wait_for(stream.readexactly(11), 5) == b"fragmented!"


async def test_a_fragmented_message_over_max_size_fails_with_1009(kind: str) -> None:
    async with picows_pair(kind, max_size=1000) as (conn, peer):
        stream = WsStream(conn)
        await peer.send(b"before")
        await peer.send([b"x" * 600, b"y" * 600])
        assert await stream.read(100) == b"before"
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(stream.read(100), 5)
        assert (info.value.code, info.value.reason) == (
            1009,
            "message of 1200+ bytes exceeds max_size=1000",
        )
        with pytest.raises(WsConnectionClosed) as closed:
            await asyncio.wait_for(peer.recv(), 5)
        assert close_code(closed.value) == 1009


async def test_a_frame_over_max_size_fails_with_1009_before_its_body(kind: str) -> None:
    async with picows_pair(kind, max_size=1000) as (conn, peer):
        stream = WsStream(conn)
        await peer.send(b"x" * 1001)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(stream.read(100), 5)
        assert info.value.code == 1009
        assert "1001 > 1000" in info.value.reason


async def test_text_that_arrived_before_the_stream_is_rejected_in_order(kind: str) -> None:
    async with picows_pair(kind) as (conn, peer):
        await peer.send(b"first")
        await peer.send("early text")
        await asyncio.wait_for(await peer.ping(), 5)  # both reached the connection
        stream = WsStream(conn)
        events = stream.events()
        assert await stream.read(100) == b"first"
        with pytest.raises(ProtocolError, match="text message of 10 bytes"):
            await stream.read(100)
        assert await anext(events) == TextMessage(10)


async def test_invalid_utf8_in_a_text_message_fails_with_1007() -> None:
    async with serving(MsgpackCodec(), backend="picows") as (_url, outcomes, server):
        peer = await RawWsClient.connect(server.port)
        peer.send(OP_BINARY, MsgpackCodec().encode("ok"))
        peer.send(OP_TEXT, b"\xc3", fin=False)
        peer.send(OP_CONT, b"(")  # not a continuation byte
        await peer.writer.drain()
        assert await peer.close_code() == 1007
        await outcomes.wait(1)
        assert outcomes.items[0] == ["ok"]
        error = outcomes.errors[0]
        assert isinstance(error, ConnectionClosed)
        assert (error.code, error.reason) == (1007, "invalid UTF-8 at byte 0 of a text message")
        peer.close()


async def test_reading_resumes_after_text_counted_in_utf8_bytes(kind: str) -> None:
    """Unread messages are counted in bytes: 2-byte characters must not leave reading
    paused for good once the reader caught up."""
    async with picows_pair(kind) as (conn, peer):
        stream = WsStream(conn, text="bytes")
        text = "é" * 50_000  # 100,000 bytes of UTF-8: past the read-ahead on its own
        for _ in range(3):
            await peer.send(text)
        await peer.send(b"end")
        expected = text.encode() * 3 + b"end"
        assert await asyncio.wait_for(stream.readexactly(len(expected)), 5) == expected


async def test_a_second_stream_on_one_connection_is_refused(kind: str) -> None:
    async with picows_pair(kind) as (conn, _peer):
        WsStream(conn)
        with pytest.raises(RuntimeError, match="already wrapped"):
            WsStream(conn)


# Faults --------------------------------------------------------------------------


async def test_client_reset_mid_frame_reaches_the_handler_as_connection_closed() -> None:
    codec = LengthPrefixedCodec()
    async with serving(codec, backend="picows") as (url, outcomes, server):
        peer = await RawWsClient.connect(server.port)
        peer.send(OP_BINARY, codec.encode(b"whole") + b"\x00\x00\x01\x00" + b"p" * 10)
        peer.write(b"\x82\xfe\x10\x00" + b"q" * 10)  # half of a masked 4 KiB frame
        await peer.writer.drain()
        await asyncio.sleep(0.05)  # let the server read it all before the RST
        peer.reset()
        await outcomes.wait(1)
        assert outcomes.items[0] == [b"whole"]
        error = outcomes.errors[0]
        assert isinstance(error, ConnectionClosed)
        assert error.code == 1006
        async with wsframed.connect(url, codec, backend="picows") as framed:  # still serving
            await framed.send(b"again")
        await outcomes.wait(2)
        assert outcomes.items[1] == [b"again"]


@pytest.mark.parametrize("how", ["close-1000", "close-4000", "reset"])
async def test_sending_after_the_peer_went_away_raises_connection_closed(
    kind: str, how: str
) -> None:
    async with picows_pair(kind) as (conn, peer):
        framed = Framed(WsStream(conn), MsgpackCodec())
        if how == "reset":
            reset(peer.transport)
        else:
            await peer.close(int(how.split("-")[1]))
        await asyncio.wait_for(conn.wait_closed(), 5)
        with pytest.raises(ConnectionClosed) as info:
            await framed.send("too late")
        assert info.value.code == {"close-1000": 1000, "close-4000": 4000, "reset": 1006}[how]


async def test_cancelled_sends_blocked_on_backpressure_leave_the_stream_byte_exact() -> None:
    """A picows client sends to a peer that stopped reading; sends are cancelled while
    they wait for the transport. Every frame goes out whole, once, in order."""
    codec = LengthPrefixedCodec(max_frame_size=MiB)
    rng = random.Random(7)
    # About 10 MiB: loopback sockets absorb about 4 MiB before the transport pauses.
    sizes = [rng.randrange(100 * KiB, 400 * KiB) for _ in range(40)]
    frames = [struct.pack(">I", n) + rng.randbytes(size) for n, size in enumerate(sizes)]
    async with picows_pair("picows-client") as (conn, peer):
        assert conn.transport is not None
        shrink_buffers(conn.transport.underlying_transport, peer.transport)
        peer.transport.pause_reading()
        stream = WsStream(conn, write_chunk_size=16 * KiB)
        framed = Framed(stream, codec)
        cancelled = 0
        for item in frames:
            task = asyncio.ensure_future(framed.send(item))
            await asyncio.sleep(rng.choice((0, 0, 0.001, 0.01)))
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                cancelled += 1
        assert cancelled > 10  # the peer is stalled: most sends block
        received = bytearray()

        async def collect() -> None:
            with contextlib.suppress(WsConnectionClosed):
                async for message in peer:
                    assert isinstance(message, bytes)
                    received.extend(message)

        collector = asyncio.create_task(collect())
        peer.transport.resume_reading()
        await asyncio.wait_for(framed.flush(), 10)
        expected = b"".join(codec.encode(item) for item in frames)
        await wait_for(lambda: len(received) >= len(expected), timeout=10)
        collector.cancel()
        assert hashlib.sha256(received).digest() == hashlib.sha256(expected).digest()


async def test_keepalive_drops_a_peer_that_vanished() -> None:
    """picows pings every ping_interval; no pong within ping_timeout drops the peer."""
    keepalive = {"ping_interval": 0.2, "ping_timeout": 0.2}
    async with serving(MsgpackCodec(), backend="picows", **keepalive) as (_url, outcomes, server):
        peer = await RawWsClient.connect(server.port)
        peer.send(OP_BINARY, MsgpackCodec().encode("hello"))
        await peer.writer.drain()
        peer.writer.transport.pause_reading()  # the client is gone: it answers nothing
        await outcomes.wait(1, timeout=15)
        assert outcomes.items[0] == ["hello"]
        error = outcomes.errors[0]
        assert isinstance(error, ConnectionClosed)
        assert (error.code, error.reason) == (
            1001,  # the close frame picows sent as it gave up
            "peer has not replied to ping/heartbeat request within 0.2 second(s)",
        )
        peer.close()


async def test_closing_the_server_closes_each_connection_with_1001() -> None:
    async def wait(framed: Framed[Any], items: list[Any]) -> None:
        items.append(await framed.recv())
        await framed.recv()  # until the server closes

    async with serving(MsgpackCodec(), wait, backend="picows") as (url, outcomes, server):
        clients = [await wsframed.connect(url, MsgpackCodec(), backend="picows") for _ in range(3)]
        for client in clients:
            await client.send("hi")
        await wait_for(lambda: len(outcomes.items) == 3)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)
        for client in clients:
            with pytest.raises(wsframed.EndOfStream):
                await asyncio.wait_for(client.recv(), 5)
            stream = client.stream
            assert isinstance(stream, WsStream)
            assert stream.close_code == 1001
    assert len(outcomes.errors) == 3


async def test_server_drops_a_client_that_never_answers_its_close() -> None:
    async def body(framed: Framed[Any], items: list[Any]) -> None:
        items.append(await framed.recv())  # then return: the server closes with 1000

    async with serving(MsgpackCodec(), body, backend="picows", close_timeout=0.5) as (
        _url,
        outcomes,
        server,
    ):
        peer = await RawWsClient.connect(server.port)
        peer.writer.transport.pause_reading()  # never reads the close frame, never replies
        peer.send(OP_BINARY, MsgpackCodec().encode(1))
        await outcomes.wait(1)
        assert outcomes.items[0] == [1]
        await wait_for(lambda: not server.ws_server.connections, timeout=5)
        peer.close()


async def test_a_failing_handler_is_not_held_up_by_a_flooding_client() -> None:
    """The handler raises while the client floods: the server reads and drops the
    flood, so the client's close reply gets through well before close_timeout."""

    async def body(framed: Framed[Any], items: list[Any]) -> None:
        items.append(await framed.recv())
        raise RuntimeError("handler bug")

    async with serving(MsgpackCodec(), body, backend="picows", close_timeout=5) as (
        url,
        outcomes,
        server,
    ), connect(url, compression=None) as ws:

        async def flood() -> None:
            with contextlib.suppress(WsConnectionClosed):
                while True:
                    await ws.send(MsgpackCodec().encode("x" * 1000))

        flooder = asyncio.create_task(flood())
        await outcomes.wait(1)
        await wait_for(lambda: not server.ws_server.connections, timeout=4)
        await asyncio.wait_for(flooder, 5)
        assert ws.close_code == 1011


# connect() and serve() ---------------------------------------------------------------


async def test_serve_and_connect_with_picows_route_and_close_as_with_websockets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def echo(framed: Framed[Any]) -> None:
        async for item in framed:
            await framed.send({"echo": item})

    async def failing(framed: Framed[Any]) -> None:
        await framed.recv()
        raise ValueError("handler bug")

    routes = {"/echo": echo, "/fail": failing}
    async with wsframed.serve(routes, "127.0.0.1", 0, MsgpackCodec(), backend="picows") as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with wsframed.connect(f"{url}/echo?x=1", MsgpackCodec(), backend="picows") as f:
            await f.send([1, "two"])
            assert await asyncio.wait_for(f.recv(), 5) == {"echo": [1, "two"]}
        async with wsframed.connect(f"{url}/fail", MsgpackCodec(), backend="picows") as f:
            await f.send("boom")
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(f.recv(), 5)
            assert (info.value.code, info.value.reason) == (1011, "internal error")
        with pytest.raises(Exception, match="404"):
            await wsframed.connect(f"{url}/nowhere", MsgpackCodec(), backend="picows")
        await wait_for(lambda: not server.ws_server.connections)
    failures = [r for r in caplog.records if r.name == "wsframed.server"]
    assert [r.levelno for r in failures] == [logging.ERROR]
    assert "closed with 1011 (internal error)" in failures[0].getMessage()


async def test_the_handler_sees_the_request() -> None:
    seen: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def handler(framed: Framed[Any]) -> None:
        seen.set_result(framed.request)
        await framed.send("ok")

    async with (
        wsframed.serve(
            handler, "127.0.0.1", 0, MsgpackCodec(), backend="picows", subprotocols=["v2", "v1"]
        ) as server,
        wsframed.connect(
            f"ws://127.0.0.1:{server.port}/chat/room%201?name=ann&x=1",
            MsgpackCodec(),
            backend="picows",
            subprotocols=["v1"],
            additional_headers=[("X-Token", "abc"), ("X-Tag", "a"), ("X-Tag", "b")],
        ) as framed,
    ):
        assert await asyncio.wait_for(framed.recv(), 5) == "ok"
        request = await asyncio.wait_for(seen, 5)
        assert request is not None
        assert (request.target, request.path, request.query) == (
            "/chat/room%201?name=ann&x=1",
            "/chat/room%201",
            "name=ann&x=1",
        )
        assert request.headers["x-token"] == "abc"
        assert request.headers.get_all("X-Tag") == ["a", "b"]
        assert request.subprotocol == "v1"
        assert request.remote_address == framed.local_address
        assert framed.request is None  # the client side has none


async def test_subprotocol_is_negotiated(kind: str) -> None:
    async with picows_pair(kind, subprotocols=["v2", "v1"]) as (conn, peer):
        assert WsStream(conn).get_extra_info("subprotocol") == peer.subprotocol == "v2"


async def test_what_picows_cannot_do_raises_at_the_call() -> None:
    codec = MsgpackCodec()
    with pytest.raises(ValueError, match="backend must be 'websockets' or 'picows', not 'x'"):
        wsframed.connect("ws://127.0.0.1:1/", codec, backend="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="picows has no permessage-deflate"):
        await wsframed.connect("ws://127.0.0.1:1/", codec, backend="picows", compression="deflate")
    with pytest.raises(TypeError, match="'origin' is a websockets option"):
        await wsframed.connect("ws://127.0.0.1:1/", codec, backend="picows", origin="x")
    with pytest.raises(TypeError, match="'process_request' is a websockets option"):
        await wsframed.serve(
            lambda f: f.aclose(), "127.0.0.1", 0, codec, backend="picows", process_request=None
        )
    with pytest.raises(NotImplementedError, match="reconnecting needs backend='websockets'"):
        async for _ in wsframed.connect("ws://127.0.0.1:1/", codec, backend="picows"):
            pass


async def test_a_connection_not_open_yet_is_refused() -> None:
    with pytest.raises(ValueError, match="not open yet"):
        WsStream(PicowsConnection())

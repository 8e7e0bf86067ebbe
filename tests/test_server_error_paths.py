"""serve() on its error and close paths: what the client sees, what the caller gets.

Real websockets clients on 127.0.0.1 against wsframed.serve(). Written for mutants of
wsframed/server.py that no test killed (tools/mutation.py; docs/contributing.md,
Testing).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

import wsframed
from wsframed import Framed
from wsframed.codecs import LinesCodec

pytestmark = pytest.mark.timeout(60)


async def echo(framed: Framed[str]) -> None:
    async for line in framed:
        await framed.send(line)


async def closed_with(ws: Any) -> tuple[int, str] | None:
    """Read until the server closes; the close frame the client received."""
    try:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    except WsConnectionClosed as closed:
        received = closed.rcvd
    return None if received is None else (received.code, received.reason)


async def test_serve_forever_on_a_closed_server_raises_after_a_loop_turn() -> None:
    """The caller's mistake is a RuntimeError at once, yet other tasks run first."""
    server = await wsframed.serve(echo, "127.0.0.1", 0, LinesCodec())
    server.close()
    await server.wait_closed()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        before = ticks
        with pytest.raises(RuntimeError, match=r"^serve_forever\(\) on a server that was closed$"):
            await server.serve_forever()
        assert ticks > before
    finally:
        task.cancel()


async def test_serve_forever_serves_until_the_server_is_closed() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, LinesCodec()) as server:
        forever = asyncio.create_task(server.serve_forever())
        async with connect(f"ws://127.0.0.1:{server.port}", compression=None) as ws:
            await ws.send(b"ping\n")
            assert await asyncio.wait_for(ws.recv(), 10) == b"ping\n"
            server.close()
            assert await closed_with(ws) == (1001, "")
        await asyncio.wait_for(forever, 10)  # returns once closed, raises nothing


async def test_close_keeps_open_connections_when_asked() -> None:
    """``close(close_connections=False)`` stops listening but the open connection keeps
    working until the client leaves; then ``wait_closed()`` returns."""
    server = await wsframed.serve(echo, "127.0.0.1", 0, LinesCodec())
    port = server.port
    async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
        server.close(close_connections=False)
        await ws.send(b"still here\n")
        assert await asyncio.wait_for(ws.recv(), 10) == b"still here\n"
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(connect(f"ws://127.0.0.1:{port}", compression=None), 10)
        await ws.send(b"and here\n")
        assert await asyncio.wait_for(ws.recv(), 10) == b"and here\n"
    await asyncio.wait_for(server.wait_closed(), 10)


async def test_leaving_the_server_s_own_async_with_closes_its_connections_with_1001() -> None:
    """``server = await serve(...)`` then ``async with server:``: leaving the block
    closes the open connections (1001) and waits until they are closed."""
    server = await wsframed.serve(echo, "127.0.0.1", 0, LinesCodec())
    async with connect(f"ws://127.0.0.1:{server.port}", compression=None) as ws:
        async with server:
            await ws.send(b"hi\n")
            assert await asyncio.wait_for(ws.recv(), 10) == b"hi\n"
        assert list(server.sockets) == []  # no listening socket (uvloop gives a list)
        assert await closed_with(ws) == (1001, "")


@pytest.mark.parametrize(("size", "fits"), [(64 * 1024, True), (64 * 1024 + 1, False)])
async def test_the_default_limit_of_each_stream_is_64_kib(size: int, fits: bool) -> None:
    """serve() gives each WsStream ``limit=65536``: the handler's readline() takes a
    line of 65,536 bytes before its ``\\n`` and refuses one of 65,537 (consumed=65,537)."""
    got: asyncio.Future[bytes | int] = asyncio.get_running_loop().create_future()

    async def read_a_line(framed: Framed[str]) -> None:
        stream = framed.stream
        assert isinstance(stream, wsframed.WsStream)
        try:
            got.set_result(await stream.readline())
        except asyncio.LimitOverrunError as overrun:
            got.set_result(overrun.consumed)

    async with (
        wsframed.serve(read_a_line, "127.0.0.1", 0, LinesCodec()) as server,
        connect(f"ws://127.0.0.1:{server.port}", compression=None, max_size=None) as ws,
    ):
        await ws.send(b"x" * size + b"\n")
        assert await asyncio.wait_for(got, 10) == (b"x" * size + b"\n" if fits else size)


async def test_what_a_returning_handler_fed_is_sent_before_its_1000() -> None:
    """A handler that feeds frames and returns without flushing: the client receives
    them, then the close frame 1000 (the close flushes, it does not drop)."""

    async def feed_and_return(framed: Framed[str]) -> None:
        framed.feed("one")
        framed.feed("two")

    async with (
        wsframed.serve(feed_and_return, "127.0.0.1", 0, LinesCodec()) as server,
        connect(f"ws://127.0.0.1:{server.port}", compression=None) as ws,
    ):
        received = b""
        async with asyncio.timeout(10):
            async for message in ws:  # ends at a clean close (1000)
                assert isinstance(message, bytes)
                received += message
        assert received == b"one\ntwo\n"
        assert ws.close_code == 1000


async def test_a_handler_raising_protocol_error_closes_with_1002() -> None:
    """The handler judges the peer's frames a protocol violation (its own
    ProtocolError): the client sees 1002, the code RFC 6455 gives that, not 1011."""

    async def strict(framed: Framed[str]) -> None:
        line = await framed.recv()
        raise wsframed.ProtocolError(f"expected HELLO, got {line!r}")

    async with (
        wsframed.serve(strict, "127.0.0.1", 0, LinesCodec()) as server,
        connect(f"ws://127.0.0.1:{server.port}", compression=None) as ws,
    ):
        await ws.send(b"bye\n")
        assert await closed_with(ws) == (1002, "protocol error")


async def handled_once(handler: Any, client: Any) -> None:
    """Serve one connection with ``handler``; run ``client(ws)``; wait for the handler."""
    done = asyncio.Event()

    async def wrapped(framed: Framed[str]) -> None:
        try:
            await handler(framed)
        finally:
            done.set()

    async with wsframed.serve(wrapped, "127.0.0.1", 0, LinesCodec()) as server:
        async with connect(f"ws://127.0.0.1:{server.port}", compression=None) as ws:
            await client(ws)
        await asyncio.wait_for(done.wait(), 10)
    # serve()'s exit waited for the connection, whose record is written by then


async def test_the_peer_leaving_is_one_info_line_saying_how(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler's recv() meets the end (the client closed): one INFO record, no
    traceback, saying the peer ended the stream; an abnormal end names its code."""
    caplog.set_level(logging.INFO, logger="wsframed.server")

    async def reader(framed: Framed[str]) -> None:
        await framed.recv()

    async def close_cleanly(ws: Any) -> None:
        await ws.close()

    async def drop(ws: Any) -> None:
        ws.transport.abort()

    await handled_once(reader, close_cleanly)
    await handled_once(reader, drop)
    records = [r for r in caplog.records if r.name == "wsframed.server"]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)] * 2
    peer = r"\('127\.0\.0\.1', \d+\)"
    assert re.fullmatch(
        rf"the peer {peer} left before the handler finished: the peer ended the stream",
        records[0].getMessage(),
    )
    assert re.fullmatch(
        rf"the peer {peer} left before the handler finished: .*1006.*",
        records[1].getMessage(),
    )


async def test_a_bug_after_the_peer_dropped_logs_that_no_close_frame_was_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The TCP connection is gone before the handler's bug closes it: the ERROR record
    says no close frame was sent (not a 1011 the client never got)."""

    async def buggy(framed: Framed[str]) -> None:
        try:
            await framed.recv()
        except wsframed.ConnectionClosed:
            raise RuntimeError("the handler's own bug") from None

    async def drop(ws: Any) -> None:
        ws.transport.abort()

    await handled_once(buggy, drop)
    [record] = [r for r in caplog.records if r.name == "wsframed.server"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert re.fullmatch(
        r"connection handler failed \(peer \('127\.0\.0\.1', \d+\)\); closed with no close "
        r"frame \(the TCP connection ended first\)",
        record.getMessage(),
    )


@pytest.mark.parametrize(
    ("other_closes_with", "escaped"),
    [(1000, wsframed.EndOfStream), (4000, wsframed.ConnectionClosed)],
)
async def test_another_connection_s_end_escaping_the_handler_closes_with_1011(
    caplog: pytest.LogCaptureFixture, other_closes_with: int, escaped: type[Exception]
) -> None:
    """The handler reads a second connection (a client of another server) and lets its
    end escape while its own connection is open: that is the handler's bug, not its
    peer leaving. Its peer sees 1011, the record is an ERROR with the traceback; only
    the handler's own connection's end closes quietly (the test above)."""
    from websockets.asyncio.server import serve as ws_serve

    async def other_server(ws: Any) -> None:
        await ws.close(other_closes_with, "other gone")

    async with ws_serve(other_server, "127.0.0.1", 0, compression=None) as other:
        port = other.sockets[0].getsockname()[1]

        async def relay(framed: Framed[str]) -> None:
            async with wsframed.connect(f"ws://127.0.0.1:{port}", LinesCodec()) as upstream:
                await upstream.recv()

        async def wait_for_close(ws: Any) -> None:
            assert await closed_with(ws) == (1011, "internal error")

        await handled_once(relay, wait_for_close)
    [record] = [r for r in caplog.records if r.name == "wsframed.server"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert type(record.exc_info[1]) is escaped
    assert re.fullmatch(
        r"connection handler failed \(peer \('127\.0\.0\.1', \d+\)\); closed with 1011 "
        r"\(internal error\)",
        record.getMessage(),
    )


@pytest.mark.parametrize("backend", ["websockets", "picows"])
async def test_the_peer_s_clean_close_escaping_the_handler_is_its_own_end(
    caplog: pytest.LogCaptureFixture, backend: str
) -> None:
    """The client closes cleanly; the handler's recv() raises EndOfStream and lets it
    escape. That is its own connection's end (picows reports it as soon as the close
    frames went both ways, before TCP is gone): one INFO record, no 1011 logged."""
    if backend == "picows":
        pytest.importorskip("picows")
    caplog.set_level(logging.INFO, logger="wsframed.server")
    done = asyncio.Event()

    async def reader(framed: Framed[str]) -> None:
        try:
            await framed.recv()
        finally:
            done.set()

    async with wsframed.serve(reader, "127.0.0.1", 0, LinesCodec(), backend=backend) as server:
        async with connect(f"ws://127.0.0.1:{server.port}", compression=None) as ws:
            await ws.close()
            assert ws.close_code == 1000
        await asyncio.wait_for(done.wait(), 10)
    records = [r for r in caplog.records if r.name == "wsframed.server"]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)]
    assert re.fullmatch(
        r"the peer \('127\.0\.0\.1', \d+\) left before the handler finished: the peer "
        r"ended the stream",
        records[0].getMessage(),
    )

"""wsframed.connect() and wsframed.serve(): real servers and clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

import wsframed
from wsframed import ConnectionClosed, EndOfStream, Framed, FramedServer
from wsframed.codecs import LinesCodec, MsgpackCodec


async def echo(framed: Framed[Any]) -> None:
    async for item in framed:
        await framed.send(item)


def url_of(server: FramedServer) -> str:
    return f"ws://127.0.0.1:{server.port}"


async def test_async_with_both() -> None:
    async with wsframed.serve(echo, "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        assert server.sockets
        assert server.port == server.sockets[0].getsockname()[1]
        async with wsframed.connect(url_of(server), MsgpackCodec()) as framed:
            assert isinstance(framed, Framed)
            await framed.send({"n": [1, 2]})
            assert await asyncio.wait_for(framed.recv(), 5) == {"n": [1, 2]}
        assert framed.stream.close_code == 1000  # leaving the block closed it


async def test_await_both() -> None:
    server = await wsframed.serve(echo, "127.0.0.1", 0, codec=LinesCodec())
    try:
        framed = await wsframed.connect(url_of(server), LinesCodec())
        await framed.send("hi")
        assert await asyncio.wait_for(framed.recv(), 5) == "hi"
        await framed.aclose()
        assert framed.stream.close_code == 1000
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)


async def test_serve_forever_runs_until_cancelled() -> None:
    server = await wsframed.serve(echo, "127.0.0.1", 0, codec=LinesCodec())
    forever = asyncio.create_task(server.serve_forever())
    try:
        async with wsframed.connect(url_of(server), LinesCodec()) as framed:
            await framed.send("still here")
            assert await asyncio.wait_for(framed.recv(), 5) == "still here"
        assert not forever.done()
    finally:
        forever.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(forever, 5)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)


async def test_handler_returning_closes_with_1000() -> None:
    async def say_bye(framed: Framed[str]) -> None:
        await framed.send("bye")

    async with wsframed.serve(
        say_bye, "127.0.0.1", 0, codec=LinesCodec()
    ) as server, wsframed.connect(url_of(server), LinesCodec()) as framed:
        assert await asyncio.wait_for(framed.recv(), 5) == "bye"
        with pytest.raises(EndOfStream):
            await asyncio.wait_for(framed.recv(), 5)
        assert framed.stream.close_code == 1000


async def test_handler_raising_closes_with_1011_logs_and_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fragile(framed: Framed[str]) -> None:
        async for line in framed:
            if line == "boom":
                raise RuntimeError("the handler broke")
            await framed.send(line)

    caplog.set_level(logging.ERROR, logger="wsframed.server")
    async with wsframed.serve(fragile, "127.0.0.1", 0, codec=LinesCodec()) as server:
        async with wsframed.connect(url_of(server), LinesCodec()) as first:
            await first.send("boom")
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(first.recv(), 5)
            assert closed.value.code == 1011
        # The server goes on serving other connections.
        async with wsframed.connect(url_of(server), LinesCodec()) as second:
            await second.send("fine")
            assert await asyncio.wait_for(second.recv(), 5) == "fine"
    failures = [r for r in caplog.records if r.name == "wsframed.server" and r.exc_info]
    assert len(failures) == 1
    exc_info = failures[0].exc_info
    assert exc_info is not None
    assert isinstance(exc_info[1], RuntimeError)
    assert str(exc_info[1]) == "the handler broke"


async def test_failing_handler_closes_fast_while_the_client_floods() -> None:
    """Closing with 1011 does not wait for close_timeout behind unread messages."""

    async def fail_later(framed: Framed[bytes]) -> None:
        await framed.recv()
        await asyncio.sleep(0.3)  # meanwhile the flood fills websockets' queue
        raise RuntimeError("no thanks")

    async with wsframed.serve(
        fail_later, "127.0.0.1", 0, codec=LinesCodec(encoding=None), close_timeout=10
    ) as server, ws_connect(url_of(server), compression=None) as ws:
        started = time.monotonic()

        async def flood() -> None:
            with contextlib.suppress(Exception):
                for _ in range(2000):
                    await ws.send(b"x" * 1000 + b"\n")

        flooding = asyncio.create_task(flood())
        await asyncio.wait_for(ws.wait_closed(), 5)
        await flooding
        assert ws.close_code == 1011
        assert time.monotonic() - started < 5


async def test_origins_pass_through() -> None:
    async with wsframed.serve(
        echo, "127.0.0.1", 0, codec=LinesCodec(), origins=["https://good.example"]
    ) as server:
        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(url_of(server), origin="https://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        async with wsframed.connect(
            url_of(server), LinesCodec(), origin="https://good.example"
        ) as framed:
            await framed.send("allowed")
            assert await asyncio.wait_for(framed.recv(), 5) == "allowed"


async def test_subprotocols_pass_through() -> None:
    seen: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    async def report(framed: Framed[str]) -> None:
        seen.set_result(framed.get_extra_info("subprotocol"))
        await echo(framed)

    async with wsframed.serve(
        report, "127.0.0.1", 0, codec=LinesCodec(), subprotocols=["kv.v2", "kv.v1"]
    ) as server, wsframed.connect(
        url_of(server), LinesCodec(), subprotocols=["kv.v1"]
    ) as framed:
        assert framed.get_extra_info("subprotocol") == "kv.v1"
        assert await asyncio.wait_for(seen, 5) == "kv.v1"


async def test_compression_is_off_unless_asked() -> None:
    def extensions(framed: Framed[Any]) -> list[str]:
        connection = framed.get_extra_info("connection")
        return [extension.name for extension in connection.protocol.extensions]

    async with wsframed.serve(
        echo, "127.0.0.1", 0, codec=LinesCodec()
    ) as server, wsframed.connect(url_of(server), LinesCodec()) as framed:
        assert extensions(framed) == []
    async with wsframed.serve(
        echo, "127.0.0.1", 0, codec=LinesCodec(), compression="deflate"
    ) as server, wsframed.connect(
        url_of(server), LinesCodec(), compression="deflate"
    ) as framed:
        assert extensions(framed) == ["permessage-deflate"]
        await framed.send("compressed")
        assert await asyncio.wait_for(framed.recv(), 5) == "compressed"


async def test_connect_failure_raises_oserror() -> None:
    server = await wsframed.serve(echo, "127.0.0.1", 0, codec=LinesCodec())
    url = url_of(server)
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await wsframed.connect(url, LinesCodec(), open_timeout=5)


async def test_connect_with_bad_stream_options_closes_the_connection_it_opened() -> None:
    ended: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(framed: Framed[Any]) -> None:
        with contextlib.suppress(EndOfStream, ConnectionClosed):
            await framed.recv()
        ended.set_result(framed.stream.close_code)

    async with wsframed.serve(handler, "127.0.0.1", 0, codec=LinesCodec()) as server:
        with pytest.raises(ValueError, match="text must be one of"):
            await wsframed.connect(url_of(server), LinesCodec(), text="bogus")  # type: ignore[arg-type]
        assert await asyncio.wait_for(ended, 5) == 1000  # closed, not left open

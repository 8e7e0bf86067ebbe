"""Codec negotiation under trio: ``negotiate=`` on wsframed.trio's connect() and serve().

The same behaviours as tests/test_negotiation.py on asyncio, on real websockets.trio
servers and clients on 127.0.0.1, and across the families: a trio client against an
asyncio server and an asyncio client against a trio server (the other loop in a thread).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
from websockets.exceptions import InvalidStatus
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import serve as ws_serve

import wsframed
import wsframed.trio
from wsframed import Framed
from wsframed.codecs import CborCodec, JsonLinesCodec, LinesCodec, MsgpackCodec
from wsframed.negotiation import CodecMismatch, subprotocol_of

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


async def report(framed: Framed[Any]) -> None:
    """Tell the client which codec and subprotocol this connection got."""
    await framed.send({"codec": type(framed.codec).__name__, "subprotocol": framed.subprotocol})


def serving(
    codec: Any, test: Callable[[str], Awaitable[None]], handler: Any = report, **options: Any
) -> None:
    """trio.run a wsframed.trio server and ``test(url)`` against it; stop the server."""

    async def main() -> None:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                start = functools.partial(
                    wsframed.trio.serve, handler, "127.0.0.1", 0, codec, **options
                )
                server = await nursery.start(start)
                port = server.listeners[0].socket.getsockname()[1]
                await test(f"ws://127.0.0.1:{port}/")
                nursery.cancel_scope.cancel()

    trio.run(main)


def warnings(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "wsframed.server"]


def test_the_server_picks_the_codec_the_client_offers() -> None:
    async def test(url: str) -> None:
        for codec in (JsonLinesCodec(), MsgpackCodec()):
            async with wsframed.trio.connect(url, codec, negotiate=True) as framed:
                name = subprotocol_of(codec)
                assert framed.subprotocol == name
                assert framed.codec is codec
                with trio.fail_after(WAIT):
                    assert await framed.recv() == {
                        "codec": type(codec).__name__,
                        "subprotocol": name,
                    }

    serving([MsgpackCodec(), JsonLinesCodec()], test)


def test_the_clients_order_of_preference_wins() -> None:
    async def test(url: str) -> None:
        offer: Any = ["wsframed.cbor", "wsframed.jsonl", "wsframed.msgpack"]
        async with ws_connect(url, subprotocols=offer) as ws:
            assert ws.subprotocol == "wsframed.jsonl"
            with trio.fail_after(WAIT):
                assert await ws.recv() == (
                    b'{"codec":"JsonLinesCodec","subprotocol":"wsframed.jsonl"}\n'
                )

    serving([MsgpackCodec(), JsonLinesCodec()], test)


def test_a_mismatch_fails_the_handshake_on_both_sides(caplog: pytest.LogCaptureFixture) -> None:
    called: list[Framed[Any]] = []
    raised: list[CodecMismatch] = []
    urls: list[str] = []

    async def handler(framed: Framed[Any]) -> None:
        called.append(framed)

    async def test(url: str) -> None:
        urls.append(url)
        with pytest.raises(CodecMismatch) as mismatch, trio.fail_after(WAIT):
            async with wsframed.trio.connect(url, LinesCodec(), negotiate=True):
                pass
        raised.append(mismatch.value)

    caplog.set_level(logging.INFO, "wsframed.server")
    serving(MsgpackCodec(), test, handler, negotiate=True)
    [error], [url] = raised, urls
    assert str(error) == (
        f"the server at {url} speaks wsframed.msgpack; this client offered wsframed.lines"
    )
    assert (error.offered, error.available) == (("wsframed.lines",), ("wsframed.msgpack",))
    assert isinstance(error.__cause__, InvalidStatus)
    assert called == []
    [(level, message)] = warnings(caplog)
    assert level == "WARNING"
    assert message.startswith("refused a client at ('127.0.0.1', ")
    assert message.endswith(
        "): codec mismatch: the client offered wsframed.lines; this server speaks wsframed.msgpack"
    )


def test_the_refusal_answers_400_with_the_servers_codecs() -> None:
    async def test(url: str) -> None:
        with pytest.raises(InvalidStatus) as raised, trio.fail_after(WAIT):
            async with ws_connect(url, subprotocols=["wsframed.lines"]):  # type: ignore[list-item]
                pass
        response = raised.value.response
        assert response.status_code == 400
        assert response.headers["Wsframed-Codecs"] == "wsframed.msgpack, wsframed.cbor"
        assert response.body == (
            b"codec mismatch: the client offered wsframed.lines; "
            b"this server speaks wsframed.msgpack, wsframed.cbor\n"
        )

    serving([MsgpackCodec(), CborCodec()], test)


def test_a_client_that_does_not_negotiate_gets_the_first_codec() -> None:
    async def test(url: str) -> None:
        async with wsframed.trio.connect(url, JsonLinesCodec()) as framed:
            assert framed.subprotocol is None
            with trio.fail_after(WAIT):
                assert await framed.recv() == {"codec": "JsonLinesCodec", "subprotocol": None}
        # Other subprotocols than wsframed's: a plain peer too.
        async with ws_connect(url, subprotocols=["chat"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol is None
            with trio.fail_after(WAIT):
                assert await ws.recv() == b'{"codec":"JsonLinesCodec","subprotocol":null}\n'

    serving([JsonLinesCodec(), MsgpackCodec()], test)


def test_a_negotiating_client_works_with_a_plain_server() -> None:
    async def plain(connection: Any) -> None:
        await connection.send(b"hello\n")

    async def main() -> None:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    functools.partial(ws_serve, plain, 0, host="127.0.0.1")
                )
                port = server.listeners[0].socket.getsockname()[1]
                uri = f"ws://127.0.0.1:{port}/"
                async with wsframed.trio.connect(uri, LinesCodec(), negotiate=True) as framed:
                    assert framed.subprotocol is None
                    assert await framed.recv() == "hello"
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_server_selecting_another_codec_is_a_mismatch() -> None:
    def select(connection: Any, offered: Any) -> str:
        return "wsframed.cbor"

    async def plain(connection: Any) -> None:
        await connection.wait_closed()

    async def main() -> None:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                start = functools.partial(
                    ws_serve, plain, 0, host="127.0.0.1", select_subprotocol=select
                )
                server = await nursery.start(start)
                port = server.listeners[0].socket.getsockname()[1]
                uri = f"ws://127.0.0.1:{port}/"
                with pytest.raises(CodecMismatch) as raised:
                    async with wsframed.trio.connect(uri, LinesCodec(), negotiate=True):
                        pass
                assert str(raised.value) == (
                    f"the server at {uri} refused or changed the codec (unsupported "
                    "subprotocol: wsframed.cbor); this client offered wsframed.lines"
                )
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_the_reconnecting_loop_raises_a_mismatch_at_once() -> None:
    async def test(url: str) -> None:
        async def first_connection() -> None:
            async with wsframed.trio.reconnecting(url, CborCodec(), negotiate=True) as conns:
                async for _framed in conns:
                    pytest.fail("connected despite the mismatch")

        with pytest.raises(CodecMismatch) as raised, trio.fail_after(WAIT):
            await first_connection()
        assert str(raised.value) == (
            f"the server at {url} speaks wsframed.msgpack; this client offered wsframed.cbor"
        )

    serving([MsgpackCodec()], test)


def test_the_reconnecting_loop_negotiates() -> None:
    async def test(url: str) -> None:
        async with wsframed.trio.reconnecting(url, MsgpackCodec(), negotiate=True) as conns:
            async for framed in conns:
                assert framed.subprotocol == "wsframed.msgpack"
                with trio.fail_after(WAIT):
                    assert await framed.recv() == {
                        "codec": "MsgpackCodec",
                        "subprotocol": "wsframed.msgpack",
                    }
                break

    serving([JsonLinesCodec(), MsgpackCodec()], test)


def test_the_callers_mistakes_are_refused_at_the_call() -> None:
    with pytest.raises(TypeError, match="drop subprotocols="):
        wsframed.trio.connect("ws://x/", MsgpackCodec(), negotiate=True, subprotocols=["x"])

    class Unnamed(LinesCodec[str]):
        pass

    with pytest.raises(TypeError, match="subprotocol"):
        wsframed.trio.connect("ws://x/", Unnamed(), negotiate=True)

    async def main() -> None:
        serve = functools.partial(wsframed.trio.serve, report, "127.0.0.1", 0)
        with pytest.raises(TypeError, match="drop subprotocols="):
            await serve([MsgpackCodec()], subprotocols=["x"])
        with pytest.raises(TypeError, match="drop select_subprotocol="):
            await serve(MsgpackCodec(), negotiate=True, select_subprotocol=id)
        with pytest.raises(ValueError, match="empty list of codecs"):
            await serve([])
        with pytest.raises(ValueError, match=r"two codecs named 'wsframed\.lines'"):
            await serve([LinesCodec(), LinesCodec(max_frame_size=5)])

    trio.run(main)


# Across the families: the other loop runs in a thread ---------------------------------


@contextmanager
def asyncio_server(codec: Any, **options: Any) -> Iterator[str]:
    """A wsframed.serve (asyncio) server in a thread; yields its URL."""
    ready: list[str] = []
    started = threading.Event()
    stop: list[Callable[[], None]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        stop.append(lambda: loop.call_soon_threadsafe(done.set))
        async with wsframed.serve(report, "127.0.0.1", 0, codec, **options) as server:
            ready.append(f"ws://127.0.0.1:{server.port}/")
            started.set()
            await done.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(WAIT), "the asyncio server did not start"
    try:
        yield ready[0]
    finally:
        stop[0]()
        thread.join(WAIT)
        assert not thread.is_alive()


@contextmanager
def trio_server(codec: Any, **options: Any) -> Iterator[str]:
    """A wsframed.trio.serve server in a thread (its own trio.run); yields its URL."""
    ready: list[str] = []
    started = threading.Event()
    tokens: list[Any] = []
    scopes: list[trio.CancelScope] = []

    async def main() -> None:
        tokens.append(trio.lowlevel.current_trio_token())
        async with trio.open_nursery() as nursery:
            scopes.append(nursery.cancel_scope)
            start = functools.partial(
                wsframed.trio.serve, report, "127.0.0.1", 0, codec, **options
            )
            server = await nursery.start(start)
            ready.append(f"ws://127.0.0.1:{server.listeners[0].socket.getsockname()[1]}/")
            started.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert started.wait(WAIT), "the trio server did not start"
    try:
        yield ready[0]
    finally:
        trio.from_thread.run_sync(scopes[0].cancel, trio_token=tokens[0])
        thread.join(WAIT)
        assert not thread.is_alive()


def test_a_trio_client_negotiates_with_an_asyncio_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "wsframed.server")

    async def main(url: str) -> None:
        with trio.fail_after(WAIT):
            async with wsframed.trio.connect(url, JsonLinesCodec(), negotiate=True) as framed:
                assert framed.subprotocol == "wsframed.jsonl"
                assert await framed.recv() == {
                    "codec": "JsonLinesCodec",
                    "subprotocol": "wsframed.jsonl",
                }
            with pytest.raises(CodecMismatch) as raised:
                async with wsframed.trio.connect(url, CborCodec(), negotiate=True):
                    pass
        assert str(raised.value) == (
            f"the server at {url} speaks wsframed.msgpack, wsframed.jsonl; "
            "this client offered wsframed.cbor"
        )

    with asyncio_server([MsgpackCodec(), JsonLinesCodec()]) as url:
        trio.run(main, url)
    [(level, message)] = warnings(caplog)
    assert level == "WARNING"
    assert message.endswith(
        "): codec mismatch: the client offered wsframed.cbor; "
        "this server speaks wsframed.msgpack, wsframed.jsonl"
    )


def test_an_asyncio_client_negotiates_with_a_trio_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "wsframed.server")

    async def main(url: str) -> None:
        async with asyncio.timeout(WAIT):
            async with wsframed.connect(url, MsgpackCodec(), negotiate=True) as framed:
                assert framed.subprotocol == "wsframed.msgpack"
                assert await framed.recv() == {
                    "codec": "MsgpackCodec",
                    "subprotocol": "wsframed.msgpack",
                }
            async with wsframed.connect(url, JsonLinesCodec()) as framed:  # no offer
                assert framed.subprotocol is None
                assert await framed.recv() == {"codec": "JsonLinesCodec", "subprotocol": None}
            with pytest.raises(CodecMismatch) as raised:
                await wsframed.connect(url, LinesCodec(), negotiate=True)
        assert str(raised.value) == (
            f"the server at {url} speaks wsframed.jsonl, wsframed.msgpack; "
            "this client offered wsframed.lines"
        )
        assert (raised.value.offered, raised.value.available) == (
            ("wsframed.lines",),
            ("wsframed.jsonl", "wsframed.msgpack"),
        )

    with trio_server([JsonLinesCodec(), MsgpackCodec()]) as url:
        asyncio.run(main(url))
    [(level, message)] = warnings(caplog)
    assert level == "WARNING"
    assert message.endswith(
        "): codec mismatch: the client offered wsframed.lines; "
        "this server speaks wsframed.jsonl, wsframed.msgpack"
    )

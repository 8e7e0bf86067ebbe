"""What a serve() handler can learn from its Framed: the request, addresses, and how
the connection ended (close_code / close_reason). Real servers and clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

import wsframed
from wsframed import ConnectionClosed, EndOfStream, Framed, FramedServer, Request
from wsframed.codecs import LinesCodec

from .conftest import tcp_pair


def ending(framed: Framed[Any]) -> tuple[int | None, str | None]:
    return framed.close_code, framed.close_reason


def url_of(server: FramedServer, target: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{target}"


async def test_the_handler_sees_the_request() -> None:
    seen: asyncio.Future[tuple[Request | None, Any, Any]] = (
        asyncio.get_running_loop().create_future()
    )

    async def handler(framed: Framed[str]) -> None:
        seen.set_result((framed.request, framed.remote_address, framed.local_address))
        await framed.send("ok")

    async with (
        wsframed.serve(
            handler, "127.0.0.1", 0, LinesCodec(), subprotocols=["chat.v2", "chat.v1"]
        ) as server,
        wsframed.connect(
            url_of(server, "/chat/room%201?name=ann&x=1&x=2"),
            LinesCodec(),
            subprotocols=["chat.v1"],
            additional_headers=[("X-Token", "abc"), ("X-Tag", "a"), ("X-Tag", "b")],
        ) as framed,
    ):
        assert await asyncio.wait_for(framed.recv(), 5) == "ok"
        request, remote, local = await asyncio.wait_for(seen, 5)
        assert request is not None
        assert request.target == "/chat/room%201?name=ann&x=1&x=2"
        assert request.path == "/chat/room%201"
        assert request.query == "name=ann&x=1&x=2"
        assert request.headers["x-token"] == "abc"  # case-insensitive
        assert request.headers.get_all("X-Tag") == ["a", "b"]
        assert request.subprotocol == "chat.v1"
        # The server's view of the peer is the client's own address, and back.
        assert request.remote_address == framed.local_address
        assert remote == framed.local_address
        assert local == framed.remote_address
        assert framed.remote_address == ("127.0.0.1", server.port)
        assert framed.subprotocol == "chat.v1"
        # The client side has no request to report.
        assert framed.request is None


async def test_a_bare_path_has_an_empty_query_and_no_subprotocol() -> None:
    seen: asyncio.Future[Request | None] = asyncio.get_running_loop().create_future()

    async def handler(framed: Framed[str]) -> None:
        seen.set_result(framed.request)

    async with wsframed.serve(handler, "127.0.0.1", 0, LinesCodec()) as server:
        async with wsframed.connect(url_of(server).rstrip("/"), LinesCodec()) as framed:
            with contextlib.suppress(EndOfStream):
                await asyncio.wait_for(framed.recv(), 5)
            assert framed.subprotocol is None
        request = await asyncio.wait_for(seen, 5)
    assert request is not None
    assert (request.target, request.path, request.query) == ("/", "/", "")
    assert request.subprotocol is None


async def test_close_code_and_reason_of_an_application_close() -> None:
    async def goodbye(framed: Framed[str]) -> None:
        await framed.send("leaving")
        assert ending(framed) == (None, None)  # still open
        stream = framed.stream
        assert isinstance(stream, wsframed.WsStream)
        await stream.aclose(4001, "room closed")
        assert ending(framed) == (4001, "room closed")

    async with (
        wsframed.serve(goodbye, "127.0.0.1", 0, LinesCodec()) as server,
        wsframed.connect(url_of(server), LinesCodec()) as framed,
    ):
        assert await asyncio.wait_for(framed.recv(), 5) == "leaving"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(framed.recv(), 5)
        assert ending(framed) == (4001, "room closed")


async def test_close_code_of_a_clean_end() -> None:
    async def bye(framed: Framed[str]) -> None:
        await framed.send("bye")

    async with (
        wsframed.serve(bye, "127.0.0.1", 0, LinesCodec()) as server,
        wsframed.connect(url_of(server), LinesCodec()) as framed,
    ):
        assert ending(framed) == (None, None)
        assert await asyncio.wait_for(framed.recv(), 5) == "bye"
        with pytest.raises(EndOfStream):
            await asyncio.wait_for(framed.recv(), 5)
        assert ending(framed) == (1000, "")


async def test_over_tcp_there_is_no_request_nor_close_code() -> None:
    async with tcp_pair() as ((reader, writer), (_server_reader, s_writer)):
        framed = Framed.from_streams(reader, writer, LinesCodec())
        assert framed.request is None
        assert framed.close_code is None
        assert framed.close_reason is None
        assert framed.subprotocol is None
        assert framed.remote_address == s_writer.get_extra_info("sockname")
        assert framed.local_address == writer.get_extra_info("sockname")

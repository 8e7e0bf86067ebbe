"""One protocol function over every transport; Framed.from_streams; the integration examples."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from wsframed import EndOfStream, Framed, WsStream
from wsframed.codecs import MsgpackCodec

from .backend_pairs import aiohttp_server, uvicorn_port, uvicorn_server

pytestmark = pytest.mark.timeout(20)

# The protocol: written once against Framed, knowing nothing of the transport. --------
# (docs/integrations.md shows this section.)


# --8<-- [start:protocol]
async def serve_sums(framed: Framed[Any]) -> None:
    """Answer each ``[id, numbers]`` with ``[id, sum(numbers)]`` until the end of stream."""
    async with framed:
        async for request_id, numbers in framed:
            await framed.send([request_id, sum(numbers)])


async def ask_sums(framed: Framed[Any], batches: list[list[int]]) -> list[int]:
    """Send every request in one flush, collect the answers, then close."""
    for request_id, numbers in enumerate(batches):
        framed.feed([request_id, numbers])
    await framed.flush()
    answers: dict[int, int] = {}
    async for request_id, total in framed:
        answers[request_id] = total
        if len(answers) == len(batches):
            break
    await framed.aclose()
    return [answers[i] for i in range(len(batches))]
# --8<-- [end:protocol]


# Transports: each yields a client Framed, with serve_sums on the server side. ------

TRANSPORTS = ["tcp", "unix", "websockets", "aiohttp", "starlette"]


@asynccontextmanager
async def sums_client(transport: str) -> AsyncIterator[tuple[Framed[Any], asyncio.Event]]:
    """Yield (client Framed, an event set when the server side returned normally)."""
    codec = MsgpackCodec()
    served = asyncio.Event()

    async def server_side(framed: Framed[Any]) -> None:
        await serve_sums(framed)
        served.set()

    async def on_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server_side(Framed.from_streams(reader, writer, codec))

    async with AsyncExitStack() as stack:
        if transport == "tcp":
            server = await asyncio.start_server(on_stream, "127.0.0.1", 0)
            stack.push_async_callback(_close_server, server)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            yield Framed.from_streams(reader, writer, codec), served
        elif transport == "unix":
            directory = stack.enter_context(tempfile.TemporaryDirectory())
            path = os.path.join(directory, "sums.sock")
            server = await asyncio.start_unix_server(on_stream, path)
            stack.push_async_callback(_close_server, server)
            reader, writer = await asyncio.open_unix_connection(path)
            assert writer.get_extra_info("socket").family == socket.AF_UNIX
            yield Framed.from_streams(reader, writer, codec), served
        elif transport == "websockets":

            async def ws_handler(connection: ServerConnection) -> None:
                await server_side(Framed(WsStream(connection), codec))

            ws_server = await stack.enter_async_context(
                serve(ws_handler, "127.0.0.1", 0, compression=None)
            )
            port = next(iter(ws_server.sockets)).getsockname()[1]
            client = await connect(f"ws://127.0.0.1:{port}", compression=None)
            yield Framed(WsStream(client), codec), served
        elif transport == "aiohttp":

            async def handler(request: web.Request) -> web.WebSocketResponse:
                ws = web.WebSocketResponse()
                await ws.prepare(request)
                await server_side(Framed(WsStream(ws), codec))
                return ws

            port = await stack.enter_async_context(aiohttp_server(handler, "/sums"))
            session = await stack.enter_async_context(aiohttp.ClientSession())
            ws = await session.ws_connect(f"http://127.0.0.1:{port}/sums")
            yield Framed(WsStream(ws), codec), served  # aiohttp at both ends
        elif transport == "starlette":

            async def endpoint(websocket: WebSocket) -> None:
                await websocket.accept()
                await server_side(Framed(WsStream(websocket), codec))

            app = Starlette(routes=[WebSocketRoute("/sums", endpoint)])
            port = uvicorn_port(await stack.enter_async_context(uvicorn_server(app)))
            client = await connect(f"ws://127.0.0.1:{port}/sums", compression=None)
            yield Framed(WsStream(client), codec), served
        else:
            raise ValueError(transport)


async def _close_server(server: asyncio.Server) -> None:
    server.close()
    await asyncio.wait_for(server.wait_closed(), 5)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_one_protocol_function_over_every_transport(transport: str) -> None:
    batches = [list(range(n)) for n in range(300)]
    async with sums_client(transport) as (framed, served):
        answers = await asyncio.wait_for(ask_sums(framed, batches), 10)
        await asyncio.wait_for(served.wait(), 5)  # the server side ended cleanly too
    assert answers == [sum(batch) for batch in batches]


async def test_from_streams_over_a_unix_socket_both_directions() -> None:
    accepted: asyncio.Future[Framed[Any]] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(Framed.from_streams(reader, writer, MsgpackCodec()))

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "s")
        server = await asyncio.start_unix_server(on_connect, path)
        try:
            client = Framed.from_streams(*await asyncio.open_unix_connection(path), MsgpackCodec())
            peer = await asyncio.wait_for(accepted, 5)
            big = os.urandom(512 * 1024)  # more than the socket buffers: drain waits
            _, got = await asyncio.wait_for(
                asyncio.gather(client.send({"big": big}), peer.recv()), 5
            )
            assert got == {"big": big}
            await peer.send(["small"])
            assert await asyncio.wait_for(client.recv(), 5) == ["small"]
            await client.send_eof()  # a half-close: the peer can still answer
            with pytest.raises(EndOfStream):
                await asyncio.wait_for(peer.recv(), 5)
            await peer.send("after your EOF")
            assert await asyncio.wait_for(client.recv(), 5) == "after your EOF"
            await peer.aclose()
            with pytest.raises(EndOfStream):
                await asyncio.wait_for(client.recv(), 5)
            await client.aclose()
        finally:
            await _close_server(server)


# The examples shown in docs/integrations.md ---------------------------------------


async def test_example_aiohttp_server(capsys: pytest.CaptureFixture[str]) -> None:
    from examples import aiohttp_server

    replies = await asyncio.wait_for(aiohttp_server.main(), 10)
    assert replies == [{"echo": "hello"}, {"echo": {"n": 1}}, {"echo": b"\x00"}]
    assert "{'echo': 'hello'}" in capsys.readouterr().out


async def test_example_fastapi_app(capsys: pytest.CaptureFixture[str]) -> None:
    from examples import fastapi_app

    assert await asyncio.wait_for(fastapi_app.main(), 10) == ["HELLO", "FROM A BYTE STREAM"]
    assert "FROM A BYTE STREAM" in capsys.readouterr().out


async def test_example_anyio_tls(capsys: pytest.CaptureFixture[str]) -> None:
    from examples import anyio_tls

    answers = await asyncio.wait_for(anyio_tls.main(), 10)
    assert answers == [b"HELLO", b"TLS INSIDE A WEBSOCKET"]
    assert "TLS INSIDE A WEBSOCKET" in capsys.readouterr().out

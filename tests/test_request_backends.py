"""framed.request over aiohttp and Starlette (uvicorn): real servers on 127.0.0.1.

The same protocol code reads the request whichever framework accepted the connection:
path and query split as sent, every header value, the client's address.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from tests.backend_pairs import aiohttp_server, uvicorn_port, uvicorn_server
from wsframed import Framed, Request, WsStream
from wsframed.codecs import JsonLinesCodec
from wsframed.request import request_of

WAIT = 10.0
TARGET = "/room/a%20b?x=1&x=2&y="


def described(request: Request | None) -> dict[str, Any] | None:
    if request is None:
        return None
    return {
        "target": request.target,
        "path": request.path,
        "query": request.query,
        "tokens": request.headers.get_all("X-Token"),
        "remote": list(request.remote_address),
        "subprotocol": request.subprotocol,
    }


async def protocol(framed: Framed[Any]) -> None:
    """The protocol code under test: the same for both frameworks."""
    await framed.send(described(framed.request))
    await framed.recv()  # until the client closes


async def ask(port: int) -> tuple[dict[str, Any], str]:
    """Connect with two X-Token headers and a subprotocol; return what the server saw."""
    async with connect(
        f"ws://127.0.0.1:{port}{TARGET}",
        additional_headers=[("X-Token", "t1"), ("X-Token", "t2")],
        subprotocols=["chat"],  # type: ignore[list-item]
        compression=None,
    ) as ws:
        seen = JsonLinesCodec().decoder()
        seen.feed(await asyncio.wait_for(ws.recv(), WAIT))
        local = ws.local_address
        (answer,) = list(seen)
        await ws.send(b"null\n")
        return answer, f"{local[0]}:{local[1]}"


def expected(local: str, subprotocol: str | None) -> dict[str, Any]:
    host, port = local.split(":")
    return {
        "target": TARGET,
        "path": "/room/a%20b",
        "query": "x=1&x=2&y=",
        "tokens": ["t1", "t2"],
        "remote": [host, int(port)],
        "subprotocol": subprotocol,
    }


async def test_request_in_an_aiohttp_handler() -> None:
    after: list[Request | None] = []

    async def handler(http: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=["chat"])
        await ws.prepare(http)
        framed = Framed(WsStream(ws), JsonLinesCodec())
        with contextlib.suppress(Exception):  # the client may leave first
            await protocol(framed)
        await framed.aclose()
        after.append(framed.request)
        return ws

    async with aiohttp_server(handler, "/room/{name}") as port:
        answer, local = await asyncio.wait_for(ask(port), WAIT)
    assert answer == expected(local, "chat")
    assert described(after[0]) == expected(local, "chat")  # kept after the close


async def test_aiohttp_request_first_read_after_the_close() -> None:
    """aiohttp forgets the request at close: the stream kept it when it wrapped the response."""
    after: list[Request | None] = []

    async def handler(http: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=["chat"])
        await ws.prepare(http)
        framed = Framed(WsStream(ws), JsonLinesCodec())
        await framed.send(None)
        with contextlib.suppress(Exception):
            await framed.recv()
        await framed.aclose()
        after.append(framed.request)
        return ws

    async with aiohttp_server(handler, "/room/{name}") as port:
        answer, local = await asyncio.wait_for(ask(port), WAIT)
    assert answer is None
    assert described(after[0]) == expected(local, "chat")


async def test_request_in_a_starlette_endpoint() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="chat")
        framed = Framed(WsStream(websocket), JsonLinesCodec())
        with contextlib.suppress(Exception):
            await protocol(framed)
        await framed.aclose()

    app = Starlette(routes=[WebSocketRoute("/room/{name}", endpoint)])
    async with uvicorn_server(app) as server:
        answer, local = await asyncio.wait_for(ask(uvicorn_port(server)), WAIT)
    # Starlette does not record the subprotocol accept() chose.
    assert answer == expected(local, None)


def test_no_request_for_other_objects() -> None:
    assert request_of(object()) is None
    assert request_of(None) is None

"""serve({path: handler}): several endpoints on one port, real clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response

import wsframed
from wsframed import Framed, FramedServer
from wsframed.codecs import LinesCodec


async def chat(framed: Framed[str]) -> None:
    async for line in framed:
        await framed.send(f"chat: {line}")


async def feed(framed: Framed[str]) -> None:
    request = framed.request
    assert request is not None
    await framed.send(f"feed {request.query}")


def url_of(server: FramedServer, target: str) -> str:
    return f"ws://127.0.0.1:{server.port}{target}"


async def refused_status(url: str, **options: Any) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as refused:
        await asyncio.wait_for(ws_connect(url, **options), 5)
    response = refused.value.response
    return response.status_code, bytes(response.body)


async def test_each_path_reaches_its_handler() -> None:
    routes = {"/chat": chat, "/feed": feed}
    async with wsframed.serve(routes, "127.0.0.1", 0, LinesCodec()) as server:
        async with wsframed.connect(url_of(server, "/chat"), LinesCodec()) as framed:
            await framed.send("hi")
            assert await asyncio.wait_for(framed.recv(), 5) == "chat: hi"
        # The query string does not take part in the match.
        async with wsframed.connect(url_of(server, "/feed?since=3"), LinesCodec()) as framed:
            assert await asyncio.wait_for(framed.recv(), 5) == "feed since=3"


async def test_any_other_path_is_refused_with_404_in_the_handshake() -> None:
    called: list[str] = []

    async def never(framed: Framed[str]) -> None:
        called.append("never")

    async with wsframed.serve({"/chat": never}, "127.0.0.1", 0, LinesCodec()) as server:
        for target in ("/", "/chat/", "/CHAT", "/chat%2F", "/other?x=/chat"):
            assert await refused_status(url_of(server, target)) == (
                404,
                b"no WebSocket endpoint here\n",
            )
    assert called == []


async def test_the_users_process_request_runs_first() -> None:
    seen: list[str] = []

    def only_with_token(connection: ServerConnection, request: Request) -> Response | None:
        seen.append(request.path)
        if request.headers.get("X-Token") != "ok":
            return connection.respond(403, "token please\n")
        return None

    async with wsframed.serve(
        {"/chat": chat}, "127.0.0.1", 0, LinesCodec(), process_request=only_with_token
    ) as server:
        assert await refused_status(url_of(server, "/chat")) == (403, b"token please\n")
        assert await refused_status(url_of(server, "/nowhere")) == (403, b"token please\n")
        assert await refused_status(
            url_of(server, "/nowhere"), additional_headers={"X-Token": "ok"}
        ) == (404, b"no WebSocket endpoint here\n")
        async with wsframed.connect(
            url_of(server, "/chat"), LinesCodec(), additional_headers={"X-Token": "ok"}
        ) as framed:
            await framed.send("in")
            assert await asyncio.wait_for(framed.recv(), 5) == "chat: in"
    assert seen == ["/chat", "/nowhere", "/nowhere", "/chat"]


async def test_an_async_process_request_is_awaited() -> None:
    async def refuse_all(connection: ServerConnection, request: Request) -> Response | None:
        await asyncio.sleep(0)
        return connection.respond(401, "no\n")

    async with wsframed.serve(
        {"/chat": chat}, "127.0.0.1", 0, LinesCodec(), process_request=refuse_all
    ) as server:
        assert await refused_status(url_of(server, "/chat")) == (401, b"no\n")


@pytest.mark.parametrize(
    ("routes", "error", "message"),
    [
        ({}, ValueError, "serve() got an empty mapping of routes: give at least one path"),
        (
            {"chat": chat},
            ValueError,
            "serve() routes are paths such as '/chat' (no query string), not 'chat'",
        ),
        (
            {"/chat?x=1": chat},
            ValueError,
            "serve() routes are paths such as '/chat' (no query string), not '/chat?x=1'",
        ),
        (
            {"/chat": "chat"},
            TypeError,
            "serve() route '/chat' needs an async function taking a Framed, not a str",
        ),
    ],
)
async def test_bad_routes_are_refused_at_the_call(
    routes: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as refused:
        wsframed.serve(routes, "127.0.0.1", 0, LinesCodec())
    assert str(refused.value) == message

"""Real servers on 127.0.0.1 for the backend tests: aiohttp, Starlette under uvicorn.

:func:`backend_pair` yields ``(connection, peer)``: ``connection`` is the object under
test (what ``WsStream`` wraps) and ``peer`` is always a plain ``websockets``
connection at the other end, so every test drives the peer with the same API.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any

import aiohttp
import uvicorn
from aiohttp import web
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

BACKENDS = ["websockets", "aiohttp-server", "aiohttp-client", "starlette"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def aiohttp_server(handler: Handler, path: str = "/") -> AsyncIterator[int]:
    """Run an aiohttp application with one route on 127.0.0.1; yield its port."""
    app = web.Application()
    app.router.add_get(path, handler)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await asyncio.wait_for(runner.cleanup(), 10)


@asynccontextmanager
async def uvicorn_server(app: Any) -> AsyncIterator[uvicorn.Server]:
    """Run an ASGI application under uvicorn on 127.0.0.1 (port 0) in a task."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(5):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.005)
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def uvicorn_port(server: uvicorn.Server) -> int:
    """The port a started :func:`uvicorn_server` listens on."""
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port


@asynccontextmanager
async def backend_pair(
    kind: str,
    *,
    aiohttp_options: dict[str, Any] | None = None,
    subprotocols: list[str] | None = None,
) -> AsyncIterator[tuple[Any, Any]]:
    """Yield ``(connection of kind, websockets peer)`` connected over loopback.

    ``aiohttp_options`` go to ``WebSocketResponse`` / ``ws_connect``; ``subprotocols``
    are offered by the client and accepted by the server.
    """
    loop = asyncio.get_running_loop()
    got: asyncio.Future[Any] = loop.create_future()
    release = asyncio.Event()
    options = aiohttp_options or {}
    offered: dict[str, Any] = {"subprotocols": subprotocols} if subprotocols else {}

    async with AsyncExitStack() as stack:
        if kind in ("websockets", "aiohttp-client"):

            async def ws_handler(conn: ServerConnection) -> None:
                got.set_result(conn)
                await release.wait()

            server = await stack.enter_async_context(
                serve(ws_handler, "127.0.0.1", 0, compression=None, **offered)
            )
            url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/"
            if kind == "websockets":
                connection = await stack.enter_async_context(
                    connect(url, compression=None, **offered)
                )
            else:
                session = await stack.enter_async_context(aiohttp.ClientSession())
                connection = await session.ws_connect(
                    url, protocols=subprotocols or (), **options
                )
                stack.push_async_callback(_close_quietly, connection.close)
            peer = await asyncio.wait_for(got, 5)
            stack.callback(release.set)
            yield connection, peer
            return

        if kind == "aiohttp-server":

            async def handler(request: web.Request) -> web.StreamResponse:
                ws = web.WebSocketResponse(protocols=subprotocols or (), **options)
                await ws.prepare(request)
                got.set_result(ws)
                await release.wait()
                return ws

            port = await stack.enter_async_context(aiohttp_server(handler))
        elif kind == "starlette":

            async def endpoint(websocket: WebSocket) -> None:
                await websocket.accept(subprotocol=subprotocols[0] if subprotocols else None)
                got.set_result(websocket)
                await release.wait()

            app = Starlette(routes=[WebSocketRoute("/", endpoint)])
            port = uvicorn_port(await stack.enter_async_context(uvicorn_server(app)))
        else:
            raise ValueError(kind)
        peer = await stack.enter_async_context(
            connect(f"ws://127.0.0.1:{port}/", compression=None, **offered)
        )
        stack.callback(release.set)
        yield await asyncio.wait_for(got, 5), peer


async def _close_quietly(close: Callable[[], Awaitable[Any]]) -> None:
    with suppress(Exception):
        await asyncio.wait_for(close(), 5)


async def pings_answered_late(
    ping: Awaitable[float], peer: Any, delay: float, timeout: float = 5.0
) -> float:
    """Await ``ping`` while ``peer`` holds its pong back ``delay`` seconds after the ping.

    The peer stops reading; once the ping has reached its socket, it reads (and
    answers) again ``delay`` seconds later, so the round trip is at least ``delay``.
    """
    peer.transport.pause_reading()
    task = asyncio.ensure_future(ping)
    try:
        async with asyncio.timeout(timeout):
            while not bytes_waiting(peer):
                await asyncio.sleep(0.005)
            await asyncio.sleep(delay)
            peer.transport.resume_reading()
            return await task
    finally:
        task.cancel()


def bytes_waiting(connection: Any) -> bool:
    """Whether bytes wait unread in ``connection``'s socket (its reading may be paused).

    Peeks at a duplicate of the socket's descriptor, so nothing is consumed.
    """
    sock = connection.transport.get_extra_info("socket")
    peek = socket.socket(fileno=os.dup(sock.fileno()))
    try:
        peek.setblocking(False)
        try:
            return bool(peek.recv(1, socket.MSG_PEEK))
        except BlockingIOError:
            return False
    finally:
        peek.close()

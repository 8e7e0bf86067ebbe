"""Fixtures: real websockets servers and clients on 127.0.0.1, ephemeral ports.

``WSFRAMED_LOOP=uvloop`` runs every asyncio test on uvloop (``wsframed[uvloop]``): the
event loop policy is set here, before any test creates its loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

LOOP = os.environ.get("WSFRAMED_LOOP", "asyncio")
"""The event loop the suite runs on: ``asyncio`` (the default) or ``uvloop``."""
if LOOP == "uvloop":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
elif LOOP != "asyncio":
    raise RuntimeError(f"WSFRAMED_LOOP must be 'asyncio' or 'uvloop', not {LOOP!r}")


@asynccontextmanager
async def ws_pair(
    server_options: dict[str, Any] | None = None,
    client_options: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[ClientConnection, ServerConnection]]:
    """Yield a connected (client, server) pair of websockets connections on loopback.

    The server side's handler stays alive until the block exits; compression is off.
    """
    server_conn: asyncio.Future[ServerConnection] = asyncio.get_running_loop().create_future()
    release = asyncio.Event()

    async def handler(conn: ServerConnection) -> None:
        server_conn.set_result(conn)
        await release.wait()

    options = {"compression": None, **(server_options or {})}
    async with serve(handler, "127.0.0.1", 0, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        client = await connect(
            f"ws://127.0.0.1:{port}", **{"compression": None, **(client_options or {})}
        )
        try:
            yield client, await asyncio.wait_for(server_conn, 5)
        finally:
            release.set()
            await client.close()


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` on the event loop until it holds (bounded)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def gather_bounded(*aws: Awaitable[Any], timeout: float = 10.0) -> list[Any]:
    """asyncio.gather with a time bound."""
    async with asyncio.timeout(timeout):
        return list(await asyncio.gather(*aws))


StreamPair = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[StreamPair, StreamPair]]:
    """Yield connected asyncio stream pairs ((reader, writer) client, server) on loopback."""
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield client, await asyncio.wait_for(accepted, 5)
    finally:
        for _, writer in (client, accepted.result()):
            writer.close()
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def framed_pair(transport: str, codec: Any, peer_codec: Any = None) -> AsyncIterator[Any]:
    """Yield two connected Framed objects over "ws" (websockets on loopback), "tcp"
    (asyncio) or "memory" (wsframed.testing: no socket, for protocol-level tests)."""
    from wsframed import Framed, WsStream

    peer_codec = codec if peer_codec is None else peer_codec
    if transport == "memory":
        from wsframed.testing import framed_pair as memory_pair

        client_end, server_end = memory_pair(codec, peer_codec)
        try:
            yield client_end, server_end
        finally:
            await client_end.aclose()
            await server_end.aclose()
    elif transport == "ws":
        async with ws_pair() as (client, server):
            yield Framed(WsStream(client), codec), Framed(WsStream(server), peer_codec)
    else:
        async with tcp_pair() as (client, server):
            yield Framed.from_streams(*client, codec), Framed.from_streams(*server, peer_codec)


async def ticks_while(call: Callable[[], Awaitable[Any]]) -> tuple[int, BaseException | None]:
    """Run ``call`` beside a task that counts loop turns; the count and what it raised."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    try:
        await call()
    except Exception as exc:
        return ticks - before, exc
    finally:
        task.cancel()
    return ticks - before, None

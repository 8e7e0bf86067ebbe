"""picows connections on 127.0.0.1 for the backend tests (see backend_pairs.py).

``picows_pair(kind)`` yields ``(PicowsConnection, websockets peer)``: a picows client
of a websockets server (``"picows-client"``), or a picows server's connection with a
websockets client (``"picows-server"``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from wsframed.backends.picows import PicowsConnection, open_connection, start_server

PICOWS_BACKENDS = ["picows-client", "picows-server"]


@asynccontextmanager
async def picows_pair(
    kind: str, *, subprotocols: list[str] | None = None, **options: Any
) -> AsyncIterator[tuple[PicowsConnection, Any]]:
    """Yield ``(picows connection, websockets peer)`` connected over loopback.

    ``options`` go to ``open_connection()`` / ``start_server()``.
    """
    loop = asyncio.get_running_loop()
    got: asyncio.Future[Any] = loop.create_future()
    release = asyncio.Event()
    offered: dict[str, Any] = {"subprotocols": subprotocols} if subprotocols else {}
    async with AsyncExitStack() as stack:
        if kind == "picows-client":

            async def ws_handler(conn: ServerConnection) -> None:
                got.set_result(conn)
                await release.wait()

            server = await stack.enter_async_context(
                serve(ws_handler, "127.0.0.1", 0, compression=None, **offered)
            )
            port = next(iter(server.sockets)).getsockname()[1]
            connection = await open_connection(
                f"ws://127.0.0.1:{port}/", ping_interval=None, **offered, **options
            )
            stack.push_async_callback(_drop, connection)
            peer = await asyncio.wait_for(got, 5)
            stack.callback(release.set)
            yield connection, peer
            return
        if kind != "picows-server":
            raise ValueError(kind)

        async def handler(conn: PicowsConnection) -> None:
            got.set_result(conn)
            await release.wait()
            await _drop(conn)

        picows_server = await start_server(
            handler, "127.0.0.1", 0, ping_interval=None, **offered, **options
        )
        stack.push_async_callback(_stop, picows_server)
        port = picows_server.sockets[0].getsockname()[1]
        peer = await stack.enter_async_context(
            connect(f"ws://127.0.0.1:{port}/", compression=None, **offered)
        )
        stack.callback(release.set)
        yield await asyncio.wait_for(got, 5), peer


async def _drop(connection: PicowsConnection) -> None:
    connection.abort()
    await asyncio.wait_for(connection.wait_closed(), 5)


async def _stop(server: Any) -> None:
    server.close()
    await asyncio.wait_for(server.wait_closed(), 10)

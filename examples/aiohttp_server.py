"""msgpack frames over an aiohttp WebSocket route, on both the server and the client side.

    python examples/aiohttp_server.py   # serves on a free port, runs a client, prints

Needs ``pip install 'wsframed[aiohttp]'``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from wsframed import Framed, WsStream
from wsframed.codecs import MsgpackCodec


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    """Answer every msgpack item with {"echo": item} until the client closes."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async with Framed(WsStream(ws), MsgpackCodec()) as framed:
        async for item in framed:
            await framed.send({"echo": item})
    return ws


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ws", websocket_handler)
    return app


async def client(url: str, items: list[Any]) -> list[Any]:
    """Send each item and collect the replies, over aiohttp's client."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url) as ws,
        Framed(WsStream(ws), MsgpackCodec()) as framed,
    ):
        await framed.send_all(items)
        return [await framed.recv() for _ in items]


async def main() -> list[Any]:
    runner = web.AppRunner(make_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        replies = await client(f"http://127.0.0.1:{port}/ws", ["hello", {"n": 1}, b"\x00"])
    finally:
        await runner.cleanup()
    for reply in replies:
        print(reply)
    return replies


if __name__ == "__main__":
    asyncio.run(main())

"""One protocol, two transports: the same functions over TCP and over a WebSocket.

The protocol code takes a ``Framed`` and never learns what carries its frames. Here a
tiny key-value store speaks msgpack: requests ``["set", key, value]`` / ``["get", key]``
/ ``["keys"]``, one reply frame each.

    python examples/same_protocol_tcp_and_ws.py
"""

from __future__ import annotations

import asyncio
from typing import Any

import wsframed
from wsframed import Framed
from wsframed.codecs import MsgpackCodec

# The protocol: transport-agnostic ---------------------------------------------------


async def kv_server(framed: Framed[Any]) -> None:
    """Serve one client until it finishes sending."""
    store: dict[str, Any] = {}
    async for request in framed:
        match request:
            case ["set", str(key), value]:
                store[key] = value
                await framed.send(["ok"])
            case ["get", str(key)]:
                await framed.send(["value", store.get(key)])
            case ["keys"]:
                await framed.send(["keys", sorted(store)])
            case _:
                await framed.send(["error", f"bad request {request!r}"])


async def kv_client(framed: Framed[Any]) -> list[Any]:
    """Run a few requests and return the replies."""
    replies = []
    for request in (
        ["set", "lang", "python"],
        ["set", "answer", 42],
        ["get", "answer"],
        ["keys"],
        ["frobnicate"],
    ):
        await framed.send(request)
        reply = await framed.recv()
        print(f"   {request!r:28} -> {reply!r}")
        replies.append(reply)
    return replies


# Transport 1: asyncio TCP ---------------------------------------------------------------


async def over_tcp() -> list[Any]:
    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with Framed.from_streams(reader, writer, MsgpackCodec()) as framed:
            await kv_server(framed)

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        async with Framed.from_streams(reader, writer, MsgpackCodec()) as framed:
            return await kv_client(framed)


# Transport 2: WebSocket -------------------------------------------------------------------


async def over_websocket() -> list[Any]:
    async with wsframed.serve(kv_server, "127.0.0.1", 0, codec=MsgpackCodec()) as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with wsframed.connect(url, MsgpackCodec()) as framed:
            return await kv_client(framed)


async def main() -> None:
    print("over TCP (Framed.from_streams):")
    tcp = await over_tcp()
    print("over a WebSocket (wsframed.serve / wsframed.connect):")
    ws = await over_websocket()
    assert tcp == ws
    print("same protocol code, same replies on both transports")


if __name__ == "__main__":
    asyncio.run(main())

"""A FastAPI WebSocket endpoint speaking newline-delimited lines through wsframed.

    uvicorn examples.fastapi_app:app          # serve it
    python examples/fastapi_app.py            # serve on a free port, run a client, print

Needs ``pip install 'wsframed[starlette]' fastapi uvicorn``. The same code works with
plain Starlette: FastAPI's ``WebSocket`` is Starlette's.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from fastapi import FastAPI, WebSocket

import wsframed
from wsframed import Framed, WsStream
from wsframed.codecs import LinesCodec

app = FastAPI()


@app.websocket("/shout")
async def shout(websocket: WebSocket) -> None:
    """Answer every line with the same line in upper case."""
    await websocket.accept()
    async with Framed(WsStream(websocket), LinesCodec()) as framed:
        async for line in framed:
            await framed.send(line.upper())


async def main() -> list[str]:
    # A socket bound and listening before uvicorn starts: clients may connect at once.
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        # The client side is wsframed's own: websockets under the hood.
        async with wsframed.connect(f"ws://127.0.0.1:{port}/shout", LinesCodec()) as framed:
            replies = []
            for line in ["hello", "from a byte stream"]:
                await framed.send(line)
                replies.append(await framed.recv())
    finally:
        server.should_exit = True
        await serving
    for reply in replies:
        print(reply)
    return replies


if __name__ == "__main__":
    asyncio.run(main())

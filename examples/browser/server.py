"""Serve the browser example: the page on http://HOST:PORT/ and msgpack frames on /ws.

    python examples/browser/server.py [--host 127.0.0.1] [--port 8000]

then open http://127.0.0.1:8000/ in a browser. One port serves both: websockets'
``process_request`` hook answers plain HTTP GETs with the static files next to this
script, and WebSocket handshakes on ``/ws`` go on to the handler, which gets a
``Framed`` with :class:`~wsframed.codecs.MsgpackCodec`. It greets the page, then answers
every ``{"id": n, "text": s}`` with ``{"id": n, "upper": ..., "length": ..., "sha256":
<32 bytes>}``. A text message from the page is refused (``text="reject"``, the default):
the connection closes with 1003 and the handler ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

import wsframed
from wsframed import Framed, ProtocolError
from wsframed.codecs import MsgpackCodec

HERE = Path(__file__).resolve().parent
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/msgpack.js": ("msgpack.js", "text/javascript; charset=utf-8"),
}
WEBSOCKET_PATH = "/ws"


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    """Serve the static files; let WebSocket handshakes on /ws through (return None)."""
    path = request.path.split("?", 1)[0]
    if path == WEBSOCKET_PATH:
        return None
    if path not in STATIC:
        return connection.respond(404, "not found\n")
    name, content_type = STATIC[path]
    body = (HERE / name).read_bytes()
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(200, "OK", headers, body)


def answer(request: Any) -> dict[str, Any]:
    """The reply to one frame from the page."""
    if not isinstance(request, dict) or not isinstance(request.get("text"), str):
        return {"error": f"expected {{id, text}}, got {type(request).__name__}"}
    text: str = request["text"]
    return {
        "id": request.get("id"),
        "upper": text.upper(),
        "length": len(text),
        "sha256": hashlib.sha256(text.encode()).digest(),
    }


async def handler(framed: Framed[Any]) -> None:
    await framed.send({"hello": "wsframed", "codec": "msgpack"})
    try:
        async for request in framed:
            await framed.send(answer(request))
    except ProtocolError:
        pass  # a text message: the stream already closed the connection with 1003


def serve(host: str = "127.0.0.1", port: int = 8000, **options: Any) -> wsframed.serve[Any]:
    """The example server, not started yet: ``async with serve(...) as server``.

    ``options`` go to :func:`wsframed.serve` (``write_chunk_size``, ``origins``, ...).
    """
    return wsframed.serve(
        handler, host, port, codec=MsgpackCodec(), process_request=process_request, **options
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    async with serve(args.host, args.port) as server:
        print(f"open http://{args.host}:{server.port}/ (Ctrl-C to stop)", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())

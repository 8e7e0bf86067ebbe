"""TLS inside a WebSocket with anyio: the WebSocket carries only ciphertext.

    python examples/anyio_tls.py   # serves on a free port, runs a client, prints

Useful when the WebSocket passes through relays or proxies that must not read the
payload. Needs ``pip install 'wsframed[anyio]' trustme`` (trustme makes a throwaway
certificate authority for the demo; use real certificates in production).
"""

from __future__ import annotations

import ssl

import anyio
import trustme
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSStream
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from wsframed import WsStream
from wsframed.anyio import as_anyio_stream


def make_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Return (server, client) TLS contexts for "localhost" from a throwaway CA."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


async def main() -> list[bytes]:
    server_context, client_context = make_contexts()

    async def handler(connection: ServerConnection) -> None:
        stream = as_anyio_stream(WsStream(connection))
        tls = await TLSStream.wrap(stream, server_side=True, ssl_context=server_context)
        lines = BufferedByteReceiveStream(tls)
        try:
            while True:
                line = await lines.receive_until(b"\n", 1024)
                await tls.send(line.upper() + b"\n")
        except anyio.IncompleteRead:  # the client closed TLS, then the WebSocket
            await tls.aclose()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as connection:
            stream = as_anyio_stream(WsStream(connection))
            tls = await TLSStream.wrap(stream, hostname="localhost", ssl_context=client_context)
            replies = BufferedByteReceiveStream(tls)
            answers = []
            for line in (b"hello", b"tls inside a websocket"):
                await tls.send(line + b"\n")
                answers.append(await replies.receive_until(b"\n", 1024))
            await tls.aclose()
    for answer in answers:
        print(answer.decode())
    return answers


if __name__ == "__main__":
    anyio.run(main)

"""The close handshake raced against a timeout.

Closing a WebSocket sends a close frame and waits for the peer's reply (RFC 6455
section 7). A peer that is hung, or hostile, may never reply: ``aclose(timeout=...)``
then drops the TCP connection when the time is up, so closing is always bounded.

    python examples/close_with_timeout.py
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from websockets.utils import accept_key

import wsframed
from wsframed.codecs import LinesCodec


async def silent_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept the WebSocket handshake, then never answer anything (not even a close)."""
    request = await reader.readuntil(b"\r\n\r\n")
    match = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", request)
    assert match is not None, "not a WebSocket handshake"
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(match.group(1).decode()).encode() + b"\r\n\r\n"
    )
    await writer.drain()
    await reader.read()  # swallow every frame until the client drops the connection
    writer.close()


async def echo(framed: wsframed.Framed[Any]) -> None:
    async for line in framed:
        await framed.send(line)


async def timed_close(framed: wsframed.Framed[Any], timeout: float) -> None:
    stream = framed.stream
    started = time.monotonic()
    await stream.aclose(timeout=timeout)
    elapsed = time.monotonic() - started
    print(f"   aclose(timeout={timeout}) returned after {elapsed:.2f} s, "
          f"close_code={stream.close_code}")


async def main() -> None:
    print("1. A polite peer answers the close frame at once:")
    async with wsframed.serve(echo, "127.0.0.1", 0, codec=LinesCodec()) as server:
        framed = await wsframed.connect(f"ws://127.0.0.1:{server.port}", LinesCodec())
        await framed.send("hello")
        print(f"   echoed {await framed.recv()!r}")
        await timed_close(framed, timeout=2.0)

    tcp_server = await asyncio.start_server(silent_peer, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{tcp_server.sockets[0].getsockname()[1]}"
    async with tcp_server:
        print("2. A silent peer never answers: the connection is dropped at the timeout")
        framed = await wsframed.connect(url, LinesCodec())
        await framed.send("hello?")
        await timed_close(framed, timeout=0.5)
        print("   (1006: no close frame came back; the TCP connection was aborted)")

        print("3. The same bound for `async with`: connect(..., close_timeout=0.3)")
        started = time.monotonic()
        async with wsframed.connect(url, LinesCodec(), close_timeout=0.3) as framed:
            await framed.send("anyone there?")
        print(f"   leaving the block took {time.monotonic() - started:.2f} s, "
              f"close_code={framed.stream.close_code}")


if __name__ == "__main__":
    asyncio.run(main())

"""Two websockets.trio ends that both send and read bulk bytes at once.

websockets.trio's reader writes what is queued (its pongs, a send()'s frame) under the
send lock after each read, so an end whose send() waits for the peer stopped reading
too, and two such ends waited on each other for ever (wsframed/backends/
websockets_trio.py, ``_reader_never_writes()``). These run both ends on websockets.trio
over loopback with more than the socket buffers in flight each way.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from typing import Any

import pytest
import trio
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import ServerConnection
from websockets.trio.server import serve as ws_serve

from wsframed import ConnectionClosed, WsStream
from wsframed.backends.websockets import _PONG_BACKLOG_LIMIT

pytestmark = pytest.mark.timeout(180)

MiB = 1024 * 1024
SIZE = 32 * MiB
CHUNK = 256 * 1024


async def _send_and_read(stream: WsStream, data: bytes) -> bytes:
    """Write ``data`` and read as many bytes at once; return the bytes read."""
    received = bytearray()

    async def writer() -> None:
        for offset in range(0, len(data), CHUNK):
            stream.write(data[offset : offset + CHUNK])
            await stream.drain()

    async def reader() -> None:
        while len(received) < len(data):
            received.extend(await stream.read(CHUNK))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        nursery.start_soon(reader)
    return bytes(received)


def _port(server: Any) -> int:
    port: int = server.listeners[0].socket.getsockname()[1]
    return port


def test_two_trio_streams_send_and_read_32_mib_each_way_at_once() -> None:
    client_data = os.urandom(SIZE)
    server_data = os.urandom(SIZE)
    seen: dict[str, Any] = {}

    async def handler(connection: ServerConnection) -> None:
        stream = WsStream(connection)
        seen["server got"] = hashlib.sha256(await _send_and_read(stream, server_data)).digest()
        assert await stream.read() == b""  # the client's close: the end of the stream
        await stream.wait_closed()
        seen["server close"] = stream.close_code

    async def main() -> None:
        # Without the fix both ends stopped within the first MiB and waited for ever.
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    lambda task_status: ws_serve(
                        handler, 0, host="127.0.0.1", task_status=task_status
                    )
                )
                async with ws_connect(f"ws://127.0.0.1:{_port(server)}") as connection:
                    stream = WsStream(connection)
                    got = await _send_and_read(stream, client_data)
                    seen["client got"] = hashlib.sha256(got).digest()
                    await stream.aclose()
                    seen["client close"] = stream.close_code
                while "server close" not in seen:
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()

    trio.run(main)
    assert seen == {
        "client got": hashlib.sha256(server_data).digest(),
        "server got": hashlib.sha256(client_data).digest(),
        "client close": 1000,
        "server close": 1000,
    }


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    # FIN, the opcode, the mask bit with a zero key (the payload is sent as is).
    assert len(payload) < 126
    return struct.pack("!BB4s", 0x80 | opcode, 0x80 | len(payload), b"\0\0\0\0") + payload


async def _raw_client(port: int) -> trio.SocketStream:
    """A WebSocket client that stops after the opening handshake: frames are ours to write."""
    sock = await trio.open_tcp_stream("127.0.0.1", port)
    await sock.send_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = await sock.receive_some(1)
        assert chunk, response
        response += chunk
    assert response.startswith(b"HTTP/1.1 101 "), response
    return sock


def test_a_ping_flood_from_a_peer_that_never_reads_is_dropped_at_the_backlog_limit() -> None:
    """The reader no longer waits for its pongs to be written, so a peer that pings and
    does not read is not held back: the pongs queued past the limit drop it (1006), as
    the asyncio backend does, instead of growing the queue without bound."""
    pings = 100_000  # 13 MB of pings: 12.7 MB of pongs, more than loopback's buffers
    seen: dict[str, Any] = {}

    async def handler(connection: ServerConnection) -> None:
        stream = WsStream(connection)
        try:
            await stream.read()
        except ConnectionClosed as exc:
            seen["error"] = (type(exc).__name__, exc.code)
        await stream.wait_closed()
        seen["close"] = stream.close_code
        seen["cause"] = str(connection.connection_exc)

    async def main() -> None:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    lambda task_status: ws_serve(
                        handler, 0, host="127.0.0.1", task_status=task_status, ping_interval=None
                    )
                )
                sock = await _raw_client(_port(server))
                flood = _masked_frame(0x9, b"p" * 125) * 1000
                with trio.move_on_after(30):  # a dropped connection refuses the rest
                    try:
                        for _ in range(pings // 1000):
                            await sock.send_all(flood)
                    except trio.BrokenResourceError:
                        pass
                while "close" not in seen:
                    await trio.sleep(0.01)
                await sock.aclose()
                nursery.cancel_scope.cancel()

    trio.run(main)
    cause = seen.pop("cause")
    assert seen == {"error": ("ConnectionClosed", 1006), "close": 1006}
    match = re.fullmatch(
        rf"the peer does not read: (\d+) bytes of replies to its control frames queued, "
        rf"limit {_PONG_BACKLOG_LIMIT}",
        cause,
    )
    assert match, cause
    # Dropped at the read that passed the limit: one read (64 KiB) holds at most 500 of
    # these 131-byte pings, each a 127-byte pong counted with 48 bytes of overhead.
    assert _PONG_BACKLOG_LIMIT < int(match[1]) <= _PONG_BACKLOG_LIMIT + 500 * (127 + 48)

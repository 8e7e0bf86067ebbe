"""What the dependency floors in pyproject.toml buy, checked on the installed versions.

.ci/lowest-deps runs the suite with every floor installed, so these hold on the oldest
versions pyproject allows as well as on the newest.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

import wsframed
from wsframed import Framed
from wsframed.codecs import BytesCodec

from .peers import OP_BINARY, OP_CLOSE, OP_CONT, RawWsClient, frame, traced

pytestmark = pytest.mark.timeout(60)

KiB = 1024
MiB = 1024 * KiB


async def close_frame(peer: RawWsClient, timeout: float = 20.0) -> tuple[int, str]:
    """Skip the server's frames until its close frame: (code, reason)."""
    async with asyncio.timeout(timeout):
        while True:
            opcode, payload = await peer.read_frame()
            if opcode == OP_CLOSE:
                return struct.unpack(">H", payload[:2])[0], payload[2:].decode()


async def test_a_flood_of_empty_continuation_frames_is_refused_with_1009() -> None:
    """websockets >= 17.4 caps the fragments of one message (4,096): the peer gets 1009.

    Before 17.4 nothing counted empty fragments, and a serve() process grew by hundreds
    of MiB in seconds (issue 14, item 6). The flood: 20,000 empty frames, five times the cap.
    """
    received: list[bytes] = []

    async def handler(framed: Framed[Any]) -> None:
        async for item in framed:
            received.append(item)

    # close_timeout: after refusing the message websockets waits that long (default 10 s)
    # before the handler sees the close, even once the peer has answered it.
    serving = wsframed.serve(handler, "127.0.0.1", 0, codec=BytesCodec(), close_timeout=1)
    async with serving as server:
        peer = await RawWsClient.connect(server.port)
        with traced() as peak:
            peer.send(OP_BINARY, b"", fin=False)
            empty = frame(OP_CONT, b"", fin=False)
            for _ in range(20):
                peer.write(empty * 1000)
                try:
                    await peer.writer.drain()
                except ConnectionError:
                    break  # the server has already closed and reset
            assert await close_frame(peer) == (1009, "too many fragments")
        peer.send(OP_CLOSE, struct.pack(">H", 1009))  # complete the closing handshake
        peer.close()
        assert received == []
        assert peak.bytes < 8 * MiB, peak.bytes  # measured: 2.1 MiB (tracemalloc, both ends)


async def test_a_message_in_4000_fragments_still_arrives_whole() -> None:
    """The fragment cap does not refuse a legitimately fragmented message."""
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handler(framed: Framed[Any]) -> None:
        received.set_result(await framed.recv())

    async with wsframed.serve(handler, "127.0.0.1", 0, codec=BytesCodec()) as server:
        peer = await RawWsClient.connect(server.port)
        peer.send(OP_BINARY, b"a", fin=False)
        peer.write(b"".join(frame(OP_CONT, b"b", fin=False) for _ in range(3998)))
        peer.send(OP_CONT, b"c")
        await peer.writer.drain()
        assert await asyncio.wait_for(received, 20) == b"a" + b"b" * 3998 + b"c"
        peer.close()

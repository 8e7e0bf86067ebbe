"""WsStream's reading, writing and closing paths that mutants of wsframed/stream.py and
wsframed/stream_core.py showed unchecked (tools/mutation.py; docs/contributing.md,
Testing). Real websockets connections on 127.0.0.1, the public API only.
"""

from __future__ import annotations

import asyncio

import pytest

from wsframed import WsStream

from .conftest import ticks_while, ws_pair

pytestmark = pytest.mark.timeout(30)


async def test_read_to_the_end_empties_the_buffer() -> None:
    """``read()`` (n < 0) returns every byte once: the next read is the end, b""."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"one ")
        await server.send(b"two")
        await server.close()
        assert await asyncio.wait_for(stream.read(), 5) == b"one two"
        assert stream.at_eof() is True
        assert await asyncio.wait_for(stream.read(), 5) == b""
        assert await asyncio.wait_for(stream.read(5), 5) == b""


async def test_reading_at_the_end_gives_the_loop_a_turn_every_call() -> None:
    """A loop calling ``read()`` or ``read(n)`` at the end of stream gets b"" each time
    and must not spin: each call lets other tasks run (not only every few calls)."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.close()
        assert await asyncio.wait_for(stream.read(), 5) == b""
        for call in [stream.read, lambda: stream.read(3)] * 20:
            ticks, error = await ticks_while(call)
            assert (ticks > 0, error) == (True, None)


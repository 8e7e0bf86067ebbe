"""``send_nowait``: a message sent with no coroutine at all while the transport takes more.

The websockets backend offers it as picows' does (``WsStream._send_whole_nowait``,
``Framed.send``, RpcPeer's lone requests). What the peer sees around it (order after
fed frames, a stalled peer blocking the next send, a cancelled send) is pinned in
tests/test_framed.py for both backends; here, that the path is in use at all.
"""

from __future__ import annotations

import asyncio

import pytest

from wsframed import Framed, WsStream
from wsframed.codecs import LengthPrefixedCodec

from .conftest import ws_pair

pytestmark = pytest.mark.timeout(60)


async def test_the_websockets_backend_sends_without_waiting_with_this_release() -> None:
    """A websockets release that changes the internals it uses falls back silently
    (to the awaited send); this test is what notices."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        assert stream._send_nowait is not None
        assert "_direct_send" in stream._send_nowait.__qualname__
        framed = Framed(stream, LengthPrefixedCodec())
        assert framed._sends_nowait
        assert framed._send_nowait(LengthPrefixedCodec().encode(b"now"))
        assert await asyncio.wait_for(server.recv(), 5) == b"\x00\x00\x00\x03now"


async def test_a_send_without_waiting_leaves_after_bytes_written_before_it() -> None:
    """Bytes written and not drained: the frame does not jump them (it goes the
    awaited way, after them, in one message)."""
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        framed = Framed(stream, LengthPrefixedCodec())
        framed.feed(b"first")
        assert not framed._send_nowait(LengthPrefixedCodec().encode(b"second"))
        await asyncio.wait_for(framed.send(b"second"), 5)
        assert await asyncio.wait_for(server.recv(), 5) == (
            b"\x00\x00\x00\x05first\x00\x00\x00\x06second"
        )

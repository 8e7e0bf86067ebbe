"""Two error messages a new user meets: a wrong object given to WsStream outside a
running loop, and receiving after this side closed."""

from __future__ import annotations

import asyncio

import anyio
import pytest

import wsframed
from wsframed import EndOfStream, Framed, FramedServer, WsStream
from wsframed.codecs import LinesCodec

WRONG_OBJECT = (
    "WsStream wraps an open WebSocket connection: a websockets.asyncio "
    "ClientConnection or ServerConnection (websockets 14 or later), an aiohttp "
    "web.WebSocketResponse (prepared) or ClientWebSocketResponse, or a Starlette / "
    "FastAPI WebSocket (accepted), or a wsframed.backends.picows.PicowsConnection; "
    "got builtins.object"
)

LOCAL_END = (
    "this Framed was closed with aclose() on this side: nothing more will be "
    "received (the frames that arrived before were delivered)"
)


def test_wsstream_of_a_wrong_object_outside_a_loop_is_the_documented_type_error() -> None:
    with pytest.raises(TypeError) as refused:
        WsStream(object())
    assert str(refused.value) == WRONG_OBJECT


async def test_wsstream_of_a_wrong_object_inside_a_loop_says_the_same() -> None:
    with pytest.raises(TypeError) as refused:
        WsStream(object())
    assert str(refused.value) == WRONG_OBJECT


def url_of(server: FramedServer) -> str:
    return f"ws://127.0.0.1:{server.port}"


async def test_recv_after_aclose_says_this_side_closed() -> None:
    async def two_lines(framed: Framed[str]) -> None:
        framed.feed("one")
        framed.feed("two")
        await framed.flush()  # one message, so both frames are queued at once
        async for _ in framed:  # until the client closes
            pass

    async with wsframed.serve(two_lines, "127.0.0.1", 0, LinesCodec()) as server:
        framed = await wsframed.connect(url_of(server), LinesCodec())
        assert await asyncio.wait_for(framed.recv(), 5) == "one"
        await asyncio.wait_for(framed.aclose(), 5)
        # What arrived before the close is still delivered, then the end says why.
        assert await asyncio.wait_for(framed.recv(), 5) == "two"
        for _ in range(2):  # and stays so
            with pytest.raises(EndOfStream) as ended:
                await asyncio.wait_for(framed.recv(), 5)
            assert str(ended.value) == LOCAL_END
            assert isinstance(ended.value, anyio.EndOfStream)
        # Iteration ends quietly, as at any end of stream.
        assert [item async for item in framed] == []


async def test_recv_after_the_peer_ended_says_the_peer_did() -> None:
    async def bye(framed: Framed[str]) -> None:
        await framed.send("bye")

    async with (
        wsframed.serve(bye, "127.0.0.1", 0, LinesCodec()) as server,
        wsframed.connect(url_of(server), LinesCodec()) as framed,
    ):
        assert await asyncio.wait_for(framed.recv(), 5) == "bye"
        with pytest.raises(EndOfStream) as ended:
            await asyncio.wait_for(framed.recv(), 5)
        assert str(ended.value) == "the peer ended the stream"

"""Another Python WebSocket stack: aiohttp's client and server against wsframed.

- aiohttp's ``ClientSession.ws_connect`` talking to ``wsframed.serve`` (websockets);
- ``wsframed.connect`` (websockets) talking to a plain aiohttp ``WebSocketResponse``.

The aiohttp side never uses wsframed: it encodes with ``msgpack.packb`` /
``cbor2.dumps`` / ``struct``, decodes with its own incremental decoders, and cuts the
byte stream into messages at random offsets (empty ones included). Both directions
are compared byte for byte (length and SHA-256) and frame by frame, then the close
code and reason each side saw.
"""

from __future__ import annotations

import asyncio
import io
import random
import struct
from typing import Any

import cbor2
import msgpack  # type: ignore[import-untyped]
import pytest

import wsframed
from wsframed import ConnectionClosed, EndOfStream, Framed
from wsframed.codecs import CborCodec, LengthPrefixedCodec, MsgpackCodec

from .conftest import Digest, Tap

pytestmark = pytest.mark.timeout(30)

CODECS = {"length": LengthPrefixedCodec(), "msgpack": MsgpackCodec(), "cbor": CborCodec()}
END = "end-of-items"


def make_items(codec_name: str, count: int = 300) -> list[Any]:
    rng = random.Random(codec_name)
    items: list[Any] = []
    for i in range(count):
        blob = rng.randbytes(rng.choice([0, 1, 7, 100, 3000]))
        if codec_name == "length":
            items.append(blob)
        else:
            items.append({"i": i, "blob": blob, "text": "é✓😀"[: i % 4] * (i % 9), "n": -(i**3)})
    return items


def encode(codec_name: str, item: Any) -> bytes:
    """The aiohttp side's encoder: the plain libraries, not wsframed."""
    if codec_name == "length":
        return struct.pack(">I", len(item)) + item
    if codec_name == "msgpack":
        data: bytes = msgpack.packb(item)
        return data
    return cbor2.dumps(item)


def end_marker(codec_name: str) -> Any:
    return END.encode() if codec_name == "length" else END


def transform(codec_name: str, index: int, item: Any) -> Any:
    return item[::-1] if codec_name == "length" else {"reply": index, "echo": item}


class PlainDecoder:
    """The aiohttp side's incremental decoder, built on the plain libraries."""

    def __init__(self, codec_name: str):
        self.codec_name = codec_name
        self.buffer = bytearray()
        self.unpacker = msgpack.Unpacker()

    def feed(self, data: bytes) -> list[Any]:
        if self.codec_name == "msgpack":
            self.unpacker.feed(data)
            return list(self.unpacker)
        self.buffer += data
        items: list[Any] = []
        if self.codec_name == "length":
            while len(self.buffer) >= 4:
                (size,) = struct.unpack_from(">I", self.buffer)
                if len(self.buffer) < 4 + size:
                    break
                items.append(bytes(self.buffer[4 : 4 + size]))
                del self.buffer[: 4 + size]
            return items
        # CBOR: decode whole items; cbor2 raises CBORDecodeEOF on a partial one.
        source = io.BytesIO(bytes(self.buffer))
        decoder = cbor2.CBORDecoder(source)
        consumed = 0
        while consumed < len(self.buffer):
            try:
                items.append(decoder.decode())
            except cbor2.CBORDecodeEOF:
                break
            consumed = source.tell()
        del self.buffer[:consumed]
        return items


def cut(data: bytes, rng: random.Random) -> list[bytes]:
    """``data`` in pieces of random sizes: empty, 1 byte, small and large."""
    pieces = []
    offset = 0
    while offset < len(data):
        size = rng.choice([0, 1, 1, rng.randint(2, 64), rng.randint(2, 64), rng.randint(65, 5000)])
        pieces.append(data[offset : offset + size])
        offset += size
    return pieces


@pytest.mark.parametrize("codec_name", list(CODECS))
@pytest.mark.parametrize("closer", ["server-1000", "server-4001", "client-4000"])
async def test_aiohttp_client_with_wsframed_server(
    aiohttp_lib: Any, codec_name: str, closer: str
) -> None:
    codec = CODECS[codec_name]
    items = make_items(codec_name)
    seen: dict[str, Any] = {}

    async def handler(framed: Framed[Any]) -> None:
        tap = seen["tap"] = Tap(framed.stream)
        tapped = Framed(tap, codec)
        received: list[Any] = []
        seen["received"] = received
        try:
            async for item in tapped:
                if item == end_marker(codec_name):
                    break
                tapped.feed(transform(codec_name, len(received), item))
                received.append(item)
                await tapped.flush()
            if closer == "server-4001":
                await framed.stream.aclose(4001, "server says bye")
            elif closer == "client-4000":
                await tapped.recv()  # until the client closes
        except ConnectionClosed as exc:
            seen["closed"] = (exc.code, exc.reason)

    rng = random.Random(f"{codec_name}-{closer}")
    sent = Digest()
    received_bytes = Digest()
    decoder = PlainDecoder(codec_name)
    replies: list[Any] = []
    wire = b"".join(encode(codec_name, item) for item in [*items, end_marker(codec_name)])
    async with (
        wsframed.serve(handler, "127.0.0.1", 0, codec=codec, write_chunk_size=29) as server,
        aiohttp_lib.ClientSession() as session,
        session.ws_connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        for piece in cut(wire, rng):
            sent.update(piece)
            await ws.send_bytes(piece)
        while len(replies) < len(items):
            message = await asyncio.wait_for(ws.receive(), 10)
            assert message.type == aiohttp_lib.WSMsgType.BINARY, message
            received_bytes.update(message.data)
            replies += decoder.feed(message.data)
        if closer == "client-4000":
            await ws.close(code=4000, message=b"client is done")
            async with asyncio.timeout(5):  # until the handler has recorded it
                while "closed" not in seen:
                    await asyncio.sleep(0.01)
            assert seen["closed"] == (4000, "client is done")
        else:
            message = await asyncio.wait_for(ws.receive(), 10)
            assert message.type == aiohttp_lib.WSMsgType.CLOSE, message
            expected = (1000, "") if closer == "server-1000" else (4001, "server says bye")
            assert (message.data, message.extra or "") == expected
            assert ws.close_code == expected[0]

    tap: Tap = seen["tap"]
    assert seen["received"] == items
    assert replies == [transform(codec_name, i, item) for i, item in enumerate(items)]
    assert (sent.length, sent.hexdigest) == (tap.read_digest.length, tap.read_digest.hexdigest)
    assert (received_bytes.length, received_bytes.hexdigest) == (
        tap.written_digest.length,
        tap.written_digest.hexdigest,
    )


async def test_aiohttp_client_text_message_is_refused_with_1003(aiohttp_lib: Any) -> None:
    async def handler(framed: Framed[Any]) -> None:
        with pytest.raises(wsframed.ProtocolError):
            await framed.recv()

    async with (
        wsframed.serve(handler, "127.0.0.1", 0, codec=MsgpackCodec()) as server,
        aiohttp_lib.ClientSession() as session,
        session.ws_connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        await ws.send_str("text is not a byte stream")
        message = await asyncio.wait_for(ws.receive(), 10)
        assert message.type == aiohttp_lib.WSMsgType.CLOSE
        assert (message.data, message.extra) == (1003, "text messages are not accepted")


@pytest.mark.parametrize("codec_name", list(CODECS))
@pytest.mark.parametrize("closer", ["server-1000", "server-4001", "client-4000"])
async def test_wsframed_client_with_aiohttp_server(
    aiohttp_lib: Any, codec_name: str, closer: str
) -> None:
    from aiohttp import web

    codec = CODECS[codec_name]
    items = make_items(codec_name)
    seen: dict[str, Any] = {"received": [], "read": Digest(), "written": Digest()}
    rng = random.Random(f"server-{codec_name}-{closer}")

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        decoder = PlainDecoder(codec_name)
        received: list[Any] = seen["received"]
        done = False
        async for message in ws:
            assert message.type == web.WSMsgType.BINARY, message
            seen["read"].update(message.data)
            replies = b""
            for item in decoder.feed(message.data):
                if item == end_marker(codec_name):
                    done = True
                    break
                replies += encode(codec_name, transform(codec_name, len(received), item))
                received.append(item)
            for piece in cut(replies, rng):
                seen["written"].update(piece)
                await ws.send_bytes(piece)
            if done and closer != "client-4000":
                code, reason = (1000, b"") if closer == "server-1000" else (4001, b"bye")
                await ws.close(code=code, message=reason)
                break
        seen["closed"] = (ws.close_code,)
        return ws

    app = web.Application()
    app.router.add_get("/ws", websocket)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        framed = await wsframed.connect(f"ws://127.0.0.1:{port}/ws", codec, write_chunk_size=17)
        stream = framed.stream
        tap = Tap(stream)
        client = Framed(tap, codec)
        async with asyncio.timeout(15):
            await client.send_all([*items, end_marker(codec_name)])
            replies = [await client.recv() for _ in items]
            if closer == "client-4000":
                await stream.aclose(4000, "client is done")
                # aiohttp answers a close frame with 1000 of its own, not an echo of the
                # code (RFC 6455 only says endpoints "typically" echo it); close_code is
                # what the peer sent.
                expected = (1000, "")
            elif closer == "server-4001":
                with pytest.raises(ConnectionClosed) as closed:
                    await client.recv()
                assert (closed.value.code, closed.value.reason) == (4001, "bye")
                expected = (4001, "bye")
            else:
                with pytest.raises(EndOfStream):
                    await client.recv()
                expected = (1000, "")
            await stream.aclose()
            while "closed" not in seen:
                await asyncio.sleep(0.01)
    finally:
        await runner.cleanup()

    assert (stream.close_code, stream.close_reason) == expected
    assert seen["closed"][0] == (4000 if closer == "client-4000" else expected[0])
    assert seen["received"] == items
    assert replies == [transform(codec_name, i, item) for i, item in enumerate(items)]
    assert (tap.written_digest.length, tap.written_digest.hexdigest) == (
        seen["read"].length,
        seen["read"].hexdigest,
    )
    assert (tap.read_digest.length, tap.read_digest.hexdigest) == (
        seen["written"].length,
        seen["written"].hexdigest,
    )

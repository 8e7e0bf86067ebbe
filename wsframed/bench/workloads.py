"""What the benchmarks send: one workload per codec, and the connections they use.

A ``Workload`` pairs a codec with the item a benchmark sends, and with the code
a user would write without wsframed: ``to_message``/``from_message`` turn one item
into one WebSocket message and back (``msgpack.packb``/``unpackb`` and the like), the
*naive* baseline; ``plain_frame``/``plain_receiver`` frame items in the same wire
format with the plain library and nothing of wsframed (``msgpack.Unpacker``, a
``split(b"\n")``, ``struct``, ``cbor2.CBORDecoder``, ``json.loads``), the *limit*
baseline over raw TCP. Items are small on purpose, where the per-message cost of a
WebSocket library dominates: an RPC-like map of about 30 bytes for msgpack and for
``cbor`` (the same item, to compare the two), and 100-byte frames for ``cbor-100``,
the line-based and the length-prefixed codecs.

Connections are real: websockets server and client on 127.0.0.1 (compression off,
the library's other defaults), or TCP streams on 127.0.0.1, both in the running
event loop, so the numbers include everything a deployed pair of tasks would pay
except the network. Under trio (``wsframed bench --loop trio``) they are
websockets.trio's server and client and trio's ``SocketStream``, seen through the
asyncio stream methods the scenarios call (``TrioTcpEnd``).
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import cbor2
import msgpack  # type: ignore[import-untyped]
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from ..codecs import (
    CborCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)
from ..codecs.base import Codec
from ..framed import Framed
from ..loops import in_trio

__all__ = ["WORKLOADS", "TrioTcpEnd", "Workload", "framed_tcp_pair", "tcp_pair", "ws_pair"]

# The options every benchmark connection uses: a byte stream wants no compression
# (see wsframed.client.byte_stream_defaults); everything else is websockets' default.
WS_OPTIONS: dict[str, Any] = {"compression": None}


@dataclass(frozen=True)
class Workload:
    """A codec, the item sent through it, and the one-message-per-item equivalent."""

    name: str
    codec: Callable[[], Codec[Any]]
    item: Callable[[int], Any]
    to_message: Callable[[Any], bytes]
    from_message: Callable[[bytes], Any]
    plain_frame: Callable[[Any], bytes]  # one item as a frame, by the plain library
    plain_receiver: Callable[[], Callable[[bytes], int]]  # feed(chunk) -> items decoded
    line_based: bool = False  # the ad-hoc baseline reads lines instead of a length

    def frame_size(self) -> int:
        """The encoded size of a typical item, in bytes."""
        return len(self.codec().encode(self.item(12345)))


def _rpc_item(i: int) -> dict[str, Any]:
    return {"id": i, "method": "add", "params": [1, 2]}


def _line_item(i: int) -> str:
    return f"{i:08d} " + "x" * 90  # 99 characters, 100 bytes with the newline


def _blob_item(i: int) -> bytes:
    return i.to_bytes(8, "big") + b"x" * 88  # 96 bytes, 100 with the length header


def _json_item(i: int) -> dict[str, Any]:
    return {"id": i, "method": "add", "params": [1, 2], "note": "x" * (48 - len(str(i)))}


def _cbor_100_item(i: int) -> dict[str, Any]:
    return {"id": i, "method": "add", "params": [1, 2], "note": "x" * 61}


_json_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json_from_message(message: bytes) -> Any:
    return json.loads(message)


def _text_from_message(message: bytes) -> str:
    return message.decode()


def _identity(message: bytes) -> bytes:
    return message


# The limit baseline's receivers: what a user would write with the plain library to
# decode a stream of frames arriving in chunks. Each returns feed(chunk) -> the
# number of items decoded from it (the items are built, then dropped).


def _msgpack_receiver() -> Callable[[bytes], int]:
    unpacker = msgpack.Unpacker()

    def feed(data: bytes) -> int:
        unpacker.feed(data)
        return sum(1 for _ in unpacker)

    return feed


def _lines_receiver(decode: Callable[[str], Any] | None) -> Callable[[], Callable[[bytes], int]]:
    # One UTF-8 decode and one split per chunk (a newline byte is never inside a
    # multi-byte character), then ``decode`` per line when the item is more than text.
    def receiver() -> Callable[[bytes], int]:
        rest = b""

        def feed(data: bytes) -> int:
            nonlocal rest
            if rest:
                data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if not cut:
                return 0
            lines = data[: cut - 1].decode().split("\n")
            if decode is not None:
                for line in lines:
                    decode(line)
            return len(lines)

        return feed

    return receiver


def _length_receiver() -> Callable[[bytes], int]:
    # Frames are sliced out of the chunk (bytes slices, one copy each); only the
    # unfinished tail is carried over to the next chunk.
    rest = b""
    unpack_from = struct.Struct(">I").unpack_from

    def feed(data: bytes) -> int:
        nonlocal rest
        if rest:
            data = rest + data
        offset = count = 0
        end = len(data)
        while end - offset >= 4:
            (size,) = unpack_from(data, offset)
            stop = offset + 4 + size
            if stop > end:
                break
            data[offset + 4 : stop]
            offset = stop
            count += 1
        rest = data[offset:]
        return count

    return feed


def _cbor_receiver() -> Callable[[bytes], int]:
    rest = b""

    def feed(data: bytes) -> int:
        nonlocal rest
        stream = io.BytesIO(rest + data)
        decoder = cbor2.CBORDecoder(stream)
        count = 0
        while True:
            start = stream.tell()
            try:
                decoder.decode()
            except cbor2.CBORDecodeEOF:
                stream.seek(start)
                rest = stream.read()
                return count
            count += 1

    return feed


def _length_frame(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _line_frame(text: str) -> bytes:
    return (text + "\n").encode()


def _json_line(item: Any) -> bytes:
    return (_json_dumps(item) + "\n").encode()


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "msgpack", MsgpackCodec, _rpc_item, msgpack.packb, msgpack.unpackb,
            # The limit packs with one reused Packer, as code tuned by hand would:
            # packb builds a Packer per call (~0.2 us more per item).
            msgpack.Packer().pack, _msgpack_receiver,
        ),
        Workload(
            "cbor", CborCodec, _rpc_item, cbor2.dumps, cbor2.loads, cbor2.dumps, _cbor_receiver
        ),
        Workload(
            "cbor-100", CborCodec, _cbor_100_item, cbor2.dumps, cbor2.loads,
            cbor2.dumps, _cbor_receiver,
        ),
        Workload(
            "lines", LinesCodec, _line_item, str.encode, _text_from_message,
            _line_frame, _lines_receiver(None), line_based=True,
        ),
        Workload(
            "length", LengthPrefixedCodec, _blob_item, bytes, _identity,
            _length_frame, _length_receiver,
        ),
        Workload(
            "jsonl", JsonLinesCodec, _json_item, lambda item: _json_dumps(item).encode(),
            _json_from_message, _json_line, _lines_receiver(json.loads),
            line_based=True,
        ),
    )
}
"""The small-frame workloads, by codec name."""


@asynccontextmanager
async def ws_pair(**options: Any) -> AsyncIterator[tuple[Any, Any]]:
    """Yield a connected websockets (client, server) pair on 127.0.0.1, of the running
    loop's family (websockets.asyncio or websockets.trio: the same ``send``/``recv``)."""
    if in_trio():
        async with _trio_ws_pair(options) as pair:
            yield pair
        return
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[ServerConnection] = loop.create_future()
    release = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        accepted.set_result(connection)
        await release.wait()

    options = {**WS_OPTIONS, **options}
    async with serve(handler, "127.0.0.1", 0, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        client = await connect(f"ws://127.0.0.1:{port}", **options)
        try:
            yield client, await asyncio.wait_for(accepted, 10)
        finally:
            release.set()
            client.transport.abort()
            server.close()


@asynccontextmanager
async def _trio_ws_pair(options: dict[str, Any]) -> AsyncIterator[tuple[Any, Any]]:
    import trio
    from websockets.trio.client import connect as trio_connect
    from websockets.trio.server import serve as trio_serve

    accepted: list[Any] = []
    arrived = trio.Event()

    async def handler(connection: Any) -> None:
        accepted.append(connection)
        arrived.set()
        await trio.sleep_forever()  # until the pair is dropped

    options = {**WS_OPTIONS, **options}
    async with trio.open_nursery() as nursery:
        start = functools.partial(trio_serve, handler, 0, host="127.0.0.1", **options)
        server = await nursery.start(start)
        port = server.listeners[0].socket.getsockname()[1]
        async with trio_connect(f"ws://127.0.0.1:{port}", **options) as client:
            try:
                with trio.fail_after(10):
                    await arrived.wait()
                yield client, accepted[0]
            finally:
                nursery.cancel_scope.cancel()  # drops both ends: no close handshake
                await trio.aclose_forcefully(client.stream)


class TrioTcpEnd:
    """One end of a trio TCP connection with the asyncio stream methods the scenarios
    call: ``write`` + ``drain`` (``send_all``) and ``read`` (``receive_some``)."""

    __slots__ = ("_pending", "stream")

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._pending.append(data)

    async def drain(self) -> None:
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        await self.stream.send_all(data)

    async def read(self, n: int) -> bytes:
        data: bytes = await self.stream.receive_some(n)
        return data


StreamPair = tuple[Any, Any]  # (reader, writer): asyncio's streams, or one TrioTcpEnd twice


@asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[StreamPair, StreamPair]]:
    """Yield connected stream pairs (client, server) on 127.0.0.1: asyncio's
    ``(StreamReader, StreamWriter)``, under trio a ``TrioTcpEnd`` as both."""
    if in_trio():
        async with _trio_tcp_pair() as pair:
            yield pair
        return
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[StreamPair] = loop.create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield client, await asyncio.wait_for(accepted, 10)
    finally:
        client[1].transport.abort()
        if accepted.done():
            accepted.result()[1].transport.abort()
        server.close()


@asynccontextmanager
async def _trio_tcp_pair() -> AsyncIterator[tuple[StreamPair, StreamPair]]:
    import trio

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    try:
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(10):
            server = await listeners[0].accept()
    finally:
        for listener in listeners:
            await listener.aclose()
    try:
        ends = TrioTcpEnd(client), TrioTcpEnd(server)
        yield (ends[0], ends[0]), (ends[1], ends[1])
    finally:
        await trio.aclose_forcefully(client)
        await trio.aclose_forcefully(server)


@asynccontextmanager
async def framed_tcp_pair(
    codec: Callable[[], Codec[Any]],
) -> AsyncIterator[tuple[Framed[Any], Framed[Any]]]:
    """Yield connected (client, server) ``Framed`` over TCP on 127.0.0.1, each with a
    new ``codec()``: ``Framed.from_streams`` over asyncio's streams, or under trio
    ``Framed`` over anyio's TCP streams (what Framed takes there)."""
    if not in_trio():
        async with tcp_pair() as (client, server):
            yield Framed.from_streams(*client, codec()), Framed.from_streams(*server, codec())
        return
    import anyio
    from anyio.abc import SocketAttribute, SocketListener

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as multi:
        listener = cast(SocketListener, multi.listeners[0])
        port = listener.extra(SocketAttribute.local_port)
        async with await anyio.connect_tcp("127.0.0.1", port) as near:
            with anyio.fail_after(10):
                far = await listener.accept()
            async with far:
                yield Framed(near, codec()), Framed(far, codec())

"""Framed over real websockets connections and real asyncio TCP connections."""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from wsframed import (
    ClosedStreamError,
    DecodeError,
    EndOfStream,
    Framed,
    FrameTooLarge,
    IncompleteFrame,
    WsStream,
)
from wsframed.codecs import LengthPrefixedCodec, LinesCodec, MsgpackCodec

from .conftest import framed_pair, tcp_pair, wait_for, ws_pair
from .peers import KiB, MiB, shrink_buffers
from .picows_pairs import picows_pair
from .test_checkpoints import ticking

TRANSPORTS = ["ws", "tcp"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_split_halves_echo_in_two_tasks(transport: str) -> None:
    async with framed_pair(transport, MsgpackCodec()) as (client, server):

        async def echo() -> None:
            sink, stream = server.split()
            async for item in stream:
                await sink.send({"echo": item})

        echo_task = asyncio.create_task(echo())
        sink, stream = client.split()
        received = []

        async def read_replies() -> None:
            async for reply in stream:
                received.append(reply)
                if len(received) == 100:
                    return

        reader = asyncio.create_task(read_replies())
        for i in range(100):
            await sink.send([i, "x" * i])
        await asyncio.wait_for(reader, 10)
        assert received == [{"echo": [i, "x" * i]} for i in range(100)]
        await sink.close()
        await asyncio.wait_for(echo_task, 5)  # the server's stream half ended


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_concurrent_senders_never_interleave_frames(transport: str) -> None:
    codec = LengthPrefixedCodec(max_frame_size=256 * 1024)
    async with framed_pair(transport, codec) as (client, server):

        async def sender(tag: int) -> None:
            for n in range(200):
                size = (n * 7919 + tag * 104729) % (150 * 1024) + 1
                await client.send(struct.pack(">BH", tag, n) + bytes([tag]) * size)
                if n % 10 == 0:
                    await asyncio.sleep(0)

        senders = [asyncio.create_task(sender(tag)) for tag in range(4)]
        last = dict.fromkeys(range(4), -1)
        async with asyncio.timeout(30):
            for _ in range(800):
                frame = await server.recv()
                tag, n = struct.unpack_from(">BH", frame)
                assert frame[3:] == bytes([tag]) * (len(frame) - 3)
                assert n == last[tag] + 1
                last[tag] = n
        await asyncio.gather(*senders)
        assert last == dict.fromkeys(range(4), 199)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_send_all_of_100k_items_arrives_complete_and_in_order(transport: str) -> None:
    async with framed_pair(transport, MsgpackCodec()) as (client, server):
        count = 100_000

        async def items() -> AsyncIterator[dict[str, Any]]:
            for i in range(count):
                yield {"id": i, "method": "add", "params": [1, 2]}

        sending = asyncio.create_task(client.send_all(items()))
        expected = 0
        async with asyncio.timeout(60):
            while expected < count:
                for item in await server.recv_many():
                    assert item["id"] == expected
                    expected += 1
        await sending
        assert expected == count


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sink_close_then_the_stream_half_drains_to_its_end(transport: str) -> None:
    async with framed_pair(transport, LinesCodec()) as (client, server):
        client_sink, client_stream = client.split()
        server_sink, server_stream = server.split()
        await client_sink.send_all(f"line {i}" for i in range(500))
        await server_sink.send_all(f"reply {i}" for i in range(300))
        await client_sink.close()
        with pytest.raises(ClosedStreamError):
            await client_sink.send("late")
        async with asyncio.timeout(10):
            got = [line async for line in server_stream]
        assert got == [f"line {i}" for i in range(500)]
        # Over a WebSocket the server's reply to our close frame already ended its
        # side; over TCP, its own half-close does. Either way this is harmless.
        await server_sink.close()
        async with asyncio.timeout(10):
            replies = [line async for line in client_stream]
        assert replies == [f"reply {i}" for i in range(300)]
        with pytest.raises(EndOfStream):
            await client_stream.recv()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_after_a_decode_error_every_recv_raises_the_same_error(transport: str) -> None:
    codec = LengthPrefixedCodec(max_frame_size=1000)
    async with framed_pair(transport, codec) as (client, server):
        raw = codec.encode(b"one") + codec.encode(b"two") + b"\xff\xff\xff\xff" + b"junk"
        client._io.write(raw)  # bytes no honest encoder would produce
        await client.flush()
        assert await server.recv() == b"one"
        assert await server.recv() == b"two"
        with pytest.raises(FrameTooLarge) as first:
            await server.recv()
        assert first.value.size == 0xFFFFFFFF
        assert not first.value.local
        for _ in range(3):
            with pytest.raises(FrameTooLarge) as again:
                await asyncio.wait_for(server.recv(), 1)
            assert again.value is first.value


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_too_large_on_encode_buffers_nothing_and_the_stream_stays_usable(
    transport: str,
) -> None:
    codec = LengthPrefixedCodec(max_frame_size=100)
    async with framed_pair(transport, codec) as (client, server):
        with pytest.raises(FrameTooLarge) as info:
            client.feed(b"x" * 101)
        assert info.value.local
        await client.send(b"fits")
        assert await server.recv() == b"fits"


async def test_end_of_stream_inside_a_frame_is_incomplete_frame() -> None:
    codec = LengthPrefixedCodec()
    async with ws_pair() as (client, server):
        writer = WsStream(server)
        reader = Framed(WsStream(client), codec)
        writer.write(codec.encode(b"whole") + b"\x00\x00\x00\x10half")
        await writer.aclose()
        assert await reader.recv() == b"whole"
        with pytest.raises(IncompleteFrame) as info:
            await reader.recv()
        assert info.value.pending >= 4
        with pytest.raises(IncompleteFrame):
            await reader.recv()


async def test_lines_discard_mode_resumes_after_an_overlong_line() -> None:
    codec = LinesCodec(max_frame_size=10, on_overflow="discard")
    async with framed_pair("ws", codec) as (client, server):
        client._io.write(b"short\n" + b"y" * 50 + b"\nafter\n")
        await client.flush()
        assert await server.recv() == "short"
        with pytest.raises(FrameTooLarge):
            await server.recv()
        assert await server.recv() == "after"


async def test_many_frames_in_one_flush_leave_as_one_message() -> None:
    codec = LinesCodec()
    async with ws_pair() as (client, server):
        framed = Framed(WsStream(client), codec)
        for i in range(50):
            framed.feed(f"frame {i}")
        await framed.flush()
        message = await server.recv()
        assert message == "".join(f"frame {i}\n" for i in range(50)).encode()


async def test_from_streams_and_async_with_close_tcp() -> None:
    async with tcp_pair() as (client, server):
        async with Framed.from_streams(*client, MsgpackCodec()) as framed:
            await framed.send({"hello": "tcp"})
            assert framed.get_extra_info("peername") == server[1].get_extra_info("sockname")
        peer = Framed.from_streams(*server, MsgpackCodec())
        assert await peer.recv() == {"hello": "tcp"}
        with pytest.raises(EndOfStream):
            await peer.recv()


async def test_framed_refuses_what_is_not_a_byte_stream() -> None:
    with pytest.raises(TypeError, match="needs a byte stream"):
        Framed(object(), LinesCodec())


async def test_send_all_batches_whole_frames_and_feeds_those_before_a_failure() -> None:
    codec = LengthPrefixedCodec(max_frame_size=1000)
    async with framed_pair("ws", codec) as (client, server):
        # A plain iterable: frames are encoded into batches of high_water bytes.
        await client.send_all(bytes([i % 256]) * 500 for i in range(1000))
        for i in range(1000):
            assert await server.recv() == bytes([i % 256]) * 500

        def items() -> Any:
            yield b"before"
            yield b"x" * 1001  # too large: raises, with the frame before it fed
            yield b"never"

        with pytest.raises(FrameTooLarge):
            await client.send_all(items())
        await client.flush()
        assert await server.recv() == b"before"
        await client.send(b"after")
        assert await server.recv() == b"after"
        await client.send_eof()
        with pytest.raises(ClosedStreamError):
            await client.send_all([b"closed"])


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_one_frame_per_message_and_recv_many_mix(transport: str) -> None:
    async with framed_pair(transport, MsgpackCodec()) as (client, server):
        for i in range(50):
            await client.send({"id": i})  # one message (or write) per frame
        await client.send_all([{"id": i} for i in range(50, 100)])
        got: list[Any] = []
        async with asyncio.timeout(10):
            while len(got) < 100:
                got.extend(await server.recv_many(max_items=7))
        assert got == [{"id": i} for i in range(100)]


async def test_a_chunk_is_decoded_256_frames_at_a_time_and_an_error_comes_after_them() -> None:
    # One WebSocket message holding 1,000 frames, then one holding 600 good frames
    # and a header over the limit: the frames are decoded as they are asked for, at
    # most DECODE_AHEAD (256) ahead, so few stay alive at once; none is lost and the
    # error comes right after the frames before it.
    codec = LengthPrefixedCodec(max_frame_size=10)
    frame = codec.encode(b"x")
    async with ws_pair() as (client, server):
        framed = Framed(WsStream(server), codec)
        await client.send(frame * 1000)
        sizes = []
        async with asyncio.timeout(10):
            while sum(sizes) < 1000:
                sizes.append(len(await framed.recv_many()))
            assert sizes == [256, 256, 256, 232]
            await client.send(frame * 600 + struct.pack(">I", 11))
            sizes = [len(await framed.recv_many()) for _ in range(3)]
            assert sizes == [256, 256, 88]
            with pytest.raises(FrameTooLarge) as caught:
                await framed.recv_many()
        assert caught.value.offset == 1600 * len(frame)


async def test_recv_many_takes_frames_straight_from_the_pass_and_recv_between_keeps_order() -> (
    None
):
    # recv_many() with nothing queued returns the decoder's next frames (at most 256,
    # at most max_items) in a list of their own; recv() queues 256 and takes one; a
    # recv_many() then returns what is queued. Every frame once, in order, and the
    # error after the last frame before it, at its offset.
    codec = LengthPrefixedCodec(max_frame_size=10)
    frames = [b"%d" % i for i in range(600)]
    async with ws_pair() as (client, server):
        framed = Framed(WsStream(server), codec)
        await client.send(b"".join(map(codec.encode, frames)) + struct.pack(">I", 11))
        async with asyncio.timeout(10):
            first = await framed.recv_many(max_items=100)
            one = await framed.recv()
            queued = await framed.recv_many()
            last = await framed.recv_many()
            with pytest.raises(FrameTooLarge) as caught:
                await framed.recv_many()
        assert [len(first), len(queued), len(last)] == [100, 255, 244]
        assert [*first, one, *queued, *last] == frames
        assert caught.value.offset == sum(len(codec.encode(f)) for f in frames)


@pytest.mark.parametrize("container", [list, tuple])
async def test_send_all_of_a_list_encodes_slices_and_feeds_the_frames_before_a_failure(
    container: Any,
) -> None:
    # A list or tuple goes to the codec's encode_many() in slices; the frames are the
    # same, and a failing item raises its own error with every frame before it fed.
    codec = LengthPrefixedCodec(max_frame_size=1000)
    async with framed_pair("ws", codec) as (client, server):
        await client.send_all(container(bytes([i % 256]) * (i % 700) for i in range(3000)))
        async with asyncio.timeout(10):
            for i in range(3000):
                assert await server.recv() == bytes([i % 256]) * (i % 700)
            items = container([b"a"] * 100 + [b"x" * 1001] + [b"never"])
            with pytest.raises(FrameTooLarge) as caught:
                await client.send_all(items)
            assert (caught.value.size, caught.value.local) == (1001, True)
            await client.send(b"after")
            assert [await server.recv() for _ in range(101)] == [b"a"] * 100 + [b"after"]


class _RefusingAtOnce:
    """A decoder whose ``__iter__`` is a plain method that raises (no generator)."""

    def feed(self, data: Any) -> None:
        pass

    def __iter__(self) -> Any:
        raise DecodeError("refused at once", offset=0)

    def feed_eof(self) -> None:
        pass


class _RefusingCodec:
    max_frame_size = 100

    def encode(self, item: bytes) -> bytes:
        return item

    def decoder(self) -> _RefusingAtOnce:
        return _RefusingAtOnce()


async def test_a_decoder_that_raises_from_iter_at_once_fails_every_recv_after_a_loop_turn() -> (
    None
):
    # The decoder is asked again after each error; one whose __iter__ raises before
    # returning an iterator fails each recv() the same way, each after a loop turn.
    async with framed_pair("tcp", LengthPrefixedCodec(), _RefusingCodec()) as (client, server):
        await client.send(b"x")
        async with ticking() as ticker:
            for _ in range(3):
                before = ticker.count
                with pytest.raises(DecodeError, match="refused at once"):
                    await asyncio.wait_for(server.recv(), 10)
                assert ticker.count > before


# send(): a frame sent alone goes straight to the connection ---------------------------
# Framed.send() over a WsStream skips the write buffer when nothing is buffered or
# being sent (WsStream._send_whole). These pin what the peer sees around that shortcut.

SEND_BACKENDS = ["websockets", "picows"]


@asynccontextmanager
async def peer_of(
    backend: str, *, stalled: bool = False, write_chunk_size: int = 64 * KiB
) -> AsyncIterator[tuple[WsStream, Any, Callable[[], Awaitable[bytes]]]]:
    """A WsStream (over ``backend``) and its websockets peer, and ``received()``.

    ``received()`` returns the bytes of the messages the peer has read since the last
    call. With ``stalled``, the peer reads nothing (small send buffers, its socket
    paused) until ``received()`` is first called, so sends block on backpressure.
    """
    async with contextlib.AsyncExitStack() as stack:
        if backend == "picows":
            conn, peer = await stack.enter_async_context(picows_pair("picows-client"))
            assert conn.transport is not None
            local = conn.transport.underlying_transport
        else:
            conn, peer = await stack.enter_async_context(ws_pair(server_options={"max_queue": 1}))
            local = conn.transport
        stream = WsStream(conn, write_chunk_size=write_chunk_size)
        if stalled:
            shrink_buffers(local, peer.transport)
            peer.transport.pause_reading()
        messages: list[bytes] = []

        async def collect() -> None:
            with contextlib.suppress(WsConnectionClosed):
                async for message in peer:
                    assert isinstance(message, bytes)
                    messages.append(message)

        collector = asyncio.create_task(collect())

        async def received() -> bytes:
            peer.transport.resume_reading()
            await asyncio.sleep(0)
            taken = messages[:]
            messages.clear()
            return b"".join(taken)

        received.messages = messages  # type: ignore[attr-defined]
        try:
            yield stream, peer, received
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
            local.abort()


@pytest.mark.parametrize("backend", SEND_BACKENDS)
async def test_send_after_feed_leaves_with_the_fed_frames_in_one_message(backend: str) -> None:
    codec = LengthPrefixedCodec()
    async with peer_of(backend) as (stream, _peer, received):
        framed = Framed(stream, codec)
        framed.feed(b"first")
        framed.feed(b"second")
        await framed.send(b"third")
        messages = received.messages  # type: ignore[attr-defined]
        await wait_for(lambda: len(messages) >= 1)
        await asyncio.sleep(0.05)  # a second message would have arrived by now
        assert messages == [b"".join(map(codec.encode, [b"first", b"second", b"third"]))]


@pytest.mark.parametrize("backend", SEND_BACKENDS)
async def test_send_of_a_frame_over_write_chunk_size_leaves_in_chunks(backend: str) -> None:
    codec = LengthPrefixedCodec()
    async with peer_of(backend, write_chunk_size=1000) as (stream, _peer, received):
        framed = Framed(stream, codec)
        frame = bytes(range(256)) * 9 + b"x" * 192  # 2,496 bytes, 2,500 with its header
        await framed.send(frame)
        await framed.send(b"small")
        messages = received.messages  # type: ignore[attr-defined]
        await wait_for(lambda: len(messages) >= 4)
        assert [len(m) for m in messages] == [1000, 1000, 500, 9]
        assert b"".join(messages) == codec.encode(frame) + codec.encode(b"small")


@pytest.mark.parametrize("backend", SEND_BACKENDS)
async def test_send_of_a_frame_over_max_frame_size_sends_nothing(backend: str) -> None:
    codec = LengthPrefixedCodec(max_frame_size=100)
    async with peer_of(backend) as (stream, _peer, received):
        framed = Framed(stream, codec)
        with pytest.raises(FrameTooLarge) as info:
            await framed.send(b"x" * 101)
        assert (info.value.size, info.value.limit, info.value.local) == (101, 100, True)
        assert stream.write_buffer_size == 0
        await framed.send(b"fits")
        messages = received.messages  # type: ignore[attr-defined]
        await wait_for(lambda: len(messages) >= 1)
        await asyncio.sleep(0.05)
        assert messages == [codec.encode(b"fits")]


@pytest.mark.parametrize("backend", SEND_BACKENDS)
async def test_send_while_a_flush_waits_on_backpressure_goes_after_it(backend: str) -> None:
    """A flush of a large frame is blocked by a stalled peer; a send() meanwhile must
    wait its turn, not go straight to the connection between the flush's messages."""
    codec = LengthPrefixedCodec(max_frame_size=16 * MiB)
    big = random.Random(5).randbytes(12 * MiB)
    async with peer_of(backend, stalled=True) as (stream, _peer, received):
        framed = Framed(stream, codec)
        framed.feed(big)
        flushing = await _blocked(framed.flush())
        sending = asyncio.ensure_future(framed.send(b"last"))
        await asyncio.sleep(0.05)
        assert not sending.done()  # its turn comes after the flush
        data = bytearray(await received())
        await asyncio.wait_for(asyncio.gather(flushing, sending), 20)
        expected = codec.encode(big) + codec.encode(b"last")
        while len(data) < len(expected):
            await asyncio.sleep(0.01)
            data += await received()
        assert data == expected


@pytest.mark.parametrize("backend", SEND_BACKENDS)
async def test_a_send_cancelled_on_backpressure_still_sends_its_frame_once(backend: str) -> None:
    """Sends of frames under write_chunk_size to a stalled peer, until one blocks; it
    is cancelled. Its frame was handed to the connection: it arrives, once, in order,
    and the frames sent after it follow."""
    codec = LengthPrefixedCodec()
    rng = random.Random(11)
    frames = [n.to_bytes(4, "big") + rng.randbytes(60 * KiB) for n in range(1000)]
    async with peer_of(backend, stalled=True) as (stream, _peer, received):
        framed = Framed(stream, codec)
        sent = 0
        for frame in frames:
            task = asyncio.ensure_future(framed.send(frame))
            sent += 1
            await asyncio.sleep(0.01)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                break
        assert sent < len(frames), "expected the stalled peer to block a send"
        assert stream.write_buffer_size == 0  # handed to the connection, not kept
        after = asyncio.ensure_future(framed.send(b"after"))
        expected = b"".join(map(codec.encode, [*frames[:sent], b"after"]))
        data = bytearray(await received())
        await asyncio.wait_for(after, 20)
        while len(data) < len(expected):
            await asyncio.sleep(0.01)
            data += await received()
        decoder = codec.decoder()
        decoder.feed(bytes(data))
        assert list(decoder) == [*frames[:sent], b"after"]


async def _blocked(coro: Any, settle: float = 0.05) -> asyncio.Future[Any]:
    """Start ``coro``; return its task once it is blocked (not finished)."""
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(settle)
    assert not task.done(), "expected it to block on backpressure"
    return task

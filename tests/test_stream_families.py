"""WsStream's behaviours under both loop families: asyncio and trio (issue 18).

Every test runs twice, over websockets.asyncio under asyncio and over websockets.trio
under trio (``tests/loop_families.py``), with the same body: reads across messages,
limits, writes, drain, the close handshakes, text policies, events, ping, errors,
cancellation by a cancel scope, checkpoints, and Framed on top. The asyncio-only
tests (StreamReader parity, websockets.asyncio fast paths and flow-control internals)
stay in test_stream.py and test_stream_reader_parity.py.
"""

from __future__ import annotations

import asyncio
import os

import anyio
import anyio.lowlevel
import msgpack
import pytest
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from wsframed import (
    ClosedStreamError,
    ConnectionClosed,
    EndOfStream,
    Framed,
    ProtocolError,
    WsStream,
)
from wsframed.codecs import MsgpackCodec
from wsframed.events import Closed, CloseFrame, Error, Ping, Pong, TextMessage

from .loop_families import families, run, ws_pair

pytestmark = pytest.mark.timeout(60)


@families
def test_reads_span_messages_and_skip_empty_ones(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            for message in (b"he", b"", b"llo\nwor", b"ld\n", b"abc", b"defgh", b"ij"):
                await peer.send(message)
            assert await stream.readline() == b"hello\n"
            assert await stream.readuntil(b"\n") == b"world\n"
            assert await stream.readexactly(4) == b"abcd"
            assert await stream.read(3) == b"efg"
            # (How many messages one read(100) takes is the backend's: websockets.asyncio
            # takes the small ones queued together.)
            assert await stream.readexactly(3) == b"hij"

    run(family, body)


@families
def test_readuntil_over_the_limit_keeps_every_byte(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client, limit=8)
            await peer.send(b"0123456789")
            with pytest.raises(asyncio.LimitOverrunError) as info:
                await stream.readuntil(b"\n")
            assert info.value.consumed == 10
            await peer.send(b"abc\r\nrest")
            assert await stream.read(100) == b"0123456789"
            assert await stream.readuntil(b"\r\n") == b"abc\r\n"
            assert await stream.read(100) == b"rest"

    run(family, body)


@families
def test_readexactly_at_the_end_gives_the_partial_bytes(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            await peer.send(b"abc")
            await peer.close()
            with pytest.raises(asyncio.IncompleteReadError) as info:
                await stream.readexactly(5)
            assert (info.value.partial, info.value.expected) == (b"abc", 5)
            assert await stream.read() == b""
            assert stream.at_eof()

    run(family, body)


@families
def test_writes_leave_in_bounded_messages_and_arrive_identical(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client, write_chunk_size=1000)
            for i in range(100):
                stream.write(b"%d," % i)
            await stream.drain()
            assert await peer.recv() == b"".join(b"%d," % i for i in range(100))
            data = os.urandom(2500)
            stream.write(data)
            assert stream.write_buffer_size == 2500
            await stream.drain()
            assert stream.write_buffer_size == 0
            assert [await peer.recv() for _ in range(3)] == [
                data[:1000],
                data[1000:2000],
                data[2000:],
            ]

    run(family, body)


@families
def test_peer_close_delivers_the_rest_then_the_end(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            events = stream.events()
            await peer.send(b"last bytes")
            await peer.close(1000, "done")
            assert await stream.read(100) == b"last bytes"
            for _ in range(3):
                assert await stream.read(100) == b""
            with pytest.raises(EndOfStream):
                await stream.receive()
            assert stream.at_eof()
            assert (stream.close_code, stream.close_reason) == (1000, "done")
            seen = [event async for event in events]
            assert seen == [CloseFrame(1000, "done"), Closed(1000, "done")]

    run(family, body)


@families
def test_at_eof_as_soon_as_the_clean_close_has_arrived_with_nothing_before_it(
    family: str,
) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            await peer.send(b"x")
            await peer.close()
            with anyio.fail_after(5):
                await client.wait_closed()
            assert not stream.at_eof()
            assert await stream.read(10) == b"x"
            assert stream.at_eof()  # before any read returned b""
            assert await stream.read(10) == b""

    run(family, body)


@families
def test_send_eof_reads_every_byte_the_peer_sent_until_it_saw_the_close(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            sent = 0
            chunk = os.urandom(4096)

            async def peer_sends_until_closed() -> None:
                nonlocal sent
                try:
                    while True:
                        await peer.send(chunk)
                        sent += len(chunk)
                        await anyio.lowlevel.checkpoint()
                except WsConnectionClosed:
                    pass

            with anyio.fail_after(20):
                async with anyio.create_task_group() as group:
                    group.start_soon(peer_sends_until_closed)
                    await stream.readexactly(10 * len(chunk))
                    stream.write(b"bye")
                    await stream.send_eof()
                    with pytest.raises(ClosedStreamError):
                        stream.write(b"more")
                    received = 10 * len(chunk)
                    while data := await stream.read(65536):
                        received += len(data)
            assert received == sent
            assert sent > 10 * len(chunk)
            assert stream.close_code == 1000

    run(family, body)


@families
def test_aclose_completes_the_handshake_and_sends_what_was_written(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            stream.write(b"final")
            await stream.aclose(4000, "finished")
            assert await peer.recv() == b"final"
            with pytest.raises(WsConnectionClosed) as info:
                await peer.recv()
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "finished")
            await stream.aclose()  # idempotent
            assert stream.is_closing()

    run(family, body)


@families
def test_aclose_with_timeout_drops_a_peer_that_never_answers(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            peer.pause_reading()
            # One message more lets the peer's reader reach its pause (websockets.trio
            # pauses between two reads): our close frame is then never read.
            await stream.send(b"x")
            await anyio.sleep(0.1)
            with anyio.fail_after(10):
                await stream.aclose(timeout=0.5)
            assert stream.close_code == 1006
            assert await stream.read() == b""
            peer.resume_reading()
            await peer.wait_closed()

    run(family, body)


@families
def test_aclose_cancelled_by_a_cancel_scope_still_closes(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            stream.write(b"kept")
            with anyio.CancelScope() as scope:
                scope.cancel()
                await stream.aclose(4001, "cancelled")
            assert await peer.recv() == b"kept"
            with pytest.raises(WsConnectionClosed) as info:
                await peer.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 4001
            with anyio.fail_after(5):
                await stream.wait_closed()

    run(family, body)


@families
def test_receive_after_aclose_says_this_side_closed_the_stream(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            await peer.send(b"buffered")
            await peer.ping(b"sync")  # the message has arrived
            assert await stream.read(3) == b"buf"
            await stream.aclose()
            assert await stream.receive() == b"fered"  # what was buffered stays readable
            for _ in range(2):
                with pytest.raises(ClosedStreamError) as info:
                    await stream.receive()
                assert str(info.value) == (
                    "cannot receive: this side closed the stream (aclose() or close()); "
                    "the bytes buffered before were all read"
                )

    run(family, body)


@families
def test_text_policies(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            joined = WsStream(client, text="bytes")
            await peer.send(b"a")
            await peer.send("é\n")
            assert await joined.readline() == "aé\n".encode()
        async with ws_pair(family) as (client, peer):
            ignoring = WsStream(client, text="ignore")
            events = ignoring.events()
            for message in (b"ab", "dropped", b"c"):
                await peer.send(message)
            assert await ignoring.readexactly(3) == b"abc"
            assert await anext(events) == TextMessage(7)
        async with ws_pair(family) as (client, peer):
            rejecting = WsStream(client)
            events = rejecting.events()
            await peer.send(b"binary first")
            await peer.send("some text")
            assert await rejecting.read(100) == b"binary first"
            for _ in range(2):
                with pytest.raises(ProtocolError, match="text message of 9 bytes"):
                    await rejecting.read(100)
            with pytest.raises(WsConnectionClosed) as info:
                await peer.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1003
            seen = [event async for event in events]
            assert seen[0] == TextMessage(9)
            assert isinstance(seen[1], Error)
            assert isinstance(seen[1].exc, ProtocolError)
            assert seen[-1] == Closed(1003, "text messages are not accepted")

    run(family, body)


@families
def test_abnormal_ends_give_the_bytes_then_connection_closed(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            await peer.send(b"partial")
            await peer.close(4001, "application failure")
            assert await stream.read(100) == b"partial"
            with pytest.raises(ConnectionClosed) as info:
                await stream.read(100)
            assert (info.value.code, info.value.reason) == (4001, "application failure")
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            await peer.send(b"A" * 1000)
            assert await stream.readexactly(400) == b"A" * 400
            await peer.ping(b"sync")  # the pong proves the client holds the message
            await peer.abort()
            with anyio.fail_after(5):
                await client.wait_closed()
            assert await stream.read(10_000) == b"A" * 600
            with pytest.raises(ConnectionClosed) as info:
                await stream.read(10)
            assert info.value.code == 1006
            stream.write(b"too late")
            with pytest.raises(ConnectionClosed):
                await stream.drain()

    run(family, body)


@families
def test_events_and_ping(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            first, second = stream.events(), stream.events()
            await peer.ping(b"from server")
            with anyio.fail_after(5):
                rtt = await stream.ping(b"from client")
            assert rtt >= 0
            with anyio.fail_after(5):
                async with anyio.create_task_group() as group:
                    for _ in range(3):
                        group.start_soon(stream.ping)
            await peer.pong(b"unsolicited")
            await peer.close(1001, "going away")
            assert await stream.read() == b""
            seen = [event async for event in first]
            assert [event async for event in second] == seen
            random_pongs = [e for e in seen[2:5] if isinstance(e, Pong)]
            assert len(random_pongs) == 3
            assert len({e.data for e in random_pongs}) == 3
            assert seen[:2] + seen[5:] == [
                Ping(b"from server"),
                Pong(b"from client"),
                Pong(b"unsolicited"),
                CloseFrame(1001, "going away"),
                Closed(1001, "going away"),
            ]
            assert [event async for event in stream.events()] == [Closed(1001, "going away")]
            with pytest.raises(ConnectionClosed):
                await stream.ping()

    run(family, body)


@families
def test_concurrent_readers_are_refused(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            result: list[bytes] = []

            async def first_reader() -> None:
                result.append(await stream.read(10))

            with anyio.fail_after(5):
                async with anyio.create_task_group() as group:
                    group.start_soon(first_reader)
                    await anyio.sleep(0.05)
                    with pytest.raises(RuntimeError, match="already waiting"):
                        await stream.read(10)
                    await peer.send(b"x")
            assert result == [b"x"]

    run(family, body)


@families
def test_a_read_cancelled_by_a_cancel_scope_loses_no_bytes(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            await peer.send(b"abc")
            with anyio.move_on_after(0.1) as scope:
                await stream.readexactly(6)
            assert scope.cancelled_caught
            await peer.send(b"def\n")
            with anyio.move_on_after(0.1) as scope:
                await stream.readuntil(b"\r\n")
            assert scope.cancelled_caught
            assert await stream.readexactly(7) == b"abcdef\n"

    run(family, body)


@families
def test_concurrent_drains_take_turns_and_cancelled_ones_pass_their_turn_on(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client, write_chunk_size=4096)
            reader = WsStream(peer.connection)
            sent = bytearray()
            scopes: list[anyio.CancelScope] = []

            async def writer(tag: int) -> None:
                with anyio.CancelScope() as scope:
                    scopes.append(scope)
                    chunk = bytes([tag]) * (3000 + tag)
                    stream.write(chunk)
                    sent.extend(chunk)
                    await stream.drain()

            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    for tag in range(40):
                        group.start_soon(writer, tag)
                    while len(scopes) < 40:
                        await anyio.lowlevel.checkpoint()
                    for scope in scopes[5::7]:
                        scope.cancel()
                await stream.drain()
                assert stream.write_buffer_size == 0
                assert await reader.readexactly(len(sent)) == bytes(sent)

    run(family, body)


@families
def test_a_failing_call_in_a_loop_lets_other_tasks_run(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            stream = WsStream(client)
            await peer.close()
            assert await stream.read() == b""
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await anyio.lowlevel.checkpoint()

            async with anyio.create_task_group() as group:
                group.start_soon(ticker)
                await anyio.lowlevel.checkpoint()
                start = ticks
                for _ in range(100):
                    with pytest.raises(EndOfStream):
                        await stream.receive()
                assert ticks - start >= 100
                group.cancel_scope.cancel()

    run(family, body)


@families
def test_framed_over_the_stream(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            framed = Framed(WsStream(client), MsgpackCodec())
            items = [{"id": i, "name": "x" * i} for i in range(50)]
            await framed.send_all(items)
            echo = Framed(WsStream(peer.connection), MsgpackCodec())
            assert [await echo.recv() for _ in range(50)] == items
            sink, source = echo.split()  # the halves, one task each
            received: list[object] = []

            async def send_back() -> None:
                for item in items:
                    await sink.send(item)

            async def take() -> None:
                while len(received) < 50:
                    received.append(await framed.recv())

            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    group.start_soon(send_back)
                    group.start_soon(take)
            assert received == items
            await framed.send("last")
            assert await source.recv() == "last"
            await echo.stream.aclose()
            with pytest.raises(EndOfStream):
                await framed.recv()

    run(family, body)


@families
def test_framed_recv_cancelled_by_a_cancel_scope_loses_no_frame(family: str) -> None:
    async def body() -> None:
        async with ws_pair(family) as (client, peer):
            framed = Framed(WsStream(client), MsgpackCodec())
            packed = msgpack.packb({"k": "v" * 100})
            await peer.send(packed[:10])  # a frame cut in two: the recv() waits
            with anyio.move_on_after(0.1) as scope:
                await framed.recv()
            assert scope.cancelled_caught
            await peer.send(packed[10:] + b"".join(msgpack.packb(i) for i in range(300)))
            assert await framed.recv() == {"k": "v" * 100}
            # Cancelled where it yields (once per budget, frames decoded ahead): each
            # recv() either returns its frame or is cancelled before taking one.
            received: list[int] = []
            with anyio.CancelScope() as scope:
                scope.cancel()
                while True:
                    received.append(await framed.recv())
            assert 0 < len(received) < 300
            while len(received) < 300:
                received.append(await framed.recv())
            assert received == list(range(300))

    run(family, body)

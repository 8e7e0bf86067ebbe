"""WsStream against real websockets connections on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from wsframed import ClosedStreamError, ConnectionClosed, EndOfStream, ProtocolError, WsStream
from wsframed.events import Closed, CloseFrame, Error, Ping, Pong, TextMessage

from .backend_pairs import pings_answered_late
from .conftest import wait_for, ws_pair

PONG_DELAY = 0.2
"""How long a test's peer holds its pong back (it stops reading for that long)."""


async def test_line_split_across_messages_is_read_whole() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"hello, ")
        await server.send(b"world\n")
        assert await stream.readline() == b"hello, world\n"


async def test_several_lines_in_one_message_come_out_one_at_a_time() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"one\ntwo\nthree\n")
        assert await stream.readline() == b"one\n"
        assert await stream.readline() == b"two\n"
        assert await stream.readline() == b"three\n"


async def test_empty_messages_are_ignored() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        for message in (b"", b"ab", b"", b"", b"c\n"):
            await server.send(message)
        assert await stream.readline() == b"abc\n"
        await server.send(b"")
        await server.close()
        assert await stream.read(10) == b""


async def test_read_n_spans_message_boundaries() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"abc")
        # read() returns what has arrived, never waits for n bytes ...
        assert await stream.read(2) == b"ab"
        assert await stream.read(10) == b"c"
        # ... and one message may serve several reads.
        await server.send(b"defgh")
        assert await stream.read(3) == b"def"
        assert await stream.read(3) == b"gh"
        # Small messages that have already arrived are taken together.
        await server.send(b"ij")
        await server.send(b"klm")
        await asyncio.sleep(0.05)
        assert await stream.read(10) == b"ijklm"


async def test_readexactly_across_three_messages() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        for part in (b"12", b"345", b"6789"):
            await server.send(part)
        assert await stream.readexactly(8) == b"12345678"
        assert await stream.readexactly(1) == b"9"


async def test_readexactly_at_end_of_stream_gives_the_partial_bytes() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"abc")
        await server.close()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await stream.readexactly(5)
        assert info.value.partial == b"abc"
        assert info.value.expected == 5
        assert stream.at_eof()


async def test_readuntil_over_limit_keeps_every_byte() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, limit=100)
        await server.send(b"x" * 60)
        await server.send(b"y" * 60)
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await stream.readuntil(b"\n")
        assert info.value.consumed == 120
        # A separator beyond the limit is refused too, and nothing is lost.
        await server.send(b"z\n")
        with pytest.raises(asyncio.LimitOverrunError):
            await stream.readline()
        assert await stream.readexactly(122) == b"x" * 60 + b"y" * 60 + b"z\n"


async def test_readuntil_with_a_multibyte_separator_split_across_messages() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        for part in (b"head\r", b"\n\r", b"\nrest\r\n"):
            await server.send(part)
        assert await stream.readuntil(b"\r\n\r\n") == b"head\r\n\r\n"
        assert await stream.readuntil(b"\r\n") == b"rest\r\n"


async def test_ten_mib_written_arrive_identical_in_bounded_messages() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, write_chunk_size=64 * 1024)
        payload = os.urandom(10 * 1024 * 1024)
        received = bytearray()
        sizes = []

        async def collect() -> None:
            while len(received) < len(payload):
                message = await server.recv()
                assert isinstance(message, bytes)
                sizes.append(len(message))
                received.extend(message)

        collector = asyncio.create_task(collect())
        for start in range(0, len(payload), 100_000):
            stream.write(payload[start : start + 100_000])
        await stream.drain()
        await asyncio.wait_for(collector, 20)
        assert bytes(received) == payload
        assert max(sizes) <= 64 * 1024
        assert len(sizes) == -(-len(payload) // (64 * 1024))


async def test_many_small_writes_before_one_drain_leave_as_one_message() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        for i in range(100):
            stream.write(b"%d," % i)
        stream.writelines([b"end", b"\n"])
        assert stream.write_buffer_size > 0
        await stream.drain()
        assert stream.write_buffer_size == 0
        first = await server.recv()
        assert first == b"".join(b"%d," % i for i in range(100)) + b"end\n"
        await stream.send(b"next")
        assert await server.recv() == b"next"


async def test_peer_initiated_close_delivers_the_rest_then_eof() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        events = stream.events()
        await server.send(b"last bytes")
        await server.close(1000, "done")
        assert await stream.read(100) == b"last bytes"
        for _ in range(3):
            assert await stream.read(100) == b""
        with pytest.raises(EndOfStream):
            await stream.receive()
        assert stream.at_eof()
        assert stream.close_code == 1000
        assert stream.close_reason == "done"
        seen = [event async for event in events]
        assert seen[-2:] == [CloseFrame(1000, "done"), Closed(1000, "done")]


async def test_send_eof_reads_every_byte_the_peer_sent_until_it_saw_the_close() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        sent = 0
        chunk = os.urandom(4096)

        async def peer_sends_until_closed() -> None:
            nonlocal sent
            try:
                while True:
                    await server.send(chunk)
                    sent += len(chunk)
                    await asyncio.sleep(0)
            except WsConnectionClosed:
                pass

        peer = asyncio.create_task(peer_sends_until_closed())
        await stream.readexactly(10 * len(chunk))  # the peer is well under way
        stream.write(b"bye")
        await stream.send_eof()
        with pytest.raises(ClosedStreamError):
            stream.write(b"more")
        received = 10 * len(chunk)
        async with asyncio.timeout(10):
            while data := await stream.read(65536):
                received += len(data)
        await asyncio.wait_for(peer, 5)
        assert received == sent
        assert sent > 10 * len(chunk)
        assert stream.close_code == 1000


async def test_aclose_with_timeout_drops_a_peer_that_never_answers() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        server.transport.pause_reading()  # the peer never reads our close frame
        started = time.monotonic()
        await stream.aclose(timeout=0.5)
        elapsed = time.monotonic() - started
        assert 0.45 <= elapsed < 1.5
        assert client.transport.is_closing()
        assert stream.close_code == 1006
        assert await stream.read() == b""
        server.transport.resume_reading()
        await asyncio.wait_for(server.wait_closed(), 5)  # TCP connection gone


async def test_aclose_completes_the_handshake_with_a_normal_peer() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        stream.write(b"final")
        await stream.aclose(4000, "finished")
        assert await server.recv() == b"final"
        with pytest.raises(WsConnectionClosed) as info:
            await server.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4000
        assert info.value.rcvd.reason == "finished"
        await stream.aclose()  # idempotent
        assert stream.is_closing()


async def test_aclose_is_not_held_up_by_a_peer_flooding_messages() -> None:
    async with ws_pair(client_options={"max_queue": 2}) as (client, server):
        stream = WsStream(client)

        async def flood() -> None:
            try:
                while True:
                    await server.send(b"x" * 1024)
            except WsConnectionClosed:
                pass

        flooder = asyncio.create_task(flood())
        await wait_for(lambda: client.recv_messages.paused)
        started = time.monotonic()
        await stream.aclose(timeout=5)
        assert time.monotonic() - started < 2
        assert stream.close_code == 1000
        await asyncio.wait_for(flooder, 5)


async def test_streamwriter_style_close_and_wait_closed() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        stream.write(b"data")
        stream.close()
        assert stream.is_closing()
        await asyncio.wait_for(stream.wait_closed(), 5)
        assert await server.recv() == b"data"


async def test_text_reject_closes_with_1003_after_the_earlier_bytes() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        events = stream.events()
        await server.send(b"binary first")
        await server.send("some text")
        assert await stream.read(100) == b"binary first"
        with pytest.raises(ProtocolError, match="text message of 9 bytes"):
            await stream.read(100)
        with pytest.raises(ProtocolError):
            await stream.read(100)  # the stream stays failed
        with pytest.raises(WsConnectionClosed) as info:
            await asyncio.wait_for(server.recv(), 5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1003
        seen = [event async for event in events]
        assert TextMessage(9) in seen
        assert any(isinstance(e, Error) and isinstance(e.exc, ProtocolError) for e in seen)


async def test_text_bytes_policy_joins_the_stream() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, text="bytes")
        await server.send(b"a")
        await server.send("é\n")
        assert await stream.readline() == "aé\n".encode()


async def test_text_ignore_policy_drops_it_with_an_event() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, text="ignore")
        events = stream.events()
        await server.send(b"ab")
        await server.send("dropped")
        await server.send(b"c")
        assert await stream.readexactly(3) == b"abc"
        assert await anext(events) == TextMessage(7)


async def test_tcp_reset_mid_stream_gives_the_bytes_then_connection_closed() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"A" * 1000)
        assert await stream.readexactly(400) == b"A" * 400
        await server.send(b"B" * 10)
        await (await server.ping())  # the pong proves the client holds the B message
        server.transport.abort()
        await asyncio.wait_for(client.wait_closed(), 5)
        assert await stream.read(10_000) == b"A" * 600
        assert await stream.read(10_000) == b"B" * 10
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(stream.read(10), 5)
        assert isinstance(info.value, ConnectionError)
        assert info.value.code == 1006
        with pytest.raises(ConnectionClosed):
            await stream.readexactly(1)


async def test_abnormal_close_code_from_the_peer_is_raised() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"partial")
        await server.close(4001, "application failure")
        assert await stream.read(100) == b"partial"
        with pytest.raises(ConnectionClosed) as info:
            await stream.read(100)
        assert (info.value.code, info.value.reason) == (4001, "application failure")


async def test_writing_to_a_closed_connection_raises_connection_closed() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.close()
        await asyncio.wait_for(client.wait_closed(), 5)
        stream.write(b"too late")
        with pytest.raises(ConnectionClosed):
            await stream.drain()


async def test_events_ping_pong_and_close_seen_by_two_subscribers() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        first, second = stream.events(), stream.events()
        await (await server.ping(b"from server"))
        # The peer answers PONG_DELAY after the ping reached it: the round trip
        # measured is the peer's, and at least that long.
        rtt = await pings_answered_late(stream.ping(b"from client"), server, PONG_DELAY)
        assert rtt >= PONG_DELAY
        await server.pong(b"unsolicited")
        await server.close(1001, "going away")
        assert await stream.read() == b""
        expected = [
            Ping(b"from server"),
            Pong(b"from client"),
            Pong(b"unsolicited"),
            CloseFrame(1001, "going away"),
            Closed(1001, "going away"),
        ]
        assert [event async for event in first] == expected
        assert [event async for event in second] == expected
        # A late subscriber still learns how the stream ended.
        assert [event async for event in stream.events()] == [Closed(1001, "going away")]


async def test_a_subscriber_that_never_reads_does_not_stall_the_stream() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, event_queue_size=4)
        idle = stream.events()
        for i in range(10):
            await (await server.ping(b"%d" % i))
            await server.send(b"%d\n" % i)
        lines = [await stream.readline() for _ in range(10)]
        assert lines == [b"%d\n" % i for i in range(10)]
        assert idle.pending() == 4
        assert idle.dropped == 6
        assert [event async for event in _take(idle, 4)] == [
            Ping(b"%d" % i) for i in range(6, 10)
        ]


async def _take(subscription: object, n: int):  # type: ignore[no-untyped-def]
    iterator = aiter(subscription)  # type: ignore[call-overload]
    for _ in range(n):
        yield await anext(iterator)


async def test_ping_returns_a_round_trip_time_and_concurrent_pings_do_not_collide() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        events = stream.events()
        # Every pong leaves the peer PONG_DELAY after the pings reached it.
        pings = asyncio.gather(*(stream.ping() for _ in range(5)))
        times: Any = await pings_answered_late(pings, server, PONG_DELAY)
        assert all(t >= PONG_DELAY for t in times)
        await server.close()
        assert await stream.read() == b""
        pongs = [event.data async for event in events if isinstance(event, Pong)]
        # Five pongs from the peer, each echoing its own random 4-byte payload.
        assert len(pongs) == 5
        assert len(set(pongs)) == 5
        assert all(len(data) == 4 for data in pongs)


async def test_backpressure_bounds_memory_when_the_reader_stops() -> None:
    async with ws_pair(client_options={"max_queue": 4}) as (client, server):
        reader = WsStream(client)
        writer = WsStream(server)
        chunk = b"z" * 65536
        sent = 0

        async def write_forever() -> None:
            nonlocal sent
            while True:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)

        task = asyncio.create_task(write_forever())
        # The writer must come to a stop: its drain() blocks on TCP backpressure.
        previous = -1
        async with asyncio.timeout(10):
            while sent != previous:
                previous = sent
                await asyncio.sleep(0.2)
        assert not task.done()
        # What sits between the two ends is bounded by websockets' queue (4 messages
        # of 64 KiB, a few more before it pauses) and the kernel's socket buffers.
        assert sent < 24 * 1024 * 1024
        assert len(reader._buffer) == 0  # pull-based: nothing read ahead
        assert len(client.recv_messages.frames) <= 8
        # Reading resumes the flow, and every byte arrives.
        received = 0
        target = sent + 10 * len(chunk)  # past what was stuck: the writer moved again
        async with asyncio.timeout(10):
            while received < target:
                received += len(await reader.read(1 << 20))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_concurrent_readers_are_refused() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        first = asyncio.create_task(stream.read(10))
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="already waiting"):
            await stream.read(10)
        await server.send(b"x")
        assert await asyncio.wait_for(first, 5) == b"x"


async def test_cancelled_read_loses_no_bytes() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        await server.send(b"abc")
        waiting = asyncio.create_task(stream.readexactly(6))
        await asyncio.sleep(0.02)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await server.send(b"def")
        assert await stream.readexactly(6) == b"abcdef"


async def test_extra_info_and_type_errors() -> None:
    async with ws_pair(server_options={"subprotocols": ["bin"]},
                       client_options={"subprotocols": ["bin"]}) as (client, server):
        stream = WsStream(client)
        assert stream.get_extra_info("connection") is client
        assert stream.get_extra_info("subprotocol") == "bin"
        assert stream.get_extra_info("peername") == server.local_address
        assert stream.get_extra_info("sockname") == client.local_address
        assert stream.get_extra_info("nonexistent", "dflt") == "dflt"
    with pytest.raises(TypeError, match="ClientConnection or ServerConnection"):
        WsStream(object())
    with pytest.raises(ValueError, match="text must be one of"):
        async with ws_pair() as (client, _):
            WsStream(client, text="maybe")  # type: ignore[arg-type]


async def test_server_and_client_streams_talk_both_ways() -> None:
    async with ws_pair() as (client, server):
        a, b = WsStream(client), WsStream(server)
        payload = os.urandom(300_000)

        async def echo() -> None:
            while data := await b.read(7000):
                b.write(data)
                await b.drain()

        echo_task = asyncio.create_task(echo())
        a.write(payload)
        await a.drain()
        # A WebSocket close is not a TCP half-close: once the peer gets our close
        # frame it replies and can send nothing more. So read the echo first.
        back = await asyncio.wait_for(a.readexactly(len(payload)), 10)
        assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()
        await a.aclose()
        await asyncio.wait_for(echo_task, 5)
        assert b.at_eof()


async def test_concurrent_drains_take_turns_and_a_cancelled_one_passes_its_turn_on() -> None:
    """drain() is first come, first served without an asyncio.Lock: writes from tasks
    that drain concurrently, some cancelled while waiting, arrive whole, in order."""
    async with ws_pair(client_options={"write_limit": 1024}) as (client, server):
        stream = WsStream(client, write_chunk_size=4096)
        reader = WsStream(server)
        sent = bytearray()

        async def writer(tag: int) -> None:
            chunk = bytes([tag]) * (3000 + tag)
            stream.write(chunk)
            sent.extend(chunk)
            await stream.drain()

        tasks = [asyncio.ensure_future(writer(tag)) for tag in range(40)]
        await asyncio.sleep(0)
        for task in tasks[5::7]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(stream.drain(), 5)
        assert stream.write_buffer_size == 0
        received = await asyncio.wait_for(reader.readexactly(len(sent)), 5)
        assert received == bytes(sent)


# The websockets backend's fast paths (wsframed/backends/websockets.py) ------------


async def test_websockets_fast_paths_are_in_use_with_this_release() -> None:
    """A websockets release that changes the internals they use falls back silently
    (to recv() and send()); this test is what notices."""
    async with ws_pair() as (client, _server):
        stream = WsStream(client)
        assert "_batched_receive" in stream._receive_message.__qualname__
        assert "_direct_send" in stream._send_message.__qualname__


async def test_queued_messages_are_taken_together_in_order_around_text_and_fragments() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, text="bytes")

        async def fragments() -> AsyncIterator[bytes]:
            yield b"e"
            yield b"f"

        for message in (b"a", b"b", "c", b"d"):
            await server.send(message)
        await server.send(fragments())
        await server.send(b"g")
        await asyncio.sleep(0.05)  # everything has arrived and waits in the queue
        assert await asyncio.wait_for(stream.readexactly(7), 5) == b"abcdefg"


async def test_queued_messages_are_taken_up_to_16_kib_at_a_time() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        for i in range(64):
            await server.send(bytes([i]) * 1024)
        await asyncio.sleep(0.05)
        assert await stream.read(1) == b"\x00"
        # 16 whole messages of 1 KiB, the 17th stays queued in websockets.
        assert len(stream._buffer) == 16 * 1024 - 1
        rest = await asyncio.wait_for(stream.readexactly(64 * 1024 - 1), 5)
        assert rest == b"".join(bytes([i]) * 1024 for i in range(64))[1:]


async def test_many_small_messages_keep_flow_control_working() -> None:
    """Taking queued frames tells websockets' flow control, as recv() does: a reader
    that paused the transport resumes it (forgetting would stall this transfer)."""
    async with ws_pair(client_options={"max_queue": 4}) as (client, server):
        stream = WsStream(client)
        count = 20_000

        async def send() -> None:
            for i in range(count):
                await server.send(b"%d\n" % i)

        sender = asyncio.create_task(send())
        await asyncio.sleep(0.2)  # the client's queue fills and pauses reading
        assert client.recv_messages.paused
        lines = [await asyncio.wait_for(stream.readline(), 5) for _ in range(count)]
        await asyncio.wait_for(sender, 5)
        assert lines == [b"%d\n" % i for i in range(count)]
        assert not client.recv_messages.paused


async def test_direct_send_waits_for_a_fragmented_message_sent_by_other_code() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        release = asyncio.Event()

        async def fragments() -> AsyncIterator[bytes]:
            yield b"x"
            await release.wait()
            yield b"y"

        other = asyncio.create_task(client.send(fragments()))
        await asyncio.sleep(0.05)
        stream.write(b"zz")
        drain = asyncio.create_task(stream.drain())
        await asyncio.sleep(0.05)
        assert not drain.done()  # a frame now would land inside the fragmented message
        release.set()
        await asyncio.wait_for(asyncio.gather(other, drain), 5)
        assert await asyncio.wait_for(server.recv(), 5) == b"xy"
        assert await asyncio.wait_for(server.recv(), 5) == b"zz"

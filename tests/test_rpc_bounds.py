"""RpcPeer's bounds hold per message and every call ends (issue 14 item 7, issue 22 item 7).

- the request backlog: ``max_concurrency`` without calls of ours in flight (then the
  reader stops reading), ``16 * max_concurrency`` with them (then ``BusyError``),
  checked per request even when one WebSocket message carries thousands;
- this side's calls: at most ``max_pending`` in flight, each bounded by its timeout
  (60 s by default) for a slot and for its response;
- a failed flush is kept: every later call raises that same error object.
"""

from __future__ import annotations

import asyncio
import math
import socket
import struct
from collections import deque
from typing import Any

import pytest

from wsframed import ConnectionClosed, Framed
from wsframed.codecs import MsgpackCodec
from wsframed.rpc import DEFAULT_REQUEST_TIMEOUT, RemoteError, RpcPeer

from .conftest import framed_pair, tcp_pair, wait_for

pytestmark = pytest.mark.timeout(60)


class PeakDeque(deque[Any]):
    """A deque that remembers the longest it has been."""

    peak = 0

    def append(self, item: Any) -> None:
        super().append(item)
        self.peak = max(self.peak, len(self))


async def recv_n(raw: Framed[Any], n: int) -> list[Any]:
    return [await raw.recv() for _ in range(n)]


async def test_the_backlog_stops_at_max_concurrency_within_one_message() -> None:
    """2,000 requests in one message, 4 handlers blocked: exactly 4 more are queued."""
    async with framed_pair("ws", MsgpackCodec()) as (raw, b):
        server = RpcPeer(b, max_concurrency=4)
        server._backlog = backlog = PeakDeque()
        gate = asyncio.Event()

        @server.method
        async def block(i: int) -> int:
            await gate.wait()
            return i

        async with server, asyncio.timeout(30):
            await raw.send_all([[0, i, "block", [i]] for i in range(2000)])
            await wait_for(lambda: len(backlog) == 4)
            await asyncio.sleep(0.2)  # room for the reader to go on, were it to
            assert backlog.peak == 4  # was 1,996: the bound was checked per read
            assert server._running == 4
            gate.set()
            replies = await recv_n(raw, 2000)
        assert sorted(r[1] for r in replies) == list(range(2000))
        assert all(r == [1, r[1], None, r[1]] for r in replies)
        assert backlog.peak == 4


async def test_with_a_call_in_flight_the_backlog_stops_at_16x_then_refuses() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (raw, b):
        server = RpcPeer(b, max_concurrency=4)
        server._backlog = backlog = PeakDeque()
        gate = asyncio.Event()

        @server.method
        async def block(i: int) -> int:
            await gate.wait()
            return i

        async with server, asyncio.timeout(30):
            held = asyncio.create_task(server.call("hold"))  # the raw side never answers
            assert await raw.recv() == [0, 0, "hold", []]
            await raw.send_all([[0, i, "block", [i]] for i in range(2000)])
            refused = await recv_n(raw, 2000 - 4 - 64)
            assert backlog.peak == 64
            assert [r[1] for r in refused] == list(range(68, 2000))
            assert {r[2] for r in refused} == {"BusyError: 64 requests already queued"}
            gate.set()
            answered = await recv_n(raw, 68)
            assert sorted(r[3] for r in answered) == list(range(68))
            await raw.send([1, 0, None, "held"])
            assert await held == "held"
        assert backlog.peak == 64


# Calls that are never answered ------------------------------------------------------


async def test_the_default_timeout_ends_a_call_the_peer_never_answers() -> None:
    async with framed_pair("ws", MsgpackCodec()) as (a, raw):
        assert RpcPeer(a).request_timeout == DEFAULT_REQUEST_TIMEOUT == 60.0
        async with RpcPeer(a, request_timeout=0.2) as client, asyncio.timeout(30):
            with pytest.raises(TimeoutError) as timed_out:
                await client.call("ping", 1)
            assert str(timed_out.value) == "no response to 'ping' (msgid 0) within 0.2 s"
            assert await raw.recv() == [0, 0, "ping", [1]]  # it was sent, never answered
            assert client.in_flight == 0


async def test_max_pending_calls_are_sent_the_rest_wait_for_a_slot() -> None:
    async with (
        framed_pair("ws", MsgpackCodec()) as (a, raw),
        RpcPeer(a, max_pending=3, request_timeout=math.inf) as client,
        asyncio.timeout(30),
    ):
        calls = [asyncio.create_task(client.call("twice", i)) for i in range(10)]
        first = await recv_n(raw, 3)
        assert first == [[0, i, "twice", [i]] for i in range(3)]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(raw.recv(), 0.3)  # nothing more is sent...
        assert client.in_flight == 3
        assert not any(call.done() for call in calls)
        await raw.send([1, 1, None, 2])  # ... until one is answered: one more goes
        assert await raw.recv() == [0, 3, "twice", [3]]
        assert client.in_flight == 3
        for answered, sent in [(0, 4), (2, 5), (3, 6), (4, 7), (5, 8), (6, 9)]:
            await raw.send([1, answered, None, 2 * answered])
            assert await raw.recv() == [0, sent, "twice", [sent]]
            assert client.in_flight == 3
        for answered in (7, 8, 9):
            await raw.send([1, answered, None, 2 * answered])
        assert await asyncio.gather(*calls) == [2 * i for i in range(10)]


async def test_a_call_waiting_for_a_slot_times_out_unsent() -> None:
    async with (
        framed_pair("ws", MsgpackCodec()) as (a, raw),
        RpcPeer(a, max_pending=1) as client,
        asyncio.timeout(30),
    ):
        first = asyncio.create_task(client.call("m", 1, timeout=math.inf))
        assert await raw.recv() == [0, 0, "m", [1]]
        with pytest.raises(TimeoutError) as timed_out:
            await client.call("m", 2, timeout=0.1)
        assert str(timed_out.value) == (
            "no free slot for a call to 'm' within 0.1 s: 1 calls in flight (max_pending=1)"
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(raw.recv(), 0.3)  # the second call was never sent
        await raw.send([1, 0, "boom", None])
        with pytest.raises(RemoteError, match="boom"):
            await first
        assert client.in_flight == 0


# Issue 22, behaviour 7: a failed flush is kept ------------------------------------------


async def test_a_failed_flush_is_kept_and_every_later_call_raises_the_same_error() -> None:
    """The writer's TCP connection is reset by its peer; the reader is another stream."""
    async with tcp_pair() as ((_, writer), (_, server_writer)):
        sock = server_writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server_writer.transport.abort()  # RST: every write of this side fails from now on
        await wait_for(writer.transport.is_closing)
        peer = RpcPeer(Framed.from_streams(asyncio.StreamReader(), writer, MsgpackCodec()))
        async with asyncio.timeout(30):
            with pytest.raises(ConnectionClosed) as first:
                await peer.call("m")
            error = first.value
            assert error.code == 1006
            assert isinstance(error.__cause__, ConnectionError)
            for _ in range(3):
                with pytest.raises(ConnectionClosed) as later:
                    await peer.call("m")
                assert later.value is error
                with pytest.raises(ConnectionClosed) as later:
                    await peer.notify("n")
                assert later.value is error
            assert peer.in_flight == 0
            await peer.aclose()

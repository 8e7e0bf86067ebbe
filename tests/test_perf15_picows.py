"""The picows backend's fast paths keep every message whole and in order.

A burst of messages sent in one turn of the loop leaves as the first message at once
and the rest framed by the backend in one write (masked from a client); binary
messages that arrive together are read as one batch. The peers are websockets, whose
parser checks every frame (a client frame not masked, a wrong length, fails it).
"""

from __future__ import annotations

import asyncio
import random

import pytest
from websockets.exceptions import ConnectionClosedOK

from wsframed import WsStream

from .picows_pairs import PICOWS_BACKENDS, picows_pair

pytestmark = pytest.mark.timeout(20)

# Sizes on each side of the frame header's length forms (7 bits, 16 bits, 64 bits),
# about 200 KiB in all: more than one write's worth of held messages.
SIZES = [1, 2, 125, 126, 127, 65535, 65536, 70000, 3, 125]


def payloads() -> list[bytes]:
    rng = random.Random(15)
    return [rng.randbytes(size) for size in SIZES]


@pytest.fixture(params=PICOWS_BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_burst_in_one_turn_reaches_the_peer_message_for_message(kind: str) -> None:
    sent = payloads()
    async with picows_pair(kind) as (conn, peer):
        WsStream(conn)
        assert all(conn.send_nowait(data) for data in sent)  # no await: one turn
        received = [await asyncio.wait_for(peer.recv(), 5) for _ in sent]
        assert [len(data) for data in received] == SIZES
        assert received == sent


async def test_messages_held_in_a_turn_leave_before_its_close_frame(kind: str) -> None:
    sent = payloads()
    async with picows_pair(kind) as (conn, peer):
        WsStream(conn)
        for data in sent:
            assert conn.send_nowait(data)
        conn.start_close(1000, "done")  # same turn: the held messages go first
        received = [await asyncio.wait_for(peer.recv(), 5) for _ in sent]
        with pytest.raises(ConnectionClosedOK):  # then the close frame, nothing else
            await asyncio.wait_for(peer.recv(), 5)
        assert received == sent
        assert (peer.close_code, peer.close_reason) == (1000, "done")


async def test_batched_binary_messages_keep_their_order_around_others(kind: str) -> None:
    async with picows_pair(kind) as (conn, peer):
        stream = WsStream(conn, text="bytes")
        # Sent without a wait between them, so they arrive in one read.
        await peer.send(b"a")
        await peer.send(b"b")
        await peer.send([b"c", b"d"])  # fragmented: its own entry
        await peer.send(b"e")  # after it, not in the batch of a and b
        await peer.send("f")  # text, joining the stream as its UTF-8 bytes
        await peer.send(b"g")
        assert await asyncio.wait_for(stream.readexactly(7), 5) == b"abcdefg"


async def test_a_batch_already_received_takes_no_more_messages(kind: str) -> None:
    async with picows_pair(kind) as (conn, peer):
        stream = WsStream(conn)
        await peer.send(b"a")
        assert await asyncio.wait_for(stream.read(100), 5) == b"a"
        await peer.send(b"b")  # a new batch: the one received is gone
        assert await asyncio.wait_for(stream.read(100), 5) == b"b"

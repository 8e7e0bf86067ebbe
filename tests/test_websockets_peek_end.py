"""The websockets backend's ``peek_end()`` against a queue of empty binary messages.

``WsStream.at_eof()`` and ``read(0)`` ask the backend whether only the end of the
connection is left, looking past the empty binary messages still queued. A peer
can queue tens of thousands of them (websockets parses a whole received chunk before
``max_queue`` pauses reading); scanned again on every call, a loop of such calls was
quadratic. Exact counts of the frames visited, not times.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from typing import Any

from wsframed import WsStream

from .conftest import wait_for, ws_pair


class CountingDeque(deque[Any]):
    """websockets' frame queue, counting the frames a scan visits."""

    visited = 0

    def __iter__(self) -> Iterator[Any]:
        for frame in super().__iter__():
            CountingDeque.visited += 1
            yield frame

    def __reversed__(self) -> Iterator[Any]:
        for frame in super().__reversed__():
            CountingDeque.visited += 1
            yield frame


async def test_each_queued_frame_is_scanned_once_by_repeated_calls() -> None:
    # max_queue=None: websockets reads on past 16 queued frames, so that frames sent
    # later arrive while the 1,000 are still queued.
    async with ws_pair(server_options={"max_queue": None}) as (client, server):
        queue = CountingDeque(server.recv_messages.frames.queue)
        server.recv_messages.frames.queue = queue
        stream = WsStream(server)
        for _ in range(1000):  # one write: websockets queues them all
            client.protocol.send_binary(b"")
        client.send_data()
        await wait_for(lambda: len(queue) == 1000)
        CountingDeque.visited = 0
        for _ in range(100):
            assert stream.at_eof() is False  # the connection is open
            assert await stream.read(0) == b""
        assert CountingDeque.visited == 1000  # 200,000 before: 1,000 per call
        for _ in range(10):
            client.protocol.send_binary(b"")
        client.send_data()
        await wait_for(lambda: len(queue) == 1010)
        assert stream.at_eof() is False
        assert CountingDeque.visited == 1010  # only the new ones
        await client.send(b"x")
        await wait_for(lambda: len(queue) == 1011)
        for _ in range(100):
            assert stream.at_eof() is False
        assert CountingDeque.visited == 1011  # data ahead of the end: known from then on
        assert await asyncio.wait_for(stream.read(10), 5) == b"x"
        assert stream.at_eof() is False


async def test_the_end_behind_queued_empty_messages_is_seen() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(server)
        await client.send(b"")
        frames = server.recv_messages.frames.queue
        await wait_for(lambda: len(frames) == 1)
        assert stream.at_eof() is False  # scanned: one empty message, still open
        await client.send(b"")
        await client.close()
        await wait_for(lambda: server.protocol.close_rcvd is not None)
        await wait_for(lambda: stream.at_eof())  # the new frame is scanned, then the end
        assert len(frames) == 2
        assert await asyncio.wait_for(stream.read(), 5) == b""


async def test_a_message_behind_the_scanned_empty_ones_keeps_the_stream_open() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(server)
        await client.send(b"")
        await client.send(b"")
        frames = server.recv_messages.frames.queue
        await wait_for(lambda: len(frames) == 2)
        assert stream.at_eof() is False
        await client.send(b"data")
        await client.close()
        await wait_for(lambda: server.protocol.close_rcvd is not None)
        assert stream.at_eof() is False  # b"data" is behind the empty ones
        assert await asyncio.wait_for(stream.read(), 5) == b"data"
        assert stream.at_eof() is True

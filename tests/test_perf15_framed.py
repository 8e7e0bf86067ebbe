"""Framed's receiving budget counted when frames are queued, not per call.

A frame taken from the queue is a pop: the budget was charged for it when it was
queued. The loop still gets exactly one turn per ``BUDGET`` receiving calls, whatever
mix of ``recv``, ``async for`` and ``recv_many`` takes the frames; the frames before an
error still come first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import pytest

from wsframed import Framed, IncompleteFrame
from wsframed.checkpoint import BUDGET
from wsframed.codecs import LengthPrefixedCodec

LENGTH = LengthPrefixedCodec()

pytestmark = pytest.mark.timeout(20)


class ChunkStream:
    """Reads return the chunks given, then the end of stream; nothing ever waits."""

    def __init__(self, *chunks: bytes):
        self.chunks = list(chunks)

    async def read(self, n: int = -1) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass


def frames(count: int) -> list[bytes]:
    return [b"%d" % i for i in range(count)]


def framed_of(*chunks: list[bytes]) -> Framed[bytes]:
    return Framed(ChunkStream(*(b"".join(map(LENGTH.encode, c)) for c in chunks)), LENGTH)


class Turns:
    count = 0


@asynccontextmanager
async def counting_turns() -> AsyncIterator[Turns]:
    """Count the turns the loop gives another task (its first one excluded)."""
    turns = Turns()

    async def tick() -> None:
        while True:
            await asyncio.sleep(0)
            turns.count += 1

    task = asyncio.create_task(tick())
    await asyncio.sleep(0)  # it starts, and waits for its next turn
    try:
        yield turns
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_async_for_yields_once_per_budget_also_for_the_last_chunk() -> None:
    # 5 * BUDGET frames in the one chunk before the end of stream.
    framed = framed_of(frames(5 * BUDGET))
    async with counting_turns() as turns:
        received = [item async for item in framed]
        taken = turns.count
    assert received == frames(5 * BUDGET)
    # One turn per BUDGET calls: the 5 * BUDGET + 1 calls (the last one ends the
    # iteration, after a turn of its own before it raises) give 5 + 1.
    assert taken == 6


async def test_recv_many_between_recv_calls_counts_as_one_call() -> None:
    framed = framed_of(frames(5 * BUDGET), frames(1))
    async with counting_turns() as turns:
        first = [await framed.recv() for _ in range(10)]  # the first call reads
        many = await framed.recv_many()  # every frame decoded ahead: one call
        after = [await framed.recv() for _ in range(BUDGET - 12)]
        assert turns.count == 0  # BUDGET - 1 calls so far
        one_more = await framed.recv()  # the BUDGET-th call yields first
        assert turns.count == 1
    assert [*first, *many, *after, one_more] == frames(11 + len(many) + BUDGET - 12)
    assert len(many) == 246  # 256 decoded ahead, 10 taken before


async def test_recv_many_of_part_of_the_queue_leaves_the_rest_charged() -> None:
    framed = framed_of(frames(5 * BUDGET))
    async with counting_turns() as turns:
        first = await framed.recv()  # reads; queues the next BUDGET - 1, charged
        part = await framed.recv_many(5)
        rest = [await framed.recv() for _ in range(BUDGET - 3)]
        assert turns.count == 0  # BUDGET - 1 calls so far
        last = await framed.recv()  # the BUDGET-th call yields first
        assert turns.count == 1
    assert [first, *part, *rest, last] == frames(BUDGET + 4)


async def test_the_error_at_the_end_of_stream_comes_after_every_frame_before_it() -> None:
    cut = b"".join(map(LENGTH.encode, frames(3 * BUDGET))) + b"\x00\x00\x00\x09ab"
    framed = Framed(ChunkStream(cut), LENGTH)
    received = [await framed.recv() for _ in range(3 * BUDGET)]
    with pytest.raises(IncompleteFrame):
        await framed.__anext__()
    with pytest.raises(IncompleteFrame):  # kept for good
        await framed.recv()
    with pytest.raises(IncompleteFrame):
        await framed.recv_many()
    assert received == frames(3 * BUDGET)


async def test_recv_many_gets_the_last_frames_before_the_error_at_the_end() -> None:
    cut = b"".join(map(LENGTH.encode, frames(3 * BUDGET))) + b"\x00\x00\x00\x09ab"
    framed = Framed(ChunkStream(cut), LENGTH)
    assert await framed.recv_many() == frames(3 * BUDGET)  # decoded at the end of stream
    with pytest.raises(IncompleteFrame) as caught:
        await framed.recv_many()
    assert (caught.value.pending, caught.value.offset) == (6, 1234)  # 192 frames: 4 + 1-3

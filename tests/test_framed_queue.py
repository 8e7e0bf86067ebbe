"""Framed's receive queue: frames decoded in windows of DECODE_AHEAD, queued a budget at a time.

What the caller gets from ``recv()``, ``async for`` and ``recv_many()`` in every mix:
each frame once and in order; ``recv_many()`` returns what is queued plus the rest of
the window under way, never more than ``max_items``; a stored error, and the frames a
resyncing decoder holds after it, come without waiting for more bytes; frames a
decoder gives only at the end of stream are delivered; a ``recv_many()`` call counts
in the receiving budget like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TypeVar

import pytest

from wsframed import EndOfStream, Framed, FrameTooLarge, IncompleteFrame
from wsframed.checkpoint import BUDGET
from wsframed.codecs import LengthPrefixedCodec, LinesCodec

from .test_perf15_framed import counting_turns

LENGTH = LengthPrefixedCodec(max_frame_size=10)
T = TypeVar("T")

pytestmark = pytest.mark.timeout(20)


class ChunkStream:
    """Reads return the chunks given (an exception instance is raised), then the end of
    stream, or, with ``stay_open``, wait for ever; nothing else ever waits."""

    def __init__(self, *chunks: bytes | Exception, stay_open: bool = False):
        self.chunks = list(chunks)
        self.stay_open = stay_open
        self.reads = 0

    async def read(self, n: int = -1) -> bytes:
        self.reads += 1
        if self.chunks:
            chunk = self.chunks.pop(0)
            if isinstance(chunk, Exception):
                raise chunk
            return chunk
        if self.stay_open:
            await asyncio.Event().wait()
        return b""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def frames(start: int, stop: int) -> list[bytes]:
    return [b"%d" % i for i in range(start, stop)]


def encoded(items: list[bytes]) -> bytes:
    return b"".join(map(LENGTH.encode, items))


async def take(framed: Framed[T], how: str) -> list[T]:
    """The next frame (``recv``, ``async for``) or frames (``recv_many``)."""
    if how == "recv":
        return [await framed.recv()]
    if how == "async for":
        return [await framed.__anext__()]
    return await framed.recv_many()


# The window: recv_many() returns the queue and the rest of the window under way.


async def test_recv_many_returns_the_queue_then_the_rest_of_the_window_at_most_max_items() -> None:
    framed = Framed(ChunkStream(encoded(frames(0, 600))), LENGTH)
    first = await framed.recv()  # window 0-255: 0 taken, 1-63 queued
    part = await framed.recv_many(100)  # 1-63 queued, then 64-100 of the window
    rest = await framed.recv_many()  # 101-255: the rest of the window
    window = await framed.recv_many()  # a new one: 256-511
    last = await framed.recv_many()
    assert first == b"0"
    assert part == frames(1, 101)
    assert rest == frames(101, 256)
    assert window == frames(256, 512)
    assert last == frames(512, 600)


async def test_recv_many_at_the_end_of_a_window_returns_only_the_queue() -> None:
    # A first chunk of one frame leaves the budget at BUDGET - 1 calls, so the second
    # chunk's window of 256 is queued 62, 64, 64, 64, then 2: the last of those 256
    # calls takes one and leaves one queued, the window's last.
    framed = Framed(ChunkStream(encoded(frames(0, 1)), encoded(frames(1, 601))), LENGTH)
    taken = [await framed.recv() for _ in range(256)]
    queued = await framed.recv_many()
    after = await framed.recv_many()  # a new window
    assert taken == frames(0, 256)
    assert queued == [b"256"]
    assert after == frames(257, 513)


async def test_a_new_chunk_starts_a_new_window() -> None:
    framed = Framed(ChunkStream(encoded(frames(0, 10)), encoded(frames(10, 600))), LENGTH)
    taken = [await framed.recv() for _ in range(11)]  # the first chunk, then one
    rest = await framed.recv_many()
    assert taken == frames(0, 11)
    assert rest == frames(11, 266)  # the second chunk's window of 256, one taken


# Errors, and what a decoder holds after one, come without another read.


@pytest.mark.parametrize("how", ["recv", "async for", "recv_many"])
async def test_a_stored_error_is_raised_without_waiting_for_more_bytes(how: str) -> None:
    good = frames(0, 3)
    stream = ChunkStream(encoded(good) + b"\x00\x00\x00\x0b", stay_open=True)
    framed = Framed(stream, LENGTH)
    got: list[bytes] = []
    async with asyncio.timeout(5):
        while len(got) < len(good):
            got += await take(framed, how)
        with pytest.raises(FrameTooLarge) as caught:
            await take(framed, how)
    assert got == good
    assert (caught.value.size, caught.value.limit) == (11, 10)
    assert stream.reads == 1


@pytest.mark.parametrize("how", ["recv", "async for", "recv_many"])
async def test_a_resyncing_decoder_gives_what_it_holds_after_an_error_without_a_read(
    how: str,
) -> None:
    codec = LinesCodec(max_frame_size=4, on_overflow="discard")
    stream = ChunkStream(b"ab\ntoolong\ncd\nef\n", stay_open=True)
    framed = Framed(stream, codec)
    async with asyncio.timeout(5):
        before = await take(framed, how)
        with pytest.raises(FrameTooLarge) as caught:
            await take(framed, how)
        after = await take(framed, how)
        if how != "recv_many":
            after += await take(framed, how)
    assert (before, after) == (["ab"], ["cd", "ef"])
    assert caught.value.offset == 3
    assert stream.reads == 1


@pytest.mark.parametrize("how", ["recv", "async for", "recv_many"])
async def test_a_resyncing_decoder_that_holds_nothing_after_an_error_reads_on(how: str) -> None:
    codec = LinesCodec(max_frame_size=4, on_overflow="discard")
    stream = ChunkStream(b"ab\ntoolong\n", b"cd\n")
    framed = Framed(stream, codec)
    before = await take(framed, how)
    with pytest.raises(FrameTooLarge):
        await take(framed, how)
    after = await take(framed, how)
    assert (before, after, stream.reads) == (["ab"], ["cd"], 2)


@pytest.mark.parametrize("how", ["recv", "recv_many"])
async def test_a_read_that_fails_after_a_partial_frame_raises_its_error(how: str) -> None:
    lost = ConnectionResetError("the peer reset the connection")
    framed = Framed(ChunkStream(encoded(frames(0, 1))[:3], lost), LENGTH)
    with pytest.raises(ConnectionResetError) as caught:
        await (framed.recv() if how == "recv" else framed.recv_many())
    assert caught.value is lost


async def test_the_end_of_stream_after_a_partial_frame_raises_incomplete_frame() -> None:
    framed = Framed(ChunkStream(encoded(frames(0, 1))[:3]), LENGTH)
    with pytest.raises(IncompleteFrame):
        await framed.recv()


async def test_after_aclose_recv_says_this_side_closed_it() -> None:
    framed = Framed(ChunkStream(encoded(frames(0, 1))), LENGTH)
    assert await framed.recv() == b"0"
    await framed.aclose()
    with pytest.raises(EndOfStream) as caught:
        await framed.recv()
    assert str(caught.value) == (
        "this Framed was closed with aclose() on this side: nothing more will be "
        "received (the frames that arrived before were delivered)"
    )


# A decoder that gives at most PER_PASS frames each time it is iterated (the protocol
# asks for every complete frame; nothing is lost with one that gives fewer): the
# frames it still holds at the end of stream are delivered, all in one window.

PER_PASS = 300


class BatchingDecoder:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.partial = b""

    def feed(self, data: bytes) -> None:
        *complete, self.partial = (self.partial + data).split(b"\n")
        self.lines += complete

    def __iter__(self) -> Iterator[bytes]:
        batch, self.lines = self.lines[:PER_PASS], self.lines[PER_PASS:]
        yield from batch

    def feed_eof(self) -> None:
        if self.lines or self.partial:
            raise IncompleteFrame(pending=len(self.lines) + len(self.partial), offset=0)


class BatchingCodec:
    max_frame_size = 100

    def encode(self, item: bytes) -> bytes:
        return item + b"\n"

    def decoder(self) -> BatchingDecoder:
        return BatchingDecoder()


LINES_600 = b"".join(b"%d\n" % i for i in range(600))


@pytest.mark.parametrize("how", ["recv", "async for"])
async def test_frames_a_decoder_gives_only_at_the_end_of_stream_are_delivered(how: str) -> None:
    framed: Framed[bytes] = Framed(ChunkStream(LINES_600), BatchingCodec())  # type: ignore[arg-type]
    if how == "recv":
        got = [await framed.recv() for _ in range(600)]
        with pytest.raises(EndOfStream):
            await framed.recv()
    else:
        got = [item async for item in framed]
    assert got == frames(0, 600)


async def test_recv_many_returns_every_frame_decoded_at_the_end_of_stream() -> None:
    framed: Framed[bytes] = Framed(ChunkStream(LINES_600), BatchingCodec())  # type: ignore[arg-type]
    first = await framed.recv_many()  # a window of the first pass
    second = await framed.recv_many()  # the rest of the first pass
    last = await framed.recv_many()  # the 300 the end of stream gives: one window
    with pytest.raises(EndOfStream):
        await framed.recv_many()
    assert (first, second, last) == (frames(0, 256), frames(256, 300), frames(300, 600))


# recv_many() is a receiving call like the others.


async def test_recv_many_yields_on_every_budgetth_call() -> None:
    framed = Framed(ChunkStream(*(encoded([b"%d" % i]) for i in range(BUDGET))), LENGTH)
    got: list[bytes] = []
    async with counting_turns() as turns:
        for _ in range(BUDGET - 1):
            got += await framed.recv_many()
        assert turns.count == 0
        got += await framed.recv_many()
        assert turns.count == 1
    assert got == frames(0, BUDGET)


@pytest.mark.parametrize("max_items", [0, -1])
async def test_recv_many_of_less_than_one_frame_is_the_callers_mistake(max_items: int) -> None:
    framed = Framed(ChunkStream(encoded(frames(0, 600))), LENGTH)
    first = await framed.recv()  # 1-62 queued, charged
    async with counting_turns() as turns:
        with pytest.raises(ValueError, match="max_items must be 1 or more") as caught:
            await framed.recv_many(max_items)
        assert turns.count == 1  # a turn before it raises
    assert str(caught.value) == (
        f"recv_many(max_items={max_items}): max_items must be 1 or more, or None for every "
        "frame decoded ahead (a caller's mistake)"
    )
    rest = [first]
    async with counting_turns() as turns:
        while len(rest) < 600:
            rest += await take(framed, "recv")
        assert turns.count == 9  # the budget as it was: a turn every BUDGET calls
    assert rest == frames(0, 600)


async def test_recv_many_of_one_frame_returns_one() -> None:
    framed = Framed(ChunkStream(encoded(frames(0, 600))), LENGTH)
    got = [await framed.recv_many(1) for _ in range(3)]  # one at a time from the pass
    assert got == [[b"0"], [b"1"], [b"2"]]

"""LengthPrefixedDecoder against a reference decoder written here, as simply as possible.

The decoder cuts frames straight from each chunk fed, in batches, completing a frame
cut short by a chunk's end from the next one, and collects a large body as a rope;
the reference keeps every byte in one ``bytes`` and reads the stream from its start
each time. Random frames (empty, small, a few of 128 KiB and more), random header
options and limits, a bad header or a cut-short frame at the end, fed in random cuts
with passes abandoned part-way: both must give the same frames, the same errors
(type, numbers, message) and the same end of stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wsframed.codecs.length import LengthPrefixedCodec
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame, WsFramedError

from .codec_checks import split_at

KiB = 1024


class Reference:
    """The length-prefixed format read from the start of everything received."""

    def __init__(self, size: int, order: Any, limit: int, includes: bool) -> None:
        self.size, self.order, self.includes = size, order, includes
        expressible = 256**size - 1 - (size if includes else 0)
        self.limit = min(limit, expressible)
        self.data = b""  # received and not yet yielded
        self.offset = 0  # stream offset of data[0]
        self.error: WsFramedError | None = None

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.data += data

    def frames(self) -> Iterator[bytes]:
        while True:
            if self.error is not None:
                raise self.error
            if len(self.data) < self.size:
                return
            declared = int.from_bytes(self.data[: self.size], self.order)
            length = declared - self.size if self.includes else declared
            if length < 0:
                self.error = DecodeError(
                    f"declared length {declared} is smaller than the"
                    f" {self.size}-byte header that includes it",
                    offset=self.offset,
                )
            elif length > self.limit:
                self.error = FrameTooLarge(length, self.limit, offset=self.offset)
            if self.error is not None:
                continue
            if len(self.data) < self.size + length:
                return
            frame = self.data[self.size : self.size + length]
            self.data = self.data[self.size + length :]
            self.offset += self.size + length
            yield frame  # taken: an abandoned pass leaves the rest in data

    def feed_eof(self) -> None:
        if self.error is not None:
            raise self.error
        if self.data:
            raise IncompleteFrame(len(self.data), offset=self.offset)


def describe(exc: BaseException) -> tuple[Any, ...]:
    """What a caller can see of a codec error."""
    numbers = tuple(
        getattr(exc, name, None) for name in ("offset", "size", "limit", "local", "pending")
    )
    return (type(exc), str(exc), *numbers)


def run(target: Any, steps: list[tuple[bytes, int | None]]) -> list[Any]:
    """Feed each chunk, then take that many frames (None: all) in one pass; then the
    end of stream. Returns the frames and errors seen, in order."""
    events: list[Any] = []
    errors: list[BaseException] = []

    def attempt(call: Any) -> bool:
        try:
            call()
        except (DecodeError, FrameTooLarge) as exc:
            events.append(describe(exc))
            errors.append(exc)
            return False
        return True

    frames = target.frames if isinstance(target, Reference) else target.__iter__
    for chunk, take in steps:
        attempt(lambda chunk=chunk: target.feed(chunk))
        if isinstance(chunk, bytearray):
            chunk[:] = bytes(len(chunk))  # the caller reuses its buffer
        attempt(lambda take=take: events.extend(islice(frames(), take)))
    attempt(lambda: events.extend(frames()))
    attempt(target.feed_eof)
    if errors and not isinstance(errors[-1], IncompleteFrame):
        # Failed for good: the same error object every time, from then on.
        failed = [e for e in errors if not isinstance(e, IncompleteFrame)]
        assert all(e is failed[0] for e in failed)
    return events


def wire(size: int, order: Any, includes: bool, bodies: list[bytes]) -> bytes:
    """The frames of ``bodies``; a length the header cannot hold is cut to fit."""
    out = []
    largest = 256**size - 1 - (size if includes else 0)
    for body in bodies:
        body = body[:largest]
        declared = len(body) + (size if includes else 0)
        out.append(declared.to_bytes(size, order) + body)
    return b"".join(out)


bodies = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=200, max_size=700),
    st.integers(0, 9 * KiB).map(lambda n: bytes([n % 251]) * n),
    st.integers(128 * KiB - 8, 160 * KiB).map(lambda n: bytes([n % 251]) * n),  # a rope
)


@settings(max_examples=400, deadline=None)
@given(
    size=st.sampled_from([1, 2, 4, 8]),
    order=st.sampled_from(["big", "little"]),
    includes=st.booleans(),
    limit=st.sampled_from([0, 5, 300, 9 * KiB, 150 * KiB, 1 << 20, 1 << 64]),
    frames=st.lists(
        st.one_of(st.lists(st.binary(max_size=40), min_size=50, max_size=300), bodies),
        max_size=6,
    ),
    tail=st.one_of(st.binary(max_size=12), st.integers(0, 2**64 - 1)),
    data=st.data(),
)
def test_the_decoder_matches_the_reference(
    size: int,
    order: Any,
    includes: bool,
    limit: int,
    frames: list[Any],
    tail: bytes | int,
    data: st.DataObject,
) -> None:
    flat = [b for item in frames for b in (item if isinstance(item, list) else [item])]
    if isinstance(tail, int):  # a header, maybe over the limit or under its own size
        tail = (tail % 256**size).to_bytes(size, order) + b"body"
    blob = wire(size, order, includes, flat) + tail  # a bad header, or a cut frame
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=24), label="cuts")
    chunks = split_at(blob, cuts)
    takes = data.draw(
        st.lists(
            st.one_of(st.none(), st.integers(0, 600)), min_size=len(chunks), max_size=len(chunks)
        ),
        label="takes",
    )
    steps = list(zip(chunks, takes, strict=True))
    codec = LengthPrefixedCodec(size, order, limit, length_includes_header=includes)
    expected = run(Reference(size, order, limit, includes), steps)
    # Every other chunk as a bytearray, overwritten once fed: the decoder copies it.
    steps = [(bytearray(chunk) if i % 2 else chunk, take) for i, (chunk, take) in enumerate(steps)]
    assert run(codec.decoder(), steps) == expected

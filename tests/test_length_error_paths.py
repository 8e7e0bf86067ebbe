"""LengthPrefixedCodec's decoder on its error and limit paths: the exact frames, offsets
and ``pending`` counts where a frame is collected in pieces or the stream ends inside one.

Written for mutants of wsframed/codecs/length.py that survived its own test file
(tools/mutation.py; docs/contributing.md, Testing).
"""

from __future__ import annotations

import struct

import pytest

from wsframed.codecs.length import LengthPrefixedDecoder
from wsframed.errors import IncompleteFrame

KiB = 1024


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def test_length_decoder_defaults_to_a_4_byte_big_endian_header_that_excludes_itself() -> None:
    """``LengthPrefixedDecoder()`` built directly has the codec's defaults (the
    ``length_size=4`` and ``length_includes_header=False`` defaults of its __init__)."""
    decoder = LengthPrefixedDecoder()
    decoder.feed(b"\x00\x00\x00\x03abc\x00\x00\x00\x00")
    assert list(decoder) == [b"abc", b""]


def test_the_frame_after_a_large_frame_collected_in_pieces_is_intact() -> None:
    """A body of 800 KiB (collected as a rope) and, in the same chunk as its last byte,
    the next frame: both decode exactly (``_join_rope`` resets the read position)."""
    big = bytes(range(256)) * (800 * KiB // 256)
    data = frame(big) + frame(b"next") + frame(b"")
    decoder = LengthPrefixedDecoder(max_frame_size=1024 * KiB)
    decoder.feed(data[: 64 * KiB])
    assert list(decoder) == []
    decoder.feed(data[64 * KiB : 150 * KiB])
    assert list(decoder) == []
    decoder.feed(data[150 * KiB :])
    assert list(decoder) == [big, b"next", b""]
    decoder.feed(frame(b"x")[:3])  # then a cut-short header: its offset counts every byte
    assert list(decoder) == []
    with pytest.raises(IncompleteFrame) as cut:
        decoder.feed_eof()
    assert (cut.value.pending, cut.value.offset) == (3, len(data))


def test_the_end_of_stream_inside_a_large_body_counts_every_byte_received() -> None:
    """The stream ends 300 KiB into a 1 MiB body that is being collected as a rope:
    ``pending`` is the header and every body byte received, at the frame's offset."""
    decoder = LengthPrefixedDecoder(max_frame_size=1024 * KiB)
    decoder.feed(frame(b"a"))
    received = frame(b"\xab" * 1024 * KiB)[: 4 + 300 * KiB]
    for start in range(0, len(received), 100 * KiB):
        decoder.feed(received[start : start + 100 * KiB])
        assert list(decoder) == ([b"a"] if start == 0 else [])
    with pytest.raises(IncompleteFrame) as cut:
        decoder.feed_eof()
    assert (cut.value.pending, cut.value.offset) == (4 + 300 * KiB, 5)

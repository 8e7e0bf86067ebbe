"""LinesCodec's decoder on its error and limit paths: lines at and over the limit,
inside batches, collected in pieces (a rope), discarded, and cut by the end of stream.

Written for mutants of wsframed/codecs/lines.py that survived its own test files
(tools/mutation.py; docs/contributing.md, Testing).
"""

from __future__ import annotations

import pytest

from wsframed.codecs import LinesCodec
from wsframed.errors import FrameTooLarge, IncompleteFrame

KiB = 1024


def test_lines_of_a_stateful_encoding_decode_one_by_one() -> None:
    """ISO-2022-JP: a line left in JIS X 0208 mode does not carry its shift state into
    the next line, whether the lines arrive in one chunk or one by one (only the
    stateless encodings are decoded a batch at a time: lines.py ``_whole``)."""

    # After the first line the rest of a chunk is decoded as a batch: line 2 is "\u4e9c"
    # in JIS X 0208 with no shift back to ASCII, line 3 is "ab".
    data = b"x\n\x1b$B0!\nab\n"
    for chunks in ([data], [data[:7], data[7:]]):
        decoder = LinesCodec(encoding="iso2022_jp").decoder()
        items = []
        for chunk in chunks:
            decoder.feed(chunk)
            items += list(decoder)
        assert items == ["x", "\u4e9c", "ab"]


def test_a_line_too_long_is_refused_at_the_byte_that_proves_it_even_when_it_is_a_cr() -> None:
    """limit 4: ``xxxxx\\r`` (6 bytes, no ``\\n`` yet) cannot become a line of 4 bytes
    or fewer, so it fails now, not when the next byte comes (lines.py, the
    ``pending > limit + 1`` test of an unterminated line)."""
    decoder = LinesCodec(max_frame_size=4).decoder()
    decoder.feed(b"ab\nxxxxx\r")
    lines = iter(decoder)
    assert next(lines) == "ab"
    with pytest.raises(FrameTooLarge) as refused:
        next(lines)
    error = refused.value
    assert (error.size, error.limit, error.at_least, error.offset) == (5, 4, True, 3)


@pytest.mark.parametrize("encoding", ["utf-8", None, "cp1252"])
def test_a_line_one_byte_over_the_limit_is_refused_inside_a_batch(encoding: str | None) -> None:
    """After the first line of a chunk the rest is split as a batch; a line of limit + 1
    bytes there is refused like the first line would be (lines.py ``_split``, the
    ``len(data) > limit + 1`` shortcut, for whole-batch, bytes and per-line decoding)."""
    cases = [(b"a\nccccc\n", [b"a"], 2), (b"a\nbbbb\r\nccccc\n", [b"a", b"bbbb"], 8)]
    codec = LinesCodec(max_frame_size=4, encoding=encoding)  # type: ignore[call-overload]
    for chunk, good, offset in cases:
        decoder = codec.decoder()
        decoder.feed(chunk)
        lines = iter(decoder)
        assert [next(lines) for _ in good] == [g.decode() if encoding else g for g in good]
        with pytest.raises(FrameTooLarge) as refused:
            next(lines)
        error = refused.value
        assert (error.size, error.limit, error.at_least, error.offset) == (5, 4, False, offset)


LONG = 200 * KiB  # past the 128 KiB from which an unterminated line is collected as a rope


@pytest.mark.parametrize(("tail", "fails"), [(b"", False), (b"\r", False), (b"x", True)])
def test_a_long_unterminated_line_at_the_limit(tail: bytes, fails: bool) -> None:
    """A line collected in pieces (a rope): ``limit`` bytes, or ``limit`` and a CR, may
    still end within the limit; ``limit + 1`` other bytes fail at once (lines.py
    ``_search_rope``, ``within``)."""
    decoder = LinesCodec(max_frame_size=LONG, encoding=None).decoder()
    decoder.feed(b"a\n")
    assert list(decoder) == [b"a"]
    for _ in range(LONG // (50 * KiB)):
        decoder.feed(b"y" * (50 * KiB))
        assert list(decoder) == []
    decoder.feed(tail)
    if fails:
        with pytest.raises(FrameTooLarge) as refused:
            list(decoder)
        error = refused.value
        assert (error.size, error.limit, error.at_least, error.offset) == (LONG + 1, LONG, True, 2)
        return
    assert list(decoder) == []
    decoder.feed(b"\nz\n")
    assert list(decoder) == [b"y" * LONG, b"z"]


def test_discard_resumes_at_a_newline_right_after_the_searched_bytes() -> None:
    """``on_overflow="discard"``, limit 4: the line ``xxxxxx`` has its ``\\n`` at
    limit + 2, the first byte the search for it did not cover; the next line survives
    (lines.py ``_overflow``, ``buf.find(_NL, pos + limit + 2)``)."""
    decoder = LinesCodec(max_frame_size=4, on_overflow="discard").decoder()
    decoder.feed(b"xxxxxx\nnext\n")
    with pytest.raises(FrameTooLarge) as refused:
        list(decoder)
    error = refused.value
    assert (error.size, error.limit, error.at_least, error.offset) == (5, 4, True, 0)
    assert list(decoder) == ["next"]


@pytest.mark.parametrize("middle", [0, 1])
def test_a_long_line_is_delivered_by_the_chunk_that_ends_it(middle: int) -> None:
    """A line collected in pieces: the chunk holding its ``\\n`` delivers it at once,
    whichever piece that is (lines.py ``_search_rope`` walks every new piece, from the
    first one after the rope starts)."""
    decoder = LinesCodec(max_frame_size=1024 * KiB, encoding=None).decoder()
    pieces = [b"y" * (130 * KiB), *[b"y" * (10 * KiB)] * middle, b"end\n"]
    for piece in pieces[:-1]:
        decoder.feed(piece)
        assert list(decoder) == []
    decoder.feed(pieces[-1])
    assert list(decoder) == [b"".join(pieces)[:-1]]


def test_the_end_of_stream_inside_a_long_line_counts_every_byte_received() -> None:
    """The stream ends inside a line being collected in pieces: ``pending`` is every
    byte of it received, at the line's offset (lines.py ``feed_eof``)."""
    decoder = LinesCodec(max_frame_size=1024 * KiB, encoding=None).decoder()
    for piece, lines in [(b"a\n", [b"a"]), (b"y" * (130 * KiB), []), (b"y" * (10 * KiB), [])]:
        decoder.feed(piece)
        assert list(decoder) == lines
    with pytest.raises(IncompleteFrame) as cut:
        decoder.feed_eof()
    assert (cut.value.pending, cut.value.offset) == (140 * KiB, 2)

"""LinesCodec: \\n-terminated lines, bounded memory, no rescanning, resync."""

from __future__ import annotations

import itertools
from typing import Any, assert_type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsframed.codecs import lines as lines_module
from wsframed.codecs.base import Codec
from wsframed.codecs.lines import LinesCodec, LinesDecoder
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame

from .codec_checks import (
    assert_chunk_invariant,
    consume_skipping_errors,
    decode_chunks,
    split_at,
    traceback_length,
)
from .codec_strategies import decode_events, draw_chunks

KIB = 1024
MIB = 1024 * KIB


class CountingBuffer(bytearray):
    """A decoder buffer that records the bytes its ``find`` and ``rfind`` examine.

    Ranges are kept as stream offsets (``shift`` follows the compactions), so a test
    can check that no byte is examined twice. (A batch's ``split`` works on a copy of
    bytes that neither examined.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.shift = 0
        self.ranges: list[tuple[int, int]] = []

    @property
    def searched(self) -> int:
        return sum(hi - lo for lo, hi in self.ranges)

    def assert_no_byte_examined_twice(self) -> None:
        ranges = sorted(r for r in self.ranges if r[1] > r[0])
        for (_, hi), (lo, _) in itertools.pairwise(ranges):
            assert hi <= lo, ranges

    def __delitem__(self, key: Any) -> None:
        assert isinstance(key, slice)
        assert key.start is None
        self.shift += len(range(*key.indices(len(self))))
        super().__delitem__(key)

    def _bounds(self, start: Any, end: Any) -> tuple[int, int]:
        lo = 0 if start is None else max(start, 0)
        hi = len(self) if end is None else min(end, len(self))
        return lo, max(hi, lo)

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:
        found = super().find(sub, start, end)
        lo, hi = self._bounds(start, end)
        if found >= 0:
            hi = found + 1
        self.ranges.append((self.shift + lo, self.shift + hi))
        return found

    def rfind(self, sub: Any, start: Any = None, end: Any = None) -> int:
        found = super().rfind(sub, start, end)
        lo, hi = self._bounds(start, end)
        if found >= 0:
            lo = found
        self.ranges.append((self.shift + lo, self.shift + hi))
        return found


def lines_of(data: bytes) -> list[str]:
    return decode_chunks(LinesCodec(), [data])


# -- configuration -------------------------------------------------------------------


def test_defaults_and_types() -> None:
    assert_type(LinesCodec(), LinesCodec[str])  # checked by mypy on this file
    assert_type(LinesCodec(None), LinesCodec[bytes])
    assert_type(LinesCodec(encoding=None).decoder(), LinesDecoder[bytes])
    text: Codec[str] = LinesCodec()
    raw: Codec[bytes] = LinesCodec(encoding=None)
    assert text.max_frame_size == 64 * KIB
    assert raw.max_frame_size == 64 * KIB
    codec = LinesCodec("UTF8", 10, "discard")
    assert (codec.encoding, codec.max_frame_size, codec.on_overflow) == ("utf-8", 10, "discard")
    assert LinesCodec().on_overflow == "error"
    assert LinesCodec(None).encoding is None
    assert isinstance(codec.decoder(), LinesDecoder)
    assert repr(codec) == "LinesCodec(encoding='utf-8', max_frame_size=10, on_overflow='discard')"


def test_settings_are_read_only() -> None:
    codec = LinesCodec()
    with pytest.raises(AttributeError):
        codec.max_frame_size = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        codec.encoding = "ascii"  # type: ignore[misc]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-le", "cp500"])
def test_encodings_that_change_newlines_are_refused(encoding: str) -> None:
    with pytest.raises(ValueError, match="encoding"):
        LinesCodec(encoding)


def test_unknown_encoding_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        LinesCodec("no-such-encoding")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="on_overflow"):
        LinesCodec(on_overflow="ignore")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="max_frame_size"):
        LinesCodec(max_frame_size=-1)
    with pytest.raises(TypeError, match="max_frame_size"):
        LinesCodec(max_frame_size=1.0)  # type: ignore[call-overload]


# -- encoding ------------------------------------------------------------------------


def test_encode_golden() -> None:
    assert LinesCodec().encode("hello") == b"hello\n"
    assert LinesCodec().encode("") == b"\n"
    assert LinesCodec().encode("caf\u00e9 \u2028") == "caf\u00e9 \u2028\n".encode()
    assert LinesCodec("latin-1").encode("caf\u00e9") == b"caf\xe9\n"
    assert LinesCodec(None).encode(b"raw\xff") == b"raw\xff\n"
    assert LinesCodec(None).encode(bytearray(b"ba")) == b"ba\n"
    assert LinesCodec(None).encode(memoryview(b"mv")) == b"mv\n"
    assert LinesCodec().encode("a\rb") == b"a\rb\n"  # a \r inside is kept


@pytest.mark.parametrize("line", ["a\nb", "\n", "end\r", "\r"])
def test_encode_refuses_lines_that_would_read_back_differently(line: str) -> None:
    with pytest.raises(ValueError, match="must not"):
        LinesCodec().encode(line)
    with pytest.raises(ValueError, match="must not"):
        LinesCodec(None).encode(line.encode())


def test_encode_type_errors() -> None:
    with pytest.raises(TypeError):
        LinesCodec().encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LinesCodec(None).encode("text")  # type: ignore[arg-type]


def test_encode_unencodable_is_a_value_error() -> None:
    assert issubclass(UnicodeEncodeError, ValueError)
    with pytest.raises(UnicodeEncodeError):
        LinesCodec("ascii").encode("caf\u00e9")
    with pytest.raises(UnicodeEncodeError):
        LinesCodec().encode("\ud800")


def test_encode_too_large_is_local_and_the_codec_still_works() -> None:
    codec = LinesCodec(max_frame_size=4)
    assert codec.encode("1234") == b"1234\n"
    with pytest.raises(FrameTooLarge) as info:
        codec.encode("12345")
    assert (info.value.size, info.value.limit, info.value.local) == (5, 4, True)
    with pytest.raises(FrameTooLarge) as info:
        codec.encode("\u00e9\u00e9\u00e9")  # 3 characters, 6 bytes
    assert info.value.size == 6
    assert codec.encode("ok") == b"ok\n"
    assert decode_chunks(codec, [codec.encode("ok")]) == ["ok"]


# -- decoding ------------------------------------------------------------------------


def test_decode_golden() -> None:
    assert lines_of(b"a\r\nb\n") == ["a", "b"]
    assert lines_of(b"\n\r\n") == ["", ""]
    assert lines_of(b"a\r\r\n") == ["a\r"]  # only one \r is part of the terminator
    assert lines_of(b"\ra\n") == ["\ra"]
    assert lines_of("caf\u00e9\n".encode()) == ["caf\u00e9"]
    assert decode_chunks(LinesCodec(None), [b"a\r\nb\xff\n"]) == [b"a", b"b\xff"]
    assert decode_chunks(LinesCodec("latin-1"), [b"caf\xe9\n"]) == ["caf\u00e9"]


def test_items_have_exact_types() -> None:
    assert all(type(x) is bytes for x in decode_chunks(LinesCodec(None), [b"a\nb\n"]))
    big = b"x" * 20_000 + b"\n"  # taken out through a memoryview
    assert decode_chunks(LinesCodec(None), [big]) == [big[:-1]]
    assert type(decode_chunks(LinesCodec(None), [big])[0]) is bytes
    assert decode_chunks(LinesCodec(), [big]) == [big[:-1].decode()]


def test_every_complete_line_is_yielded_in_one_pass() -> None:
    decoder = LinesCodec().decoder()
    decoder.feed(b"".join(b"%d\n" % i for i in range(1000)) + b"partial")
    assert list(decoder) == [str(i) for i in range(1000)]
    assert len(decoder._buf) == len(b"partial")  # compacted at the end of the pass
    assert list(decoder) == []


def test_stopping_early_keeps_the_rest() -> None:
    decoder = LinesCodec().decoder()
    decoder.feed(b"a\nb\nc")
    for line in decoder:
        assert line == "a"
        break
    decoder.feed(b"\n")
    assert list(decoder) == ["b", "c"]


def test_stopping_inside_a_batch_keeps_the_rest() -> None:
    decoder = LinesCodec().decoder()
    decoder.feed(b"a\nb\r\nc\nd\ne")  # "a" alone, then "b" to "d" in one batch
    taken: list[str] = []
    for line in decoder:
        taken.append(line)
        if len(taken) == 2:
            break
    assert taken == ["a", "b"]
    decoder.feed(b"\nf\n")
    assert list(decoder) == ["c", "d", "e", "f"]
    decoder.feed_eof()


@pytest.mark.parametrize("taken", [0, 1, 2, 3])
def test_a_pass_abandoned_at_any_line_keeps_the_rest_and_the_bad_line_after_it(
    taken: int,
) -> None:
    # "a" alone, then b, c, an undecodable line, d and e in one batch. A pass dropped
    # after any line (the last one before the bad line too, when its batch is used
    # up) loses none, and the next pass raises about the bad line, then resumes.
    decoder = LinesCodec().decoder()
    decoder.feed(b"a\nb\nc\n\xff\nd\ne\n")
    got = list(itertools.islice(iter(decoder), taken))  # the pass is dropped here
    with pytest.raises(DecodeError) as info:
        got.extend(decoder)
    assert got == ["a", "b", "c"]
    assert info.value.offset == 6
    assert list(decoder) == ["d", "e"]


@pytest.mark.parametrize("encoding", ["shift_jis", "cp1252", "latin-1", "ascii"])
def test_other_encodings(encoding: str) -> None:
    texts = {"shift_jis": "\u65e5\u672c", "ascii": "plain"}
    text = texts.get(encoding, "caf\u00e9")
    codec = LinesCodec(encoding)
    data = codec.encode(text) + codec.encode("x") + b"\r\n"
    assert_chunk_invariant(codec, data, [text, "x", ""])


def test_chunk_invariant_short() -> None:
    data = b"one\r\ntwo\n\nthree\r\r\n\xc3\xa9\n"
    assert_chunk_invariant(LinesCodec(), data, ["one", "two", "", "three\r", "\u00e9"])
    assert_chunk_invariant(
        LinesCodec(None, max_frame_size=6), data, [b"one", b"two", b"", b"three\r", b"\xc3\xa9"]
    )


def test_chunk_invariant_long() -> None:
    lines = [f"line {i} " * (i % 37) for i in range(400)] + ["x" * 60_000]
    data = b"".join(line.encode() + (b"\r\n" if i % 3 else b"\n") for i, line in enumerate(lines))
    assert_chunk_invariant(LinesCodec(), data, lines, rounds=10)


# -- limits --------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", None])
def test_a_line_of_exactly_the_limit_is_accepted(encoding: str | None) -> None:
    codec: Any = LinesCodec(encoding, max_frame_size=8)
    expected = "12345678" if encoding else b"12345678"
    for data in (b"12345678\n", b"12345678\r\n"):
        assert_chunk_invariant(codec, data, [expected])


def test_limit_plus_one_unterminated_bytes_fail_at_once() -> None:
    decoder = LinesCodec(max_frame_size=8).decoder()
    decoder.feed(b"12345678")
    assert list(decoder) == []
    decoder.feed(b"9")
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    exc = info.value
    assert (exc.size, exc.limit, exc.at_least, exc.local) == (9, 8, True, False)
    assert exc.offset == 0


def test_a_trailing_cr_may_wait_for_its_newline() -> None:
    decoder = LinesCodec(max_frame_size=8).decoder()
    decoder.feed(b"12345678\r")  # limit + 1 bytes, but the \r may end the line
    assert list(decoder) == []
    decoder.feed(b"\n")
    assert list(decoder) == ["12345678"]

    decoder = LinesCodec(max_frame_size=8).decoder()
    decoder.feed(b"12345678\r")
    assert list(decoder) == []
    decoder.feed(b"x")  # the \r was payload after all: 10 bytes
    with pytest.raises(FrameTooLarge):
        list(decoder)


def test_a_complete_overlong_line_reports_its_exact_size() -> None:
    decoder = LinesCodec(max_frame_size=8).decoder()
    decoder.feed(b"ok\n123456789\nmore\n")
    items: list[Any] = []
    with pytest.raises(FrameTooLarge) as info:
        items.extend(decoder)
    assert items == ["ok"]
    assert (info.value.size, info.value.at_least) == (9, False)
    assert info.value.offset == 3


def test_failed_decoder_reraises_the_same_error() -> None:
    decoder = LinesCodec(max_frame_size=4).decoder()
    decoder.feed(b"a\nbcdefgh\nok\n")
    items: list[Any] = []
    with pytest.raises(FrameTooLarge) as info:
        items.extend(decoder)
    assert items == ["a"]
    for call in (lambda: list(decoder), lambda: decoder.feed(b"x\n"), decoder.feed_eof):
        with pytest.raises(FrameTooLarge) as again:
            call()
        assert again.value is info.value
    assert len(decoder._buf) == 0  # memory released


def test_discard_mode_resumes_at_the_next_line() -> None:
    codec = LinesCodec(max_frame_size=4, on_overflow="discard")
    data = b"a\nbcdefgh\nok\r\n123456789012\r\n\nend\n"
    events = decode_events(codec, [data])
    expected = ["a", ("error", "FrameTooLarge", 2), "ok"]
    expected += [("error", "FrameTooLarge", 14), "", "end"]
    assert events == expected
    for i in range(len(data) + 1):  # same events however the stream is cut
        assert decode_events(codec, split_at(data, [i])) == expected
    assert decode_events(codec, [data[i : i + 1] for i in range(len(data))]) == expected


def test_discard_mode_at_end_of_stream_is_clean() -> None:
    decoder = LinesCodec(max_frame_size=4, on_overflow="discard").decoder()
    decoder.feed(b"123456789")
    with pytest.raises(FrameTooLarge):
        list(decoder)
    decoder.feed(b"more of the same line")
    assert list(decoder) == []
    decoder.feed_eof()  # the overlong line was already reported


@pytest.mark.parametrize("on_overflow", ["error", "discard"])
def test_memory_is_bounded_by_the_limit_not_the_line(on_overflow: Any) -> None:
    limit = 64 * KIB
    chunk = b"x" * (64 * KIB)
    decoder = LinesCodec(max_frame_size=limit, on_overflow=on_overflow).decoder()
    errors = 0
    peak = 0
    for _ in range(10 * MIB // len(chunk)):  # 10 MiB of a line that never ends
        try:
            decoder.feed(chunk)
            peak = max(peak, len(decoder._buf))
            list(decoder)
        except FrameTooLarge:
            errors += 1
            if on_overflow == "error":
                break
        peak = max(peak, len(decoder._buf))
    assert errors == 1
    assert peak <= limit + len(chunk)
    if on_overflow == "discard":
        assert len(decoder._buf) == 0  # the rest of the line is dropped, not buffered
        decoder.feed(b"tail\nnext\n")
        assert list(decoder) == ["next"]


def test_search_never_goes_further_than_the_limit() -> None:
    decoder = LinesCodec(max_frame_size=100).decoder()
    decoder._buf = buf = CountingBuffer()
    decoder.feed(b"x" * MIB + b"\n")
    with pytest.raises(FrameTooLarge):
        list(decoder)
    assert buf.searched <= 102


def test_no_byte_is_searched_twice() -> None:
    decoder = LinesCodec(None, max_frame_size=2 * MIB).decoder()
    decoder._buf = buf = CountingBuffer()
    line = bytes(range(11, 256)) * (MIB // 245)
    fed = 0
    for start in range(0, len(line), KIB):
        piece = line[start : start + KIB]
        decoder.feed(piece)
        fed += len(piece)
        assert list(decoder) == []
    decoder.feed(b"\n")
    fed += 1
    assert list(decoder) == [line]
    assert buf.searched <= fed
    buf.assert_no_byte_examined_twice()


@pytest.mark.parametrize("step", [7, 100, 4096])
def test_no_byte_is_searched_twice_across_many_lines(step: int) -> None:
    decoder = LinesCodec(max_frame_size=1000).decoder()
    decoder._buf = buf = CountingBuffer()
    data = b"".join(b"line %d\r\n" % i for i in range(2000))
    items: list[str] = []
    for start in range(0, len(data), step):
        decoder.feed(data[start : start + step])
        items.extend(decoder)
    assert items == [f"line {i}" for i in range(2000)]
    assert buf.searched <= len(data)
    buf.assert_no_byte_examined_twice()


# -- decode errors and end of stream -------------------------------------------------


def test_invalid_text_is_a_decode_error_and_decoding_continues() -> None:
    decoder = LinesCodec().decoder()
    decoder.feed(b"ok\n\xff\xfe\r\nnext\n")
    items: list[Any] = []
    with pytest.raises(DecodeError) as info:
        items.extend(decoder)
    assert items == ["ok"]
    assert info.value.offset == 3
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
    assert list(decoder) == ["next"]
    decoder.feed_eof()


def test_invalid_text_is_chunk_invariant() -> None:
    data = b"a\n\xc3\n\xc3\xa9\n\x80bad\r\nz\n"
    expected = ["a", ("error", "DecodeError", 2), "\u00e9", ("error", "DecodeError", 7), "z"]
    for i in range(len(data) + 1):
        assert decode_events(LinesCodec(), split_at(data, [i])) == expected


def test_feed_eof() -> None:
    decoder = LinesCodec().decoder()
    decoder.feed_eof()  # empty stream
    decoder.feed(b"abc\n")
    assert list(decoder) == ["abc"]
    decoder.feed_eof()  # ended on a boundary
    decoder.feed(b"de\r")
    assert list(decoder) == []
    with pytest.raises(IncompleteFrame) as info:
        decoder.feed_eof()
    assert (info.value.pending, info.value.offset) == (3, 4)
    assert isinstance(info.value, DecodeError)


def test_feed_eof_inside_a_line_after_byte_by_byte_feeding() -> None:
    data = b"one\ntwo\nthr"
    decoder = LinesCodec().decoder()
    items: list[Any] = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        items.extend(decoder)
    assert items == ["one", "two"]
    with pytest.raises(IncompleteFrame) as info:
        decoder.feed_eof()
    assert (info.value.pending, info.value.offset) == (3, 8)


# -- properties ----------------------------------------------------------------------

line_text = st.text(max_size=30).filter(lambda s: "\n" not in s and not s.endswith("\r"))
line_bytes = st.binary(max_size=30).filter(lambda b: b"\n" not in b and not b.endswith(b"\r"))


@settings(max_examples=150, deadline=None)
@given(st.lists(line_text), st.data())
def test_round_trip_text(items: list[str], data: st.DataObject) -> None:
    items = [s.encode("utf-8", "replace").decode() for s in items]  # no lone surrogates
    codec = LinesCodec()
    blob = b"".join(codec.encode(item) for item in items)
    assert decode_chunks(codec, [blob]) == items
    assert decode_events(codec, draw_chunks(data, blob)) == items


@settings(max_examples=150, deadline=None)
@given(st.lists(line_bytes), st.data())
def test_round_trip_bytes(items: list[bytes], data: st.DataObject) -> None:
    codec = LinesCodec(None)
    blob = b"".join(codec.encode(item) for item in items)
    assert decode_chunks(codec, [blob]) == items
    assert decode_events(codec, draw_chunks(data, blob)) == items


noisy = st.lists(
    st.sampled_from([b"\n", b"\r", b"\r\n", b"\xff", b"\xc3", b"\xa9", b"\x82", b"ab", b"x" * 7]),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.binary(max_size=80), noisy),
    st.sampled_from(["utf-8", None, "shift_jis", "ascii"]),
    st.sampled_from(["error", "discard"]),
    st.integers(0, 10),
    st.data(),
)
def test_arbitrary_bytes_raise_only_codec_errors_and_are_chunk_invariant(
    blob: bytes, encoding: str | None, on_overflow: Any, limit: int, data: st.DataObject
) -> None:
    codec: Any = LinesCodec(encoding, max_frame_size=limit, on_overflow=on_overflow)
    whole = decode_events(codec, [blob])
    assert decode_events(codec, draw_chunks(data, blob)) == whole
    assert decode_events(codec, [blob[i : i + 1] for i in range(len(blob))]) == whole


# -- skipping bad lines costs linear time (issue 14) ---------------------------------


def _alternating(size: int) -> tuple[bytes, list[str], list[int]]:
    """Good and undecodable lines in turn: the bytes, the good lines, the bad offsets."""
    data = bytearray()
    good: list[str] = []
    bad: list[int] = []
    n = 0
    while len(data) < size:
        line = f"ok {n:05d}"
        good.append(line)
        data += line.encode() + b"\n"
        bad.append(len(data))
        data += b"\xff%05d\r\n" % n
        n += 1
    return bytes(data), good, bad


@pytest.fixture
def any_rate_of_bad_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lift the bad-line rate limit: for tests of skipping many bad lines."""
    monkeypatch.setattr(lines_module, "_BAD_LINES_BURST", 10**9)


def _consume_until_failed(decoder: Any) -> tuple[list[Any], list[Any]]:
    """Collect items until the first ``FrameTooLarge``, returned as the only error."""
    items: list[Any] = []
    iterator = iter(decoder)
    while True:
        try:
            items.append(next(iterator))
        except FrameTooLarge as exc:
            return items, [exc]
        except StopIteration:
            return items, []


def _count_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every batch a decoder cuts into lines (``_split``)."""
    sizes: list[int] = []
    split = LinesDecoder._split

    def counting(self: Any, start: int, stop: int) -> Any:
        sizes.append(stop - start)
        return split(self, start, stop)

    monkeypatch.setattr(LinesDecoder, "_split", counting)
    return sizes


def test_skipping_64k_of_alternating_bad_lines_cuts_the_buffer_once(
    monkeypatch: pytest.MonkeyPatch, any_rate_of_bad_lines: None
) -> None:
    data, good, bad = _alternating(64 * KIB)
    batches = _count_batches(monkeypatch)
    decoder = LinesCodec().decoder()
    decoder.feed(data)
    items, errors = consume_skipping_errors(decoder)
    assert items == good
    assert [type(e) for e in errors] == [DecodeError] * len(bad)
    assert [e.offset for e in errors] == bad  # type: ignore[attr-defined]
    assert all(isinstance(e.__cause__, UnicodeDecodeError) for e in errors)
    assert str(errors[1]) == (
        "line of 6 bytes is not valid utf-8: invalid start byte"
        f" (frame starting at stream offset {bad[1]})"
    )
    # Every byte after the first line went into one batch, cut once: the old decoder
    # copied and decoded the rest of the buffer again after each bad line (about
    # 150 MB for these 64 KiB).
    assert batches == [len(data) - len("ok 00000\n")]
    decoder.feed_eof()


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "shift_jis"])
def test_bad_lines_give_the_same_events_whole_and_byte_by_byte(
    encoding: str, any_rate_of_bad_lines: None
) -> None:
    data, good, bad = _alternating(2 * KIB)
    codec = LinesCodec(encoding)
    whole = decode_events(codec, [data])
    expected: list[Any] = []
    for line, offset in zip(good, bad, strict=True):
        expected += [line, ("error", "DecodeError", offset)]
    assert whole == expected
    assert decode_events(codec, [data[i : i + 1] for i in range(len(data))]) == expected


def test_overlong_and_undecodable_lines_in_one_batch_in_discard_mode() -> None:
    codec = LinesCodec(max_frame_size=4, on_overflow="discard")
    data = b"a\nbb\n" + b"x" * 10 + b"\ncc\r\nyyyyy\n\xffz\ndd\n"
    decoder = codec.decoder()
    decoder.feed(data)
    items, errors = consume_skipping_errors(decoder)
    assert items == ["a", "bb", "cc", "dd"]
    assert [(type(e), e.offset) for e in errors] == [  # type: ignore[attr-defined]
        (FrameTooLarge, 5),
        (FrameTooLarge, 20),
        (DecodeError, 26),
    ]
    # As a line alone would be refused: the 10-byte one was searched no further than
    # limit + 2 bytes in ("at least 5"); the 5-byte one is measured exactly.
    too_long = [(e.size, e.at_least) for e in errors[:2]]  # type: ignore[attr-defined]
    assert too_long == [(5, True), (5, False)]
    assert decode_events(codec, [data[i : i + 1] for i in range(len(data))]) == decode_events(
        codec, [data]
    )


def test_an_overlong_line_in_a_batch_fails_the_decoder_after_the_lines_before_it() -> None:
    decoder = LinesCodec(max_frame_size=4).decoder()
    decoder.feed(b"a\nbb\n" + b"x" * 5 + b"\ncc\n")
    items, errors = _consume_until_failed(decoder)
    assert items == ["a", "bb"]
    info = errors[0]
    assert (info.size, info.at_least, info.offset) == (5, False, 5)
    for call in (lambda: list(decoder), lambda: decoder.feed(b"x\n"), decoder.feed_eof):
        with pytest.raises(FrameTooLarge) as again:
            call()
        assert again.value is info


def test_a_failed_decoder_reraises_in_constant_time_and_memory() -> None:
    decoder = LinesCodec(max_frame_size=2).decoder()
    decoder.feed(b"xxxx\n")
    with pytest.raises(FrameTooLarge) as first:
        list(decoder)
    lengths = []
    for _ in range(100):
        with pytest.raises(FrameTooLarge) as again:
            list(decoder)
        assert again.value is first.value
        lengths.append(traceback_length(again.value))
    # Each raise starts a fresh traceback: before, every re-raise added two entries
    # to the stored error's, so a retry loop grew it without bound.
    assert lengths == [2] * 100


many_lines = st.lists(
    st.sampled_from([b"ok", b"\xff", b"\xc3", b"\xc3\xa9", b"x" * 6, b"", b"\r", b"yyy\r"]),
    max_size=300,
).map(lambda parts: b"\n".join(parts) + b"\n")


@settings(max_examples=100, deadline=None)
@given(
    many_lines,
    st.sampled_from(["utf-8", "ascii", "latin-1", "shift_jis", None]),
    st.sampled_from(["error", "discard"]),
    st.integers(0, 8),
    st.data(),
)
def test_batches_with_many_bad_lines_give_what_lines_one_by_one_give(
    blob: bytes, encoding: str | None, on_overflow: Any, limit: int, data: st.DataObject
) -> None:
    # Fed whole, every line after the first goes through one batch; fed byte by byte,
    # each line is taken alone. Both must give the same lines and the same errors.
    codec: Any = LinesCodec(encoding, max_frame_size=limit, on_overflow=on_overflow)
    whole = decode_events(codec, [blob])
    assert decode_events(codec, [blob[i : i + 1] for i in range(len(blob))]) == whole
    assert decode_events(codec, draw_chunks(data, blob)) == whole


def test_bad_lines_past_the_tolerated_rate_fail_the_decoder() -> None:
    # 64 bad lines, plus one per KiB of stream before the bad line, are skipped; the
    # next one fails the decoder for good: a peer sending one bad line per two bytes
    # must not buy one exception (microseconds) per two bytes for ever.
    data, good, bad = _alternating(64 * KIB)
    decoder = LinesCodec().decoder()
    decoder.feed(data)
    items, errors = consume_skipping_errors(decoder)
    fatal = next(i for i, offset in enumerate(bad) if i + 1 > 64 + offset // 1024)
    assert len(errors) == fatal + 1
    assert items == good[: fatal + 1]
    assert [e.offset for e in errors] == bad[: fatal + 1]  # type: ignore[attr-defined]
    last = errors[-1]
    assert str(last) == (
        f"too many bad lines: {fatal + 1} by this one, more than 64 plus one per 1024"
        " bytes of stream; the peer is not speaking this protocol"
        f" (frame starting at stream offset {bad[fatal]})"
    )
    assert type(last.__cause__) is DecodeError
    assert isinstance(last.__cause__.__cause__, UnicodeDecodeError)
    with pytest.raises(DecodeError) as again:
        list(decoder)
    assert again.value is last
    with pytest.raises(DecodeError) as fed:
        decoder.feed(b"ok\n")
    assert fed.value is last


def test_bad_lines_within_the_tolerated_rate_are_all_skipped() -> None:
    # One bad line per 2 KiB, for 1 MiB, after a burst of 64 at the start.
    chunk = b"x" * 2038 + b"\n" + b"\xff\xfe\n" + b"y" * 5 + b"\n"
    data = b"\xff\n" * 64 + chunk * 512
    decoder = LinesCodec().decoder()
    decoder.feed(data)
    items, errors = consume_skipping_errors(decoder)
    assert len(errors) == 64 + 512
    assert all(type(e) is DecodeError and "too many" not in str(e) for e in errors)
    assert items == ["x" * 2038, "yyyyy"] * 512


def test_overlong_lines_count_as_bad_lines_in_discard_mode() -> None:
    codec = LinesCodec(max_frame_size=2, on_overflow="discard")
    decoder = codec.decoder()
    decoder.feed(b"xxx\n" * 100)
    items, errors = consume_skipping_errors(decoder)
    assert items == []
    assert [type(e) for e in errors] == [FrameTooLarge] * 64 + [DecodeError]
    assert str(errors[-1]).startswith("too many bad lines: 65 by this one")
    assert type(errors[-1].__cause__) is FrameTooLarge

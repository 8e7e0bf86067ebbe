"""LengthPrefixedCodec: tokio-util / Netty / Twisted compatible length-prefixed frames."""

from __future__ import annotations

import array
import itertools
import struct
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsframed.codecs.base import Codec
from wsframed.codecs.length import LengthPrefixedCodec, LengthPrefixedDecoder
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame

from .codec_checks import assert_chunk_invariant, decode_chunks, traceback_length
from .codec_strategies import decode_events, draw_chunks

MIB = 1024 * 1024


# -- configuration -------------------------------------------------------------------


def test_defaults() -> None:
    codec: Codec[bytes] = LengthPrefixedCodec()
    assert isinstance(codec, LengthPrefixedCodec)
    assert (codec.length_size, codec.byteorder, codec.max_frame_size) == (4, "big", MIB)
    assert codec.length_includes_header is False
    assert isinstance(codec.decoder(), LengthPrefixedDecoder)
    assert repr(codec) == (
        "LengthPrefixedCodec(length_size=4, byteorder='big', max_frame_size=1048576,"
        " length_includes_header=False)"
    )
    with pytest.raises(AttributeError):
        codec.max_frame_size = 1  # type: ignore[misc]


@pytest.mark.parametrize("size", [0, 3, 5, 16, True])
def test_length_size_must_be_1_2_4_or_8(size: int) -> None:
    with pytest.raises(ValueError, match="length_size"):
        LengthPrefixedCodec(size)


def test_byteorder_must_be_big_or_little() -> None:
    with pytest.raises(ValueError, match="byteorder"):
        LengthPrefixedCodec(byteorder="network")  # type: ignore[arg-type]


def test_bad_max_frame_size() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        LengthPrefixedCodec(max_frame_size=-1)
    with pytest.raises(TypeError, match="max_frame_size"):
        LengthPrefixedCodec(max_frame_size=1.5)  # type: ignore[arg-type]


def test_max_frame_size_is_clamped_to_what_the_header_can_express() -> None:
    assert LengthPrefixedCodec(1).max_frame_size == 255
    assert LengthPrefixedCodec(2).max_frame_size == 65535
    assert LengthPrefixedCodec(2, length_includes_header=True).max_frame_size == 65533
    assert LengthPrefixedCodec(4, max_frame_size=2**40).max_frame_size == 2**32 - 1
    assert LengthPrefixedCodec(8, max_frame_size=2**40).max_frame_size == 2**40
    assert LengthPrefixedCodec(1, max_frame_size=10).max_frame_size == 10
    codec = LengthPrefixedCodec(1)
    assert codec.encode(b"x" * 255)[:1] == b"\xff"
    with pytest.raises(FrameTooLarge):
        codec.encode(b"x" * 256)


# -- golden bytes --------------------------------------------------------------------


def test_default_is_tokio_length_delimited_codec() -> None:
    # The example of tokio-util's LengthDelimitedCodec documentation, which is also
    # Netty's LengthFieldPrepender(4) and Twisted's Int32StringReceiver.
    codec = LengthPrefixedCodec()
    assert codec.encode(b"hello world") == b"\x00\x00\x00\x0bhello world"
    assert decode_chunks(codec, [b"\x00\x00\x00\x0bhello world"]) == [b"hello world"]


@pytest.mark.parametrize(
    ("options", "wire"),
    [
        ({"length_size": 2, "byteorder": "little"}, b"\x0b\x00hello world"),
        ({"length_size": 2}, b"\x00\x0bhello world"),
        ({"length_size": 1}, b"\x0bhello world"),
        ({"length_size": 4, "byteorder": "little"}, b"\x0b\x00\x00\x00hello world"),
        ({"length_size": 8}, b"\x00" * 7 + b"\x0bhello world"),
        ({"length_size": 8, "byteorder": "little"}, b"\x0b" + b"\x00" * 7 + b"hello world"),
        # Netty LengthFieldPrepender(4, true): the length counts its own 4 bytes.
        ({"length_includes_header": True}, b"\x00\x00\x00\x0fhello world"),
        ({"length_size": 2, "length_includes_header": True}, b"\x00\x0dhello world"),
    ],
)
def test_golden(options: dict[str, Any], wire: bytes) -> None:
    codec = LengthPrefixedCodec(**options)
    assert codec.encode(b"hello world") == wire
    assert_chunk_invariant(codec, wire, [b"hello world"])


def test_encode_accepts_bytes_like_objects() -> None:
    codec = LengthPrefixedCodec(2)
    assert codec.encode(bytearray(b"ab")) == b"\x00\x02ab"
    assert codec.encode(memoryview(b"xaby")[1:3]) == b"\x00\x02ab"
    wide = array.array("H", [1, 2])
    assert codec.encode(memoryview(wide)) == b"\x00\x04" + wide.tobytes()
    assert codec.encode(b"") == b"\x00\x00"
    with pytest.raises(TypeError):
        codec.encode("text")  # type: ignore[arg-type]


def test_encode_too_large_is_local_and_the_codec_still_works() -> None:
    codec = LengthPrefixedCodec(max_frame_size=4)
    for item in (b"12345", bytearray(b"12345"), memoryview(b"12345")):
        with pytest.raises(FrameTooLarge) as info:
            codec.encode(item)
        assert (info.value.size, info.value.limit, info.value.local) == (5, 4, True)
    assert codec.encode(b"1234") == b"\x00\x00\x00\x041234"
    assert decode_chunks(codec, [codec.encode(b"ok")]) == [b"ok"]


# -- decoding ------------------------------------------------------------------------


def test_every_complete_frame_is_yielded_in_one_pass() -> None:
    codec = LengthPrefixedCodec()
    decoder = codec.decoder()
    decoder.feed(b"".join(codec.encode(b"%d" % i) for i in range(1000)) + b"\x00\x00")
    items = list(decoder)
    assert items == [b"%d" % i for i in range(1000)]
    assert all(type(item) is bytes for item in items)
    assert len(decoder._buf) == 2  # compacted once, at the end of the pass


def test_a_chunk_cut_through_is_let_go() -> None:
    # Frames are cut straight from a bytes chunk; once cut through, only the start of
    # the frame it cuts short is kept (copied), not the chunk: an idle connection
    # holds no 64 KiB read.
    codec = LengthPrefixedCodec()
    chunk = codec.encode(b"a" * 100) * 10 + b"\x00\x00"
    before = sys.getrefcount(chunk)
    decoder = codec.decoder()
    decoder.feed(chunk)
    assert sys.getrefcount(chunk) == before + 1  # not copied when fed
    assert list(decoder) == [b"a" * 100] * 10
    assert sys.getrefcount(chunk) == before
    assert decoder._buf == b"\x00\x00"


def test_stopping_early_keeps_the_rest() -> None:
    codec = LengthPrefixedCodec(1)
    decoder = codec.decoder()
    decoder.feed(b"\x01a\x01b\x01")
    for item in decoder:
        assert item == b"a"
        break
    decoder.feed(b"c")
    assert list(decoder) == [b"b", b"c"]


def test_empty_frames() -> None:
    codec = LengthPrefixedCodec(2)
    data = codec.encode(b"") * 3 + codec.encode(b"x") + codec.encode(b"")
    assert_chunk_invariant(codec, data, [b"", b"", b"", b"x", b""])


def test_chunk_invariant_short() -> None:
    codec = LengthPrefixedCodec()
    items = [b"", b"a", b"\x00\x00\x00\x05", b"hello world" * 3]
    assert_chunk_invariant(codec, b"".join(map(codec.encode, items)), items)


def test_chunk_invariant_long() -> None:
    codec = LengthPrefixedCodec()
    items = [bytes([i % 256]) * (i * 37 % 1000) for i in range(300)] + [b"z" * 100_000]
    assert_chunk_invariant(codec, b"".join(map(codec.encode, items)), items, rounds=10)


def test_a_large_frame_in_small_chunks() -> None:
    codec = LengthPrefixedCodec(max_frame_size=4 * MIB)
    body = bytes(range(256)) * (4 * MIB // 256)
    wire = codec.encode(body)
    decoder = codec.decoder()
    items: list[bytes] = []
    peak = 0
    for start in range(0, len(wire), 4096):
        decoder.feed(wire[start : start + 4096])
        items.extend(decoder)
        peak = max(peak, len(decoder._buf))
    assert items == [body]
    assert peak <= len(body)
    assert len(decoder._buf) == 0
    decoder.feed_eof()


# -- limits --------------------------------------------------------------------------


def test_oversized_length_fails_at_the_header_before_any_body() -> None:
    decoder = LengthPrefixedCodec(max_frame_size=100).decoder()
    decoder.feed(b"\x00\x00\x00\x02ok\x00\x00\x00")
    assert list(decoder) == [b"ok"]
    decoder.feed(b"\x65")  # 101 declared, no body byte yet
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    exc = info.value
    assert (exc.size, exc.limit, exc.local, exc.at_least) == (101, 100, False, False)
    assert exc.offset == 6


def test_a_4_gib_length_fails_immediately_after_4_bytes() -> None:
    decoder = LengthPrefixedCodec().decoder()
    for byte in b"\xff\xff\xff":
        decoder.feed(bytes([byte]))
        assert list(decoder) == []
    decoder.feed(b"\xff")
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    assert info.value.size == 2**32 - 1
    assert len(decoder._buf) == 0


def test_an_8_byte_length_of_16_eib_fails_at_the_header() -> None:
    decoder = LengthPrefixedCodec(8).decoder()
    decoder.feed(b"\xff" * 8 + b"body")
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    assert info.value.size == 2**64 - 1


def test_failed_decoder_reraises_the_same_error() -> None:
    codec = LengthPrefixedCodec(1, max_frame_size=3)
    decoder = codec.decoder()
    decoder.feed(b"\x01a\x04abcd\x01b")
    items: list[bytes] = []
    with pytest.raises(FrameTooLarge) as info:
        items.extend(decoder)
    assert items == [b"a"]
    assert decoder._error is info.value
    for call in (lambda: list(decoder), lambda: decoder.feed(b"\x01c"), decoder.feed_eof):
        with pytest.raises(FrameTooLarge) as again:
            call()
        assert again.value is info.value


def test_memory_is_bounded_after_a_bad_header() -> None:
    decoder = LengthPrefixedCodec().decoder()
    decoder.feed(b"\x7f\xff\xff\xff" + b"x" * 65536)
    with pytest.raises(FrameTooLarge):
        list(decoder)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"x" * 65536)  # refused, not buffered
    assert len(decoder._buf) == 0


def test_length_smaller_than_its_header_is_a_decode_error() -> None:
    codec = LengthPrefixedCodec(2, length_includes_header=True)
    decoder = codec.decoder()
    decoder.feed(b"\x00\x03a\x00\x01")
    items: list[bytes] = []
    with pytest.raises(DecodeError) as info:
        items.extend(decoder)
    assert items == [b"a"]
    assert info.value.offset == 3
    assert "declared length 1" in str(info.value)
    with pytest.raises(DecodeError) as again:
        list(decoder)
    assert again.value is info.value
    assert decode_chunks(codec, [b"\x00\x02"]) == [b""]  # just the header: empty frame


def test_includes_header_limit_counts_the_payload() -> None:
    codec = LengthPrefixedCodec(length_includes_header=True, max_frame_size=4)
    assert decode_chunks(codec, [b"\x00\x00\x00\x081234"]) == [b"1234"]
    decoder = codec.decoder()
    decoder.feed(b"\x00\x00\x00\x09")
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    assert info.value.size == 5


# -- end of stream -------------------------------------------------------------------


def test_feed_eof_on_a_boundary_is_clean() -> None:
    codec = LengthPrefixedCodec()
    assert decode_chunks(codec, []) == []
    assert decode_chunks(codec, [b"\x00\x00\x00\x01a", b"\x00\x00\x00\x00"]) == [b"a", b""]
    # A boundary inside one chunk, and a frame cut across chunks, end clean too.
    data = b"\x00\x00\x00\x01a\x00\x00\x00\x00\x00\x00\x00\x02bc"
    assert decode_chunks(codec, [data]) == [b"a", b"", b"bc"]
    assert decode_chunks(codec, [data[:6], data[6:11], data[11:]]) == [b"a", b"", b"bc"]
    decoder = codec.decoder()
    decoder.feed(data)
    assert list(decoder) == [b"a", b"", b"bc"]
    decoder.feed_eof()  # nothing pending: returns
    assert list(decoder) == []


def test_feed_eof_inside_the_header() -> None:
    decoder = LengthPrefixedCodec().decoder()
    decoder.feed(b"\x00\x00\x00\x01a\x00\x00")
    assert list(decoder) == [b"a"]
    with pytest.raises(IncompleteFrame) as info:
        decoder.feed_eof()
    assert (info.value.pending, info.value.offset) == (2, 5)


def test_feed_eof_inside_the_body() -> None:
    data = b"\x00\x00\x00\x01a\x00\x00\x00\x05abc"
    decoder = LengthPrefixedCodec().decoder()
    items: list[bytes] = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        items.extend(decoder)
    assert items == [b"a"]
    with pytest.raises(IncompleteFrame) as info:
        decoder.feed_eof()
    assert (info.value.pending, info.value.offset) == (7, 5)


# -- properties ----------------------------------------------------------------------

configs = st.tuples(
    st.sampled_from([1, 2, 4, 8]), st.sampled_from(["big", "little"]), st.booleans()
)


@settings(max_examples=200, deadline=None)
@given(configs, st.lists(st.binary(max_size=300), max_size=12), st.data())
def test_round_trip(
    config: tuple[int, Any, bool], items: list[bytes], data: st.DataObject
) -> None:
    size, order, includes = config
    codec = LengthPrefixedCodec(size, order, length_includes_header=includes)
    items = [item[: codec.max_frame_size] for item in items]
    blob = b"".join(codec.encode(item) for item in items)
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
    header = struct.Struct((">" if order == "big" else "<") + fmt)
    if items:
        assert header.unpack_from(blob)[0] == len(items[0]) + (size if includes else 0)
    assert decode_chunks(codec, [blob]) == items
    assert decode_events(codec, draw_chunks(data, blob)) == items


@settings(max_examples=300, deadline=None)
@given(configs, st.integers(0, 20), st.binary(max_size=80), st.data())
def test_arbitrary_bytes_raise_only_codec_errors_and_are_chunk_invariant(
    config: tuple[int, Any, bool], limit: int, blob: bytes, data: st.DataObject
) -> None:
    size, order, includes = config
    codec = LengthPrefixedCodec(size, order, limit, length_includes_header=includes)
    whole = decode_events(codec, [blob])
    assert decode_events(codec, draw_chunks(data, blob)) == whole
    assert decode_events(codec, [blob[i : i + 1] for i in range(len(blob))]) == whole


# -- floods and the failed decoder (issue 14) ----------------------------------------


def test_a_flood_of_empty_frames_yields_each_in_one_pass() -> None:
    decoder = LengthPrefixedCodec().decoder()
    decoder.feed(b"\x00\x00\x00\x00" * 65_536 + b"\x00\x00\x00\x01z\x00\x00")
    assert list(decoder) == [b""] * 65_536 + [b"z"]
    with pytest.raises(IncompleteFrame) as info:
        decoder.feed_eof()
    assert (info.value.pending, info.value.offset) == (2, 65_536 * 4 + 5)


def test_a_failed_decoder_reraises_in_constant_time_and_memory() -> None:
    decoder = LengthPrefixedCodec(max_frame_size=10).decoder()
    decoder.feed(b"\x00\x00\x00\x01a\xff\xff\xff\xff")
    with pytest.raises(FrameTooLarge) as first:
        list(decoder)
    assert (first.value.size, first.value.offset) == (2**32 - 1, 5)
    lengths = []
    for call in [lambda: list(decoder), lambda: decoder.feed(b"\x01"), decoder.feed_eof] * 50:
        with pytest.raises(FrameTooLarge) as again:
            call()
        assert again.value is first.value
        lengths.append(traceback_length(again.value))
    # Each raise starts a fresh traceback; before, each added its frames to the
    # stored error's, so a loop that retries a failed decoder grew it without bound.
    assert lengths == [3, 3, 2] * 50


@pytest.mark.parametrize("taken", [1, 255, 256, 257, 599])
def test_a_pass_abandoned_inside_a_batch_keeps_the_rest_and_the_error_after_it(
    taken: int,
) -> None:
    # Frames are cut 256 at a time; a pass stopped anywhere (inside the first batch,
    # at its end, in the next) loses none, and a bad header after them still comes
    # right after the last frame, with its own offset.
    codec = LengthPrefixedCodec(max_frame_size=10)
    frames = [b"%d" % i for i in range(600)]
    data = b"".join(map(codec.encode, frames))
    decoder = codec.decoder()
    decoder.feed(data)
    got = list(itertools.islice(iter(decoder), taken))  # the pass is dropped here
    decoder.feed(struct.pack(">I", 11))
    with pytest.raises(FrameTooLarge) as info:
        got.extend(decoder)
    assert got == frames
    assert (info.value.size, info.value.offset) == (11, len(data))

"""BytesCodec: chunks pass through unframed, split at max_frame_size."""

from __future__ import annotations

import array
import gc
from collections import deque
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsframed.codecs.base import Buffer, Codec
from wsframed.codecs.bytes import BytesCodec, BytesDecoder
from wsframed.errors import FrameTooLarge

from .codec_checks import decode_chunks, split_at
from .codec_strategies import decode_events, draw_chunks


def decode_buffers(codec: BytesCodec, chunks: Iterable[Buffer]) -> list[bytes]:
    """decode_chunks for any bytes-like chunks."""
    decoder = codec.decoder()
    items: list[bytes] = []
    for chunk in chunks:
        decoder.feed(chunk)
        items.extend(decoder)
    decoder.feed_eof()
    return items


def test_is_a_codec_of_bytes() -> None:
    codec: Codec[bytes] = BytesCodec()
    assert codec.max_frame_size == 1024 * 1024
    assert isinstance(codec.decoder(), BytesDecoder)
    assert repr(codec) == "BytesCodec(max_frame_size=1048576)"


@pytest.mark.parametrize("bad", [0, -1])
def test_max_frame_size_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        BytesCodec(bad)


@pytest.mark.parametrize("bad", [True, 1.5, "10"])
def test_max_frame_size_must_be_an_int(bad: object) -> None:
    with pytest.raises(TypeError, match="max_frame_size"):
        BytesCodec(bad)  # type: ignore[arg-type]


def test_max_frame_size_is_read_only() -> None:
    codec = BytesCodec(10)
    with pytest.raises(AttributeError):
        codec.max_frame_size = 20  # type: ignore[misc]


def test_encode_returns_the_bytes_unchanged() -> None:
    codec = BytesCodec()
    data = b"hello"
    assert codec.encode(data) is data
    assert codec.encode(bytearray(b"abc")) == b"abc"
    assert codec.encode(memoryview(b"xabcx")[1:4]) == b"abc"
    assert type(codec.encode(bytearray(b"abc"))) is bytes
    assert codec.encode(b"") == b""


def test_encode_counts_bytes_of_wide_memoryviews() -> None:
    codec = BytesCodec(8)
    wide = array.array("I", [1, 2])  # 8 bytes
    assert codec.encode(memoryview(wide)) == wide.tobytes()
    with pytest.raises(FrameTooLarge):
        codec.encode(memoryview(array.array("I", [1, 2, 3])))


def test_encode_rejects_str() -> None:
    with pytest.raises(TypeError):
        BytesCodec().encode("text")  # type: ignore[arg-type]


def test_encode_too_large_is_local_and_the_codec_still_works() -> None:
    codec = BytesCodec(4)
    assert codec.encode(b"1234") == b"1234"
    for item in (b"12345", bytearray(b"12345"), memoryview(b"12345")):
        with pytest.raises(FrameTooLarge) as info:
            codec.encode(item)
        assert (info.value.size, info.value.limit, info.value.local) == (5, 4, True)
        assert not info.value.at_least
    assert codec.encode(b"ok") == b"ok"
    assert decode_chunks(codec, [codec.encode(b"ok")]) == [b"ok"]


def test_decoder_yields_each_chunk_as_it_arrives() -> None:
    decoder = BytesCodec().decoder()
    decoder.feed(b"one")
    decoder.feed(b"")
    decoder.feed(bytearray(b"two"))
    decoder.feed(memoryview(b"three"))
    assert list(decoder) == [b"one", b"two", b"three"]
    assert list(decoder) == []
    assert all(type(item) is bytes for item in decode_buffers(BytesCodec(), [bytearray(b"x")]))


def test_empty_chunks_are_skipped() -> None:
    assert decode_buffers(BytesCodec(), [b"", bytearray(), memoryview(b""), b"a", b""]) == [b"a"]


def test_bytes_chunks_are_not_copied_but_mutable_ones_are() -> None:
    decoder = BytesCodec().decoder()
    chunk = b"immutable"
    mutable = bytearray(b"mutable")
    decoder.feed(chunk)
    decoder.feed(mutable)
    mutable[:] = b"changed"
    items = list(decoder)
    assert items[0] is chunk
    assert items[1] == b"mutable"


def test_a_chunk_over_the_limit_is_split_not_refused() -> None:
    codec = BytesCodec(4)
    data = bytes(range(14))
    for chunk in (data, bytearray(data), memoryview(data)):
        assert decode_buffers(codec, [chunk]) == [data[0:4], data[4:8], data[8:12], data[12:14]]
    assert decode_chunks(codec, [b"12345678"]) == [b"1234", b"5678"]


def test_a_wide_memoryview_is_split_by_bytes() -> None:
    wide = array.array("H", range(5))  # 10 bytes
    items = decode_buffers(BytesCodec(4), [memoryview(wide)])
    assert [len(item) for item in items] == [4, 4, 2]
    assert b"".join(items) == wide.tobytes()


def test_stopping_early_keeps_the_rest() -> None:
    decoder = BytesCodec().decoder()
    for chunk in (b"a", b"b", b"c"):
        decoder.feed(chunk)
    for item in decoder:
        assert item == b"a"
        break
    assert list(decoder) == [b"b", b"c"]


def test_feed_eof_never_raises() -> None:
    decoder = BytesCodec(2).decoder()
    decoder.feed_eof()
    decoder.feed(b"abc")
    decoder.feed_eof()
    assert list(decoder) == [b"ab", b"c"]
    decoder.feed_eof()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40)), st.integers(1, 64))
def test_round_trip(items: list[bytes], limit: int) -> None:
    codec = BytesCodec(limit)
    items = [item[:limit] for item in items]
    decoded = decode_chunks(codec, [codec.encode(item) for item in items])
    assert decoded == [item for item in items if item]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 64), st.data())
def test_chunk_invariant_and_bounded(blob: bytes, limit: int, data: st.DataObject) -> None:
    # No framing: only the concatenation is invariant, and no item exceeds the limit.
    chunks = draw_chunks(data, blob)
    decoded = decode_events(BytesCodec(limit), chunks)
    assert b"".join(decoded) == blob
    assert all(0 < len(item) <= limit for item in decoded)


def test_chunk_invariant_long_stream() -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB
    codec = BytesCodec(1000)
    for cuts in ([], list(range(0, len(blob), 4096)), [1, 99_999, 500_000, 1_000_000]):
        decoded = decode_chunks(codec, split_at(blob, cuts))
        assert b"".join(decoded) == blob
        assert max(map(len, decoded)) <= 1000


def test_a_fresh_decoder_holds_no_queue() -> None:
    # Per idle connection: the queue of chunks is made by the first chunk.
    decoder = BytesCodec().decoder()
    assert not any(isinstance(o, deque) for o in gc.get_referents(decoder))
    decoder.feed(b"ab")
    assert any(isinstance(o, deque) for o in gc.get_referents(decoder))
    assert list(decoder) == [b"ab"]

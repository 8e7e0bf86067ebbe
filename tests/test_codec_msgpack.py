"""MsgpackCodec: a plain msgpack object stream with bounded, incremental decoding."""

from __future__ import annotations

import ast
import datetime
import gc
import io
import itertools
import struct
import threading
import time
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsframed.codecs.base import Codec
from wsframed.codecs.msgpack import MsgpackCodec, MsgpackDecoder
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame

from .codec_checks import assert_chunk_invariant, decode_chunks, split_at, traceback_length
from .codec_strategies import decode_events, draw_chunks

KIB = 1024
MIB = 1024 * 1024

# msgpack's own value space: 64-bit integers, str or bytes map keys (strict_map_key).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text() | st.binary(), children, max_size=5)
    ),
    max_leaves=20,
)

RPC = [
    [0, 1, "add", [1, 2]],
    [1, 1, None, 3],
    [2, "nvim_buf_lines_event", [{"buf": 1}, 0, -1, ["hello", "wörld"], False]],
    {"id": 7, "method": "add", "params": [1, 2.5, b"\x00\xff", None, True]},
    b"x" * 300,
    "y" * 70_000,
    list(range(40_000)),
    -(2**63),
    2**64 - 1,
    1.5,
    {},
    [],
]


def stream(items: list[Any]) -> bytes:
    return b"".join(msgpack.packb(item) for item in items)


def test_defaults() -> None:
    codec = MsgpackCodec()
    typed: Codec[Any] = codec
    assert typed.max_frame_size == MIB
    assert isinstance(codec.decoder(), MsgpackDecoder)
    assert repr(codec) == "MsgpackCodec(max_frame_size=1048576)"
    assert repr(MsgpackCodec(10, raw=True)) == "MsgpackCodec(max_frame_size=10, raw=True)"
    with pytest.raises(AttributeError):
        codec.max_frame_size = 1  # type: ignore[misc]


def test_bad_max_frame_size() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        MsgpackCodec(0)
    with pytest.raises(TypeError, match="max_frame_size"):
        MsgpackCodec(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_frame_size"):
        MsgpackCodec(True)


@pytest.mark.parametrize(
    "name",
    [
        "max_buffer_size",
        "max_str_len",
        "max_bin_len",
        "max_array_len",
        "max_map_len",
        "max_ext_len",
        "read_size",
        "file_like",
        "autoreset",
    ],
)
def test_the_codec_owns_the_limits(name: str) -> None:
    with pytest.raises(TypeError, match=f"{name}.*max_frame_size"):
        MsgpackCodec(**{name: 10})


def test_unknown_options_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="'use_tuples'"):
        MsgpackCodec(use_tuples=True)


def test_option_values_are_checked_at_construction() -> None:
    with pytest.raises(TypeError):
        MsgpackCodec(default=42)
    with pytest.raises(TypeError):
        MsgpackCodec(ext_hook=42)


def test_codecs_never_import_asyncio_or_websockets() -> None:
    for name in ("msgpack.py", "cbor.py"):
        tree = ast.parse((Path(__file__).parents[1] / "wsframed" / "codecs" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in {"asyncio", "websockets"}, (name, module)


# -- golden bytes and interoperability ---------------------------------------------


def test_encode_is_msgpack_packb() -> None:
    codec = MsgpackCodec()
    for item in RPC:
        assert codec.encode(item) == msgpack.packb(item)
    assert codec.encode([0, 1, "add", [1, 2]]) == b"\x94\x00\x01\xa3add\x92\x01\x02"


def test_decodes_what_msgpack_packs_and_msgpack_decodes_what_it_encodes() -> None:
    codec = MsgpackCodec()
    assert decode_chunks(codec, [stream(RPC)]) == RPC
    unpacker = msgpack.Unpacker()
    unpacker.feed(b"".join(codec.encode(item) for item in RPC))
    assert list(unpacker) == RPC


def test_packer_options_pass_through() -> None:
    old_spec = MsgpackCodec(use_bin_type=False)
    assert old_spec.encode(b"ab") == b"\xa2ab"  # raw, as msgpack before 2.0
    assert MsgpackCodec(use_single_float=True).encode(1.5) == b"\xca\x3f\xc0\x00\x00"
    codec = MsgpackCodec(default=lambda obj: sorted(obj))
    assert codec.encode({3, 1, 2}) == msgpack.packb([1, 2, 3])
    with pytest.raises(TypeError):
        MsgpackCodec(strict_types=True).encode((1, 2))  # tuples only as lists otherwise
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    stamped = MsgpackCodec(datetime=True, timestamp=3)
    assert decode_chunks(stamped, [stamped.encode(when)]) == [when]


def test_unpacker_options_pass_through() -> None:
    data = stream(["é", b"b", [1, [2]], {"k": 1}])
    assert decode_chunks(MsgpackCodec(raw=True), [data]) == [
        "é".encode(),
        b"b",
        [1, [2]],
        {b"k": 1},
    ]
    assert decode_chunks(MsgpackCodec(use_list=False), [data]) == ["é", b"b", (1, (2,)), {"k": 1}]
    hooked = MsgpackCodec(object_hook=lambda d: ("map", d), list_hook=tuple)
    assert decode_chunks(hooked, [data]) == ["é", b"b", (1, (2,)), ("map", {"k": 1})]
    pairs = MsgpackCodec(object_pairs_hook=list)
    assert decode_chunks(pairs, [stream([{"a": 1, "b": 2}])]) == [[("a", 1), ("b", 2)]]
    ext = MsgpackCodec(ext_hook=lambda code, body: (code, body))
    assert decode_chunks(ext, [msgpack.packb(msgpack.ExtType(5, b"xyz"))]) == [(5, b"xyz")]
    assert decode_chunks(MsgpackCodec(), [b"\xd4\x05\x01"]) == [msgpack.ExtType(5, b"\x01")]
    lax = MsgpackCodec(strict_map_key=False)
    assert decode_chunks(lax, [msgpack.packb({1: 2})]) == [{1: 2}]
    assert decode_chunks(MsgpackCodec(unicode_errors="replace"), [b"\xa1\xff"]) == ["\ufffd"]


def test_feed_accepts_bytes_like_objects() -> None:
    data = stream(RPC[:4])
    decoder = MsgpackCodec().decoder()
    decoder.feed(bytearray(data[:10]))
    decoder.feed(memoryview(data)[10:])
    assert list(decoder) == RPC[:4]


# -- round trips and chunk invariance ----------------------------------------------


@settings(max_examples=150, deadline=None)
@given(items=st.lists(values, max_size=8), data=st.data())
def test_round_trip(items: list[Any], data: st.DataObject) -> None:
    codec = MsgpackCodec()
    wire = b"".join(codec.encode(item) for item in items)
    assert wire == stream(items)
    assert decode_chunks(codec, draw_chunks(data, wire)) == items


def test_chunk_invariant_short() -> None:
    items: list[Any] = [0, -1, 1.5, "a", b"b", [1, [2, {"c": None}]], {}, True]
    assert_chunk_invariant(MsgpackCodec(), stream(items), items)


def test_chunk_invariant_long() -> None:
    items = RPC[:4] * 50 + [b"x" * 5000, "é" * 3000, list(range(2000))]
    assert_chunk_invariant(MsgpackCodec(), stream(items), items, rounds=10)


def test_chunk_invariant_near_a_small_limit() -> None:
    items: list[Any] = [b"x" * 98, [1] * 97, "y" * 98, {"k": "v" * 92}] * 5
    codec = MsgpackCodec(100)
    assert all(len(msgpack.packb(item)) == 100 for item in items[:3])
    assert_chunk_invariant(codec, stream(items), items)


def test_every_complete_object_is_yielded_in_one_pass() -> None:
    decoder = MsgpackCodec().decoder()
    decoder.feed(stream([1, 2, 3]) + b"\x92\x04")
    assert list(decoder) == [1, 2, 3]
    assert list(decoder) == []
    decoder.feed(b"\x05")
    assert list(decoder) == [[4, 5]]


def test_feeding_while_iterating_and_stopping_early() -> None:
    decoder = MsgpackCodec().decoder()
    decoder.feed(stream([1, 2]))
    frames = iter(decoder)
    assert next(frames) == 1
    decoder.feed(stream([3]))
    assert list(frames) == [2, 3]
    decoder.feed(stream([4, 5, 6]))
    for item in decoder:
        assert item == 4
        break
    assert list(decoder) == [5, 6]
    decoder.feed_eof()


# -- limits on encode ----------------------------------------------------------------


def test_encode_errors_are_type_and_value_errors_and_leave_the_codec_usable() -> None:
    codec = MsgpackCodec()
    with pytest.raises(TypeError):
        codec.encode([1, object()])
    with pytest.raises(ValueError, match="out of range") as info:
        codec.encode(2**64)
    assert isinstance(info.value.__cause__, OverflowError)
    assert codec.encode([1]) == b"\x91\x01"  # no half-packed object left behind


def test_encode_is_reentrant_and_thread_safe() -> None:
    codec: MsgpackCodec

    def default(obj: object) -> Any:
        time.sleep(0.001)  # let other threads run in the middle of a pack
        return {"inner": codec.encode("nested")}

    codec = MsgpackCodec(default=default)
    expected = msgpack.packb([1, {"inner": msgpack.packb("nested")}, 2])
    results: list[bytes] = []

    def work() -> None:
        for _ in range(20):
            results.append(codec.encode([1, object(), 2]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 80


# -- limits on decode ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size"),
    [
        (b"\xc6\xff\xff\xff\xff", 5 + 0xFFFFFFFF),  # bin 32
        (b"\xdb\xff\xff\xff\xff", 5 + 0xFFFFFFFF),  # str 32
        (b"\xc9\xff\xff\xff\xff", 6 + 0xFFFFFFFF),  # ext 32
        (b"\xdd\xff\xff\xff\xff", 5 + 0xFFFFFFFF),  # array 32: a byte per element at least
        (b"\xdf\xff\xff\xff\xff", 5 + 2 * 0xFFFFFFFF),  # map 32: two per entry
        (b"\xc6\x00\x10\x00\x00", 5 + MIB),  # one byte over a 1 MiB limit
        (b"\xdd\x00\x10\x00\x00", 5 + MIB),
        (b"\xc5\xff\xff", 3 + 0xFFFF),  # bin 16, under a 32 KiB limit
        (b"\xdc\x80\x00", 3 + 0x8000),
        (b"\xde\x40\x00", 3 + 0x8000),
    ],
)
def test_oversized_header_fails_at_the_header(header: bytes, size: int) -> None:
    limit = 32 * KIB if header[0] in (0xC5, 0xDC, 0xDE) else MIB
    decoder = MsgpackCodec(limit).decoder()
    decoder.feed(stream([1, "two"]))
    for byte in header[:-1]:
        decoder.feed(bytes([byte]))
        assert list(decoder) in ([1, "two"], [])
    decoder.feed(header[-1:])
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    assert (info.value.size, info.value.limit, info.value.local) == (size, limit, False)
    assert info.value.at_least == (header[0] in (0xDC, 0xDD, 0xDE, 0xDF))


def test_an_oversized_header_behind_other_objects_in_one_feed() -> None:
    decoder = MsgpackCodec().decoder()
    decoder.feed(stream([1, "two"]) + b"\xc6\xff\xff\xff\xff" + b"x" * 100)
    items: list[Any] = []
    with pytest.raises(FrameTooLarge) as info:
        items.extend(decoder)
    assert items == [1, "two"]
    assert info.value.size == 5 + 0xFFFFFFFF


def test_a_nested_oversized_array_header_fails_once_past_the_limit() -> None:
    # Only the outer header is checked as it arrives; a nested one is held as bytes
    # (the unpacker never sees a partial object) until the frame passes the limit.
    error = grow(MsgpackCodec(MIB).decoder(), b"\x92\x01\xdd\xff\xff\xff\xff", b"\x01", MIB)
    assert error.at_least
    assert error.size == MIB + 1


def test_largest_object_within_the_limit_decodes() -> None:
    codec = MsgpackCodec(MIB)
    blob = b"z" * (MIB - 5)
    wire = msgpack.packb(blob)
    assert len(wire) == MIB
    assert decode_chunks(codec, split_at(wire, range(0, MIB, 64 * KIB))) == [blob]
    with pytest.raises(FrameTooLarge):
        decode_chunks(codec, [msgpack.packb(blob + b"z")])


def grow(decoder: MsgpackDecoder, head: bytes, unit: bytes, limit: int) -> FrameTooLarge:
    """Feed ``head`` then ~10 MiB of ``unit`` in 64 KiB chunks; memory must stay bounded."""
    chunk = unit * (64 * KIB // len(unit))
    decoder.feed(head)
    assert list(decoder) == []
    for _ in range(160):
        try:
            decoder.feed(chunk)
            assert list(decoder) == []
        except FrameTooLarge as exc:
            assert len(decoder._buf) == 0  # released
            return exc
        # Bytes waiting in the decoder: at most one chunk. Bytes of the object in
        # progress inside the unpacker: within the limit (its max_buffer_size).
        assert len(decoder._buf) - decoder._pos <= len(chunk)
        assert decoder._base + decoder._pos - decoder._start <= limit
    raise AssertionError("an endless object was never refused")


def test_an_endless_array_of_small_ints_fails_once_past_the_limit() -> None:
    codec = MsgpackCodec(MIB)
    # 1,000,000 declared elements fit the limit at a byte each, but these take two.
    error = grow(codec.decoder(), b"\xdd\x00\x0f\x42\x40", b"\xcc\xff", MIB)
    assert error.at_least
    assert error.size == MIB + 1
    assert not error.local


def test_an_endless_nested_string_fails_once_past_the_limit() -> None:
    codec = MsgpackCodec(MIB)
    error = grow(codec.decoder(), b"\x91\xdb\x7f\xff\xff\xff", b"a", MIB)
    assert error.at_least
    assert error.size == MIB + 1


def test_a_feed_far_larger_than_the_limit_goes_to_the_unpacker_in_pieces() -> None:
    # msgpack's own Unpacker would raise BufferFull on a feed past max_buffer_size.
    items = [{"id": i, "method": "add", "params": [1, 2]} for i in range(100_000)]
    wire = stream(items)
    assert len(wire) > 2 * MIB
    decoder = MsgpackCodec(64 * KIB).decoder()
    decoder.feed(wire)
    assert list(decoder) == items
    decoder.feed_eof()


def test_a_big_object_in_small_chunks_within_a_bigger_limit() -> None:
    codec = MsgpackCodec(8 * MIB)
    blob = bytes(range(256)) * (4 * MIB // 256)
    wire = msgpack.packb(blob) + msgpack.packb([1])
    assert decode_chunks(codec, split_at(wire, range(0, len(wire), KIB))) == [blob, [1]]


@pytest.mark.parametrize("chunk", [1, 7, 10_001])
def test_deep_nesting_is_a_decode_error(chunk: int) -> None:
    data = b"\x91" * 10_000 + b"\x00"
    decoder = MsgpackCodec().decoder()
    with pytest.raises(DecodeError, match="nested deeper") as info:  # noqa: PT012
        for start in range(0, len(data), chunk):
            decoder.feed(data[start : start + chunk])
            assert list(decoder) == []
    assert isinstance(info.value.__cause__, msgpack.StackError)
    assert decode_chunks(MsgpackCodec(), [b"\x91" * 1000 + b"\x00"]) != []


def test_deep_nesting_under_a_small_limit_is_too_large() -> None:
    with pytest.raises(FrameTooLarge):
        decode_chunks(MsgpackCodec(1000), [b"\x91" * 10_000 + b"\x00"])


# -- malformed data and failed decoders ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (b"\xc1", msgpack.FormatError),  # the never-used type byte
        (b"\xa2\xff\xfe", UnicodeDecodeError),
        (b"\x81\x91\x01\x01", ValueError),  # a list as a map key
        (b"\x81\xc0\xc0", ValueError),  # nil as a map key under strict_map_key
    ],
)
def test_malformed_data_is_a_decode_error_with_the_cause(
    data: bytes, cause: type[Exception]
) -> None:
    decoder = MsgpackCodec().decoder()
    decoder.feed(stream([1, [2]]) + data)
    items: list[Any] = []
    with pytest.raises(DecodeError) as info:
        items.extend(decoder)
    assert items == [1, [2]]
    assert info.value.offset == 3
    assert isinstance(info.value.__cause__, cause)


def test_hook_errors_are_decode_errors() -> None:
    def hook(code: int, body: bytes) -> Any:
        raise KeyError(code)

    with pytest.raises(DecodeError, match="KeyError") as info:
        decode_chunks(MsgpackCodec(ext_hook=hook), [b"\xd4\x05\x01"])
    assert isinstance(info.value.__cause__, KeyError)


@pytest.mark.parametrize(
    ("data", "error"),
    [(b"\x01\xc1\x02", DecodeError), (b"\x01\xc6\xff\xff\xff\xff", FrameTooLarge)],
)
def test_failed_decoder_reraises_the_same_error(data: bytes, error: type[Exception]) -> None:
    decoder = MsgpackCodec().decoder()
    decoder.feed(data)
    items: list[Any] = []
    with pytest.raises(error) as info:
        items.extend(decoder)
    assert items == [1]
    for call in (lambda: list(decoder), lambda: decoder.feed(b"\x01"), decoder.feed_eof):
        with pytest.raises(error) as again:
            call()
        assert again.value is info.value


@pytest.mark.parametrize(
    "tail", [b"\x92", b"\x92\x01", b"\xcd\x01", b"\xa5abc", b"\xc6\x00\x00\x00\x05ab"]
)
def test_feed_eof_inside_an_object(tail: bytes) -> None:
    decoder = MsgpackCodec().decoder()
    decoder.feed(stream([1, "two"]) + tail)
    assert list(decoder) == [1, "two"]
    with pytest.raises(IncompleteFrame) as info:
        decoder.feed_eof()
    assert (info.value.pending, info.value.offset) == (len(tail), 5)
    with pytest.raises(IncompleteFrame) as again:
        list(decoder)
    assert again.value is info.value


def items(events: list[Any]) -> str:
    """The decoded items among ``decode_events``' events (errors are plain tuples)."""
    return repr([event for event in events if type(event) is not tuple])


@settings(max_examples=300, deadline=None)
@given(
    blob=st.binary(max_size=300)
    | st.lists(st.sampled_from([b"\xc1", b"\x91", b"\xdd", b"\xff", b"\x00", b"\xc6\x00"])).map(
        b"".join
    ),
    limit=st.sampled_from([1, 8, 64, MIB]),
    data=st.data(),
)
def test_arbitrary_bytes_raise_only_codec_errors_and_are_chunk_invariant(
    blob: bytes, limit: int, data: st.DataObject
) -> None:
    codec = MsgpackCodec(limit)
    whole = decode_events(codec, [blob])
    cut = decode_events(codec, draw_chunks(data, blob))
    # The items before the first error agree however the bytes were cut. Compared as
    # repr: random bytes make NaNs.
    assert items(cut) == items(whole)


def test_one_object_per_feed_takes_the_fast_path_with_exact_offsets() -> None:
    """Chunks fed while idle go to msgpack.unpackb first; offsets stay stream offsets."""
    decoder = MsgpackCodec().decoder()
    items: list[Any] = []
    for item in RPC[:4]:
        decoder.feed(msgpack.packb(item))  # one whole object per chunk: unpackb
        items.extend(decoder)
    decoder.feed(msgpack.packb(5) + msgpack.packb(6) + b"\xc1")  # ExtraData, then a bad byte
    with pytest.raises(DecodeError) as info:
        items.extend(decoder)
    assert items == [*RPC[:4], 5, 6]
    assert info.value.offset == len(stream(RPC[:4])) + 2


def test_fast_path_then_a_cut_object_then_an_oversized_header() -> None:
    codec = MsgpackCodec(max_frame_size=100)
    decoder = codec.decoder()
    decoder.feed(msgpack.packb([1, 2]) + msgpack.packb("abc")[:2])  # whole, then cut
    assert list(decoder) == [[1, 2]]
    decoder.feed(b"bc")
    assert list(decoder) == ["abc"]
    decoder.feed(b"\xc5\x01\x00")  # bin 16 of 256 bytes: over the limit at the header
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    assert info.value.size == 3 + 256


def test_with_hooks_each_object_is_decoded_once() -> None:
    calls: list[dict[str, Any]] = []

    def hook(obj: dict[str, Any]) -> dict[str, Any]:
        calls.append(obj)
        return obj

    codec = MsgpackCodec(object_hook=hook)
    decoder = codec.decoder()
    for i in range(3):
        decoder.feed(msgpack.packb({"i": i}))
        assert list(decoder) == [{"i": i}]
    decoder.feed(msgpack.packb({"i": 3})[:3])
    assert list(decoder) == []
    decoder.feed(msgpack.packb({"i": 3})[3:])
    assert list(decoder) == [{"i": 3}]
    assert calls == [{"i": i} for i in range(4)]


# -- error paths and conversions (issue 14) ------------------------------------------


def test_a_failed_decoder_reraises_in_constant_time_and_memory() -> None:
    decoder = MsgpackCodec().decoder()
    decoder.feed(b"\x01\xc1")
    with pytest.raises(DecodeError) as first:
        list(decoder)
    lengths = []
    for call in [lambda: list(decoder), lambda: decoder.feed(b"\x01"), decoder.feed_eof] * 50:
        with pytest.raises(DecodeError) as again:
            call()
        assert again.value is first.value
        lengths.append(traceback_length(again.value))
    # Each raise starts a fresh traceback; before, each added its frames to the
    # stored error's, so a loop that retries a failed decoder grew it without bound.
    assert lengths == [3, 3, 2] * 50


@pytest.mark.parametrize(
    ("options", "data", "cause", "message"),
    [
        (
            {"timestamp": 3},  # seconds out of datetime's range
            b"\xc7\x0c\xff" + struct.pack(">Iq", 999_999_999, -(2**63)),
            OverflowError,
            "OverflowError: days=-106751991167300; too large to convert to C int",
        ),
        (
            {},  # 64-bit timestamp with nanoseconds 2**30 - 1
            b"\xd7\xff" + b"\xff" * 8,
            ValueError,
            "ValueError: nanoseconds must be a non-negative integer not greater than 999999999.",
        ),
        (
            {},  # a timestamp is 4, 8 or 12 bytes
            b"\xc7\x05\xff12345",
            ValueError,
            "ValueError: invalid timestamp data (length 5)",
        ),
    ],
)
def test_timestamps_msgpack_cannot_convert_are_decode_errors(
    options: dict[str, Any], data: bytes, cause: type[Exception], message: str
) -> None:
    decoder = MsgpackCodec(**options).decoder()
    decoder.feed(b"\x07" + data + b"\x08")
    items: list[Any] = []
    with pytest.raises(DecodeError) as info:
        items.extend(decoder)
    assert items == [7]
    assert type(info.value.__cause__) is cause
    assert str(info.value) == (
        f"cannot decode msgpack object: {message} (frame starting at stream offset 1)"
    )


def test_extreme_timestamps_within_range_decode() -> None:
    data = b"\xc7\x0c\xff" + struct.pack(">Iq", 999_999_999, -(2**63))
    stamp = msgpack.Timestamp(-(2**63), 999_999_999)
    assert decode_chunks(MsgpackCodec(), [data]) == [stamp]
    assert decode_chunks(MsgpackCodec(timestamp=2), [data]) == [stamp.to_unix_nano()]


def test_a_hook_message_is_cut() -> None:
    def hook(code: int, body: bytes) -> Any:
        raise ValueError("bad " + body.hex())

    decoder = MsgpackCodec(ext_hook=hook).decoder()
    decoder.feed(b"\xc7\xc8\x01" + b"\xab" * 200)
    with pytest.raises(DecodeError) as info:
        list(decoder)
    reason = ("bad " + "ab" * 200)[:200]
    assert str(info.value) == (
        f"cannot decode msgpack object: ValueError: {reason}..."
        " (frame starting at stream offset 0)"
    )


def _colliding_tuple_keys(count: int) -> list[tuple[int, int, int, int]]:
    """``count`` distinct 4-tuples of 64-bit ints that all have the same hash."""
    p = 2**61 - 1  # Python hashes an int modulo this prime
    same = [1 + k * p for k in range(8)]  # all < 2**64, all with hash 1
    return list(itertools.islice(itertools.product(same, repeat=4), count))


def test_tuple_map_keys_with_colliding_hashes_are_refused() -> None:
    codec = MsgpackCodec(strict_map_key=False, use_list=False)
    keys = _colliding_tuple_keys(2000)
    assert len({hash(key) for key in keys}) == 1
    bad = msgpack.packb({key: None for key in keys})
    decoder = codec.decoder()
    decoder.feed(b"\x05" + bad)
    items: list[Any] = []
    with pytest.raises(DecodeError) as info:
        items.extend(decoder)
    assert items == [5]
    assert str(info.value) == (
        "cannot decode msgpack object: ValueError: map of 2000 entries where 1999 keys"
        " share their hash with another key (at most 32 allowed)"
        " (frame starting at stream offset 1)"
    )
    # Up to 32 shared hashes pass, and ordinary tuple keys decode as msgpack does.
    few = {key: 1 for key in keys[:33]}
    plain = {(i, -i): [i] for i in range(5000)}
    data = msgpack.packb(few) + msgpack.packb(plain)
    expected = [few, {key: (value[0],) for key, value in plain.items()}]
    assert decode_chunks(codec, [data]) == expected
    assert expected == list(
        msgpack.Unpacker(io.BytesIO(data), strict_map_key=False, use_list=False)
    )
    # An object_hook gets the dict built; object_pairs_hook gets the pairs unchecked.
    hooked = MsgpackCodec(strict_map_key=False, use_list=False, object_hook=len)
    assert decode_chunks(hooked, [data]) == [33, 5000]
    pairs = MsgpackCodec(strict_map_key=False, use_list=False, object_pairs_hook=len)
    assert decode_chunks(pairs, [bad]) == [2000]
    assert repr(hooked) == (
        "MsgpackCodec(max_frame_size=1048576, object_hook=<built-in function len>,"
        " strict_map_key=False, use_list=False)"
    )


@pytest.mark.parametrize("good", [0, 1, 2, 5, 300])
@pytest.mark.parametrize("split", [False, True])
def test_an_object_failing_inside_a_batch_reports_its_own_offset(good: int, split: bool) -> None:
    """Whole objects decode in one batch; one that fails (invalid UTF-8) comes after
    the ones before it, with its own stream offset, wherever it falls in the batch:
    first, second, later, or after an object begun in an earlier chunk (``split``)."""
    first = [msgpack.packb("z" * 10)] if split else []
    objects = [{"id": i, "x": "y" * (i % 7)} for i in range(good)]
    data = b"".join(first + [msgpack.packb(o) for o in objects])
    bad = b"\xa2\xff\xfe"  # a fixstr of two bytes that are not UTF-8
    stream = data + bad + msgpack.packb("after")
    decoder = MsgpackCodec().decoder()
    got: list[Any] = []
    if split:
        decoder.feed(stream[:3])  # the first object is cut short here
        got.extend(decoder)
        decoder.feed(stream[3:])
    else:
        decoder.feed(stream)
    with pytest.raises(DecodeError) as info:
        got.extend(decoder)
    assert got == ["z" * 10] * split + objects
    assert info.value.offset == len(data)
    with pytest.raises(DecodeError) as again:
        list(decoder)
    assert again.value is info.value


def _unpackers_held(decoder: MsgpackDecoder) -> int:
    return sum(isinstance(o, msgpack.Unpacker) for o in gc.get_referents(decoder))


def test_a_decoder_makes_its_unpackers_when_the_first_bytes_need_them() -> None:
    """An idle connection holds no unpacker (about 56 KiB each); nor does one whose
    messages each hold one whole object (the fast path). The first bytes that need
    the streaming path make the unpacker and the scanner."""
    decoder = MsgpackCodec().decoder()
    assert _unpackers_held(decoder) == 0
    decoder.feed(msgpack.packb({"id": 1}))
    assert list(decoder) == [{"id": 1}]
    assert _unpackers_held(decoder) == 0
    decoder.feed(msgpack.packb([1, 2, 3])[:2])  # cut short: the streaming path
    assert list(decoder) == []
    assert _unpackers_held(decoder) == 2
    decoder.feed(msgpack.packb([1, 2, 3])[2:])
    assert list(decoder) == [[1, 2, 3]]
    decoder.feed_eof()


def test_ext_objects_decode_as_msgpack_ext_type_and_reserved_codes_are_refused() -> None:
    """The codec builds ExtType itself (faster than msgpack's default hook): the same
    objects, the same refusal of a reserved (negative) code, timestamps untouched."""
    decoder = MsgpackCodec().decoder()
    stream = b"\xd4\x01\x00" * 3 + msgpack.packb(msgpack.Timestamp(1, 5))
    decoder.feed(stream)
    got = list(decoder)
    assert got == [msgpack.ExtType(1, b"\x00")] * 3 + [msgpack.Timestamp(1, 5)]
    assert [type(x) for x in got[:3]] == [msgpack.ExtType] * 3
    decoder = MsgpackCodec().decoder()
    decoder.feed(b"\xd4\x01\x00\xd4\xfe\x00")
    with pytest.raises(DecodeError) as info:
        list(decoder)
    assert (info.value.offset, str(info.value.__cause__)) == (3, "code must be 0~127")

"""CborCodec: an RFC 8742 CBOR sequence, delimited by a resumable scan of item heads."""

from __future__ import annotations

import concurrent.futures
import datetime
from collections.abc import Callable
from datetime import UTC
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsframed.codecs.cbor as cbor_module
from wsframed.codecs.base import Codec
from wsframed.codecs.cbor import CborCodec, CborDecoder
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame

from .codec_checks import assert_chunk_invariant, decode_chunks, split_at
from .codec_strategies import decode_events, draw_chunks

KIB = 1024
MIB = 1024 * 1024
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
# cbor2 5's pure-Python decoder (Pyodide's; .ci/run runs these tests on it too):
# CborCodec gives it cbor2 6's options (wsframed/codecs/_cbor5.py), with the
# differences that module documents.
CBOR2_5 = cbor_module._SEMANTIC_FALLBACK

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        # Keys within 64 bits: a bignum key is refused by default (test_cbor_costs.py).
        | st.dictionaries(
            st.text() | st.integers(-(2**64), 2**64 - 1) | st.binary(), children, max_size=5
        )
    ),
    max_leaves=20,
)

RPC = [
    {"id": 7, "method": "add", "params": [1, 2]},
    [0, 1, "add", [1, 2.5, None, True]],
    {"result": b"\x00\xff" * 20, "nested": {"a": [[], {}, [[[-1]]]]}},
    b"x" * 300,
    "y" * 70_000,
    list(range(40_000)),
    2**64,
    -(2**70),
    1.5,
    float("inf"),
    datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    {},
    [],
]


class Point:
    """Something cbor2 cannot encode by itself."""

    def __init__(self, real: int, imag: int) -> None:
        self.real = real
        self.imag = imag


def stream(items: list[Any]) -> bytes:
    return b"".join(cbor2.dumps(item) for item in items)


def hexes(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


def test_defaults() -> None:
    codec = CborCodec()
    typed: Codec[Any] = codec
    assert typed.max_frame_size == MIB
    assert codec.max_depth == 256
    assert isinstance(codec.decoder(), CborDecoder)
    assert repr(codec) == "CborCodec(max_frame_size=1048576, max_depth=256)"
    assert repr(CborCodec(10, canonical=True)) == (
        "CborCodec(max_frame_size=10, max_depth=256, canonical=True)"
    )
    with pytest.raises(AttributeError):
        codec.max_frame_size = 1  # type: ignore[misc]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        CborCodec(0)
    with pytest.raises(TypeError, match="max_frame_size"):
        CborCodec(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_depth"):
        CborCodec(max_depth=-1)
    with pytest.raises(TypeError, match="max_depth"):
        CborCodec(max_depth=True)


@pytest.mark.parametrize("name", ["read_size", "fp", "max_size", "sort_keys"])
def test_unknown_options_are_a_type_error(name: str) -> None:
    with pytest.raises(TypeError, match=repr(name)):
        CborCodec(**{name: 1})


def test_option_values_are_checked_at_construction() -> None:
    with pytest.raises(TypeError):
        CborCodec(str_errors=5)
    with pytest.raises(TypeError):
        CborCodec(canonical="yes please", timezone=5)


# -- golden bytes and interoperability ---------------------------------------------


def test_encode_is_cbor2_dumps() -> None:
    codec = CborCodec()
    for item in RPC:
        assert codec.encode(item) == cbor2.dumps(item)
    assert codec.encode({"id": 1, "m": []}) == hexes("a2 6269 64 01 616d 80")


def test_decodes_what_cbor2_encodes_and_cbor2_decodes_what_it_encodes() -> None:
    codec = CborCodec()
    assert decode_chunks(codec, [stream(RPC)]) == RPC
    wire = b"".join(codec.encode(item) for item in RPC)
    assert decode_chunks(CborCodec(), split_at(wire, range(0, len(wire), 999))) == RPC


@pytest.mark.parametrize(
    ("wire", "item"),
    [
        ("5f 4161 4162 ff", b"ab"),  # indefinite-length byte string
        ("7f 6161 6162 ff", "ab"),
        ("5f ff", b""),
        ("9f 01 9f ff 02 ff", [1, [], 2]),
        ("bf 01 02 61 61 bf ff ff", {1: 2, "a": {}}),
        ("82 d9 1234 43 010203 c1 00", [cbor2.CBORTag(0x1234, b"\x01\x02\x03"), EPOCH]),
        ("c1 1a 5f5e1000", datetime.datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)),
        ("f9 3e00", 1.5),  # half precision
        ("fa 3fc00000", 1.5),
        ("98 00", []),  # a non-minimal length
        ("1b 0000000000000001", 1),
        ("c2 49 010000000000000000", 2**64),
        ("f7", cbor2.undefined),
    ],
)
def test_wire_forms(wire: str, item: Any) -> None:
    data = hexes(*wire.split())
    assert_chunk_invariant(CborCodec(), data * 3, [item] * 3)


def test_self_describe_tag_is_unwrapped_everywhere() -> None:
    data = hexes("d9d9f7 82 01 02", "82 d9d9f7 81 03 d9d9f7 d9d9f7 a1 6161 80")
    # What cbor2 alone makes of it: cbor2 6 decodes the content immutable, cbor2 5 not.
    assert cbor2.loads(data[:6]) == ([1, 2] if CBOR2_5 else (1, 2))
    assert_chunk_invariant(CborCodec(), data, [[1, 2], [[3], {"a": []}]])
    custom = CborCodec(semantic_decoders={55799: lambda value, immutable: ("tagged", value)})
    assert decode_chunks(custom, [data[:6]]) == [("tagged", [1, 2])]


def test_decode_options_pass_through() -> None:
    def tag_hook(tag: cbor2.CBORTag, immutable: bool) -> Any:
        return ("tag", tag.tag, tag.value)

    data = hexes("d9 1234 82 01 02", "a1 01 02")
    hooked = CborCodec(tag_hook=tag_hook, object_hook=lambda obj, immutable: ("map", dict(obj)))
    expected = [("tag", 0x1234, (1, 2)), ("map", {1: 2})]  # tagged content is immutable
    assert_chunk_invariant(hooked, data, expected)
    frozen = CborCodec(immutable=True)
    assert_chunk_invariant(frozen, data, [cbor2.CBORTag(0x1234, (1, 2)), {1: 2}])
    for chunks in ([hexes("82 01 02")], [hexes("82"), hexes("01 02")]):  # cbor2, scanner
        assert type(decode_chunks(frozen, chunks)[0]) is tuple
    assert decode_chunks(CborCodec(str_errors="replace"), [hexes("61 ff")]) == ["\ufffd"]
    strict = CborCodec(allow_indefinite=False)
    with pytest.raises(DecodeError):
        decode_chunks(strict, [hexes("5f 4161 ff")])
    assert decode_chunks(strict, [hexes("41 61")]) == [b"a"]
    if CBOR2_5:  # cbor2 5 has neither option: refused when the codec is made
        for option in ({"allow_duplicate_keys": False}, {"strict_hashable_types": True}):
            with pytest.raises(TypeError, match=r"needs cbor2 6: cbor2 5\.\d+\.\d+"):
                CborCodec(**option)
        return
    no_dupes = CborCodec(allow_duplicate_keys=False)
    with pytest.raises(DecodeError):
        decode_chunks(no_dupes, [hexes("a2 01 02 01 03")])


def test_encode_options_pass_through() -> None:
    shared = [1]
    codec = CborCodec(value_sharing=True)
    wire = codec.encode([shared, shared])
    assert wire == cbor2.dumps([shared, shared], value_sharing=True)
    (item,) = decode_chunks(codec, [wire])
    assert item == [[1], [1]]
    assert item[0] is item[1]
    assert CborCodec(canonical=True).encode({"b": 1, "a": 2}) == hexes("a2 6161 02 6162 01")
    naive = datetime.datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="naive datetime") as info:
        CborCodec().encode(naive)
    assert isinstance(info.value.__cause__, cbor2.CBOREncodeError)
    assert CborCodec(timezone=UTC).encode(naive) == cbor2.dumps(naive, timezone=UTC)
    point = CborCodec(default=lambda encoder, obj: encoder.encode([obj.real, obj.imag]))
    assert point.encode(Point(1, 2)) == cbor2.dumps([1, 2])


def test_kept_encoders_give_independent_items() -> None:
    """The codec reuses encoders; every item is still exactly what dumps() gives."""
    shared = [1]
    sharing = CborCodec(value_sharing=True)
    for _ in range(3):  # no shared-value registry carried from one item to the next
        assert sharing.encode([shared, shared]) == cbor2.dumps(
            [shared, shared], value_sharing=True
        )
        assert sharing.encode(shared) == cbor2.dumps(shared, value_sharing=True)
    refs = CborCodec(string_referencing=True)
    for _ in range(3):
        assert refs.encode(["abcd", "abcd"]) == cbor2.dumps(
            ["abcd", "abcd"], string_referencing=True
        )
    codec = CborCodec()
    for _ in range(3):
        with pytest.raises(TypeError):  # an encoder that raised mid-item is not reused
            codec.encode(["x" * 100, object()])
        assert codec.encode(["y"]) == cbor2.dumps(["y"])


def test_encode_is_reentrant_and_thread_safe() -> None:
    inner = CborCodec()

    def default(encoder: Any, obj: Point) -> None:
        # A hook that encodes with the same codec while its encoder is busy.
        encoder.encode({"p": inner.encode([obj.real, obj.imag])})

    codec = CborCodec(default=default)
    inner = codec
    expected = cbor2.dumps({"p": cbor2.dumps([1, 2])})
    assert codec.encode(Point(1, 2)) == expected
    items = [{"id": i, "name": "n" * (i % 50), "v": [i] * (i % 7)} for i in range(2000)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(codec.encode, items * 4))
    assert results == [cbor2.dumps(item) for item in items * 4]


def test_feed_accepts_bytes_like_objects() -> None:
    data = stream(RPC[:3])
    decoder = CborCodec().decoder()
    decoder.feed(bytearray(data[:10]))
    decoder.feed(memoryview(data)[10:20])
    decoder.feed(bytearray(data[20:]))
    assert list(decoder) == RPC[:3]


# -- round trips and chunk invariance ----------------------------------------------


@settings(max_examples=150, deadline=None)
@given(items=st.lists(values, max_size=8), data=st.data())
def test_round_trip(items: list[Any], data: st.DataObject) -> None:
    codec = CborCodec()
    wire = b"".join(codec.encode(item) for item in items)
    assert wire == stream(items)
    assert decode_chunks(codec, draw_chunks(data, wire)) == items


@settings(max_examples=100, deadline=None)
@given(items=st.lists(values, max_size=8), data=st.data())
def test_round_trip_indefinite_containers(items: list[Any], data: st.DataObject) -> None:
    codec = CborCodec(indefinite_containers=True)
    wire = b"".join(codec.encode(item) for item in items)
    assert decode_chunks(codec, draw_chunks(data, wire)) == items


def test_chunk_invariant_short() -> None:
    items: list[Any] = [0, -1, 1.5, "a", b"b", [1, [2, {"c": None}]], {}, True, 2**70]
    assert_chunk_invariant(CborCodec(), stream(items), items)


def test_chunk_invariant_long() -> None:
    items = RPC[:3] * 50 + [b"x" * 5000, "é" * 3000, list(range(2000))]
    assert_chunk_invariant(CborCodec(), stream(items), items, rounds=10)


def test_chunk_invariant_near_a_small_limit() -> None:
    # Items of exactly the limit, many more bytes than the limit in one chunk: the
    # window cbor2 reads moves along the buffer.
    items: list[Any] = [b"x" * 98, [1] * 98, "y" * 98, {"k": "v" * 95}] * 5
    assert [len(cbor2.dumps(item)) for item in items[:4]] == [100] * 4
    assert_chunk_invariant(CborCodec(100), stream(items), items)


def test_every_complete_item_is_yielded_in_one_pass() -> None:
    decoder = CborCodec().decoder()
    decoder.feed(stream([1, 2, 3]) + b"\x82\x04")
    assert list(decoder) == [1, 2, 3]
    assert list(decoder) == []
    decoder.feed(b"\x05")
    assert list(decoder) == [[4, 5]]


def test_feeding_while_iterating_and_stopping_early() -> None:
    decoder = CborCodec().decoder()
    decoder.feed(stream([1, 2]))
    frames = iter(decoder)
    assert next(frames) == 1
    decoder.feed(stream([3]))
    assert list(frames) == [2, 3]
    decoder.feed(stream([4, 5, 6]) + b"\x82")
    for item in decoder:
        assert item == 4
        break
    decoder.feed(b"\x07")
    frames = iter(decoder)
    assert next(frames) == 5
    decoder.feed(bytearray(b"\x08") + stream([9]))
    assert list(frames) == [6, [7, 8], 9]
    decoder.feed_eof()


def test_cbor2_state_does_not_leak_from_a_cut_item() -> None:
    # cbor2 gives up on an item cut off at the end of a feed (nested, in a map key,
    # inside a shared value); the next item starts afresh.
    decoder = CborCodec(max_depth=3, trusted_peer=True).decoder()  # an array key
    decoder.feed(hexes("00 81 81 81"))
    assert list(decoder) == [0]
    decoder.feed(hexes("00 81 81 81 00 a1 82"))
    assert list(decoder) == [[[[0]]], [[[0]]]]
    decoder.feed(hexes("01 02 80 82 01 02 d8 1c 81"))
    assert list(decoder) == [{(1, 2): []}, [1, 2]]
    decoder.feed(hexes("01 d8 1d 00"))
    with pytest.raises(DecodeError, match=r"shared reference|semantic tag 29"):
        list(decoder)


# -- limits on encode ----------------------------------------------------------------


def test_encode_errors_are_type_and_value_errors() -> None:
    codec = CborCodec()
    with pytest.raises(TypeError, match="cannot encode type") as info:
        codec.encode([1, object()])
    assert isinstance(info.value.__cause__, cbor2.CBOREncodeError)
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="cyclic"):
        codec.encode(cycle)
    assert codec.encode([1]) == b"\x81\x01"


# -- limits on decode ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "size", "at_least"),
    [
        ("5b 7fffffffffffffff", 9 + 2**63 - 1, False),  # byte string, 8-byte length
        ("7b ffffffffffffffff", 9 + 2**64 - 1, False),  # text string
        ("5a 00100000", 5 + MIB, False),  # one byte over the limit
        ("9b 00000000ffffffff", 9 + 2**32 - 1, True),  # array: a byte per element
        ("bb 00000000ffffffff", 9 + 2 * (2**32 - 1), True),  # map: two per entry
        ("9a 00100000", 5 + MIB, True),
        ("82 01 5a ffffffff", 7 + 2**32 - 1, True),  # nested: at least that
        ("5f 41 61 5a ffffffff", 8 + 2**32 - 1, True),  # a chunk of an indefinite string
    ],
)
def test_oversized_head_fails_at_the_head(head: str, size: int, at_least: bool) -> None:
    data = hexes(*head.split())
    decoder = CborCodec().decoder()
    decoder.feed(stream([1, "two"]))
    assert list(decoder) == [1, "two"]
    for byte in data[:-1]:
        decoder.feed(bytes([byte]))
        assert list(decoder) == []
    decoder.feed(data[-1:])
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    assert (info.value.size, info.value.limit, info.value.local) == (size, MIB, False)
    assert info.value.at_least == at_least
    # The same head arriving at once, behind other items.
    decoder = CborCodec().decoder()
    decoder.feed(stream([1, "two"]) + data)
    items: list[Any] = []
    with pytest.raises(FrameTooLarge):
        items.extend(decoder)
    assert items == [1, "two"]


def test_largest_item_within_the_limit_decodes() -> None:
    blob = b"z" * (MIB - 5)
    wire = cbor2.dumps(blob)
    assert len(wire) == MIB
    for chunks in ([wire], split_at(wire, range(0, MIB, 64 * KIB))):
        assert decode_chunks(CborCodec(), chunks) == [blob]
    with pytest.raises(FrameTooLarge):
        decode_chunks(CborCodec(), [cbor2.dumps(blob + b"z")])
    items = [1] * (MIB - 5)
    wire = cbor2.dumps(items)
    assert len(wire) == MIB
    assert decode_chunks(CborCodec(), [wire + b"\x01"]) == [items, 1]
    with pytest.raises(FrameTooLarge) as info:
        decode_chunks(CborCodec(), [cbor2.dumps([*items, 1])])
    assert info.value.size == MIB + 1


def test_a_feed_far_larger_than_the_limit_is_read_in_windows() -> None:
    items = [{"id": i, "method": "add", "params": [1, 2]} for i in range(100_000)]
    wire = stream(items)
    assert len(wire) > 2 * MIB
    decoder = CborCodec(64 * KIB).decoder()
    decoder.feed(wire)
    assert list(decoder) == items
    decoder.feed_eof()


def grow(decoder: CborDecoder, head: bytes, unit: bytes, limit: int) -> FrameTooLarge:
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
        assert len(decoder._buf) <= limit
        assert decoder._scanning  # the scanner kept the item: cbor2 never rereads it
    raise AssertionError("an endless item was never refused")


@pytest.mark.parametrize(
    ("head", "unit"),
    [
        ("5f", "59 0400" + "61" * 1024),  # an indefinite byte string's chunks never end
        ("7f", "63 e282ac"),  # text chunks of one euro sign each
        ("9f", "18 ff"),  # an endless indefinite array of small ints
        ("9a 000f4240", "18 ff"),  # 1,000,000 two-byte ints: fits at one byte each
        ("bf", "01 80"),
        ("81 81 81 9f", "c1 00"),  # tagged items, nested
    ],
)
def test_an_endless_item_fails_once_past_the_limit(head: str, unit: str) -> None:
    error = grow(CborCodec().decoder(), hexes(*head.split()), hexes(*unit.split()), MIB)
    assert error.at_least
    assert not error.local
    assert MIB < error.size <= MIB + 64 * KIB


@pytest.mark.parametrize("chunk", [1, 7, 10_001])
def test_deep_nesting_is_a_decode_error(chunk: int) -> None:
    data = b"\x81" * 10_000 + b"\x00"
    decoder = CborCodec().decoder()
    with pytest.raises(DecodeError, match="depth") as info:  # noqa: PT012
        for start in range(0, len(data), chunk):
            decoder.feed(data[start : start + chunk])
            assert list(decoder) == []
    assert info.value.offset == 0


@pytest.mark.parametrize(
    "head", ["81", "a1 00", "9f", "bf 00", "d9 1234", "d9 d9f7", "82 00", "a2 0000 00"]
)
@pytest.mark.parametrize("whole", [True, False])
def test_max_depth_counts_as_cbor2_does(head: str, whole: bool) -> None:
    def decode(data: bytes, max_depth: int) -> list[Any]:
        chunks = [data] if whole else split_at(data, range(len(data)))
        return decode_chunks(CborCodec(max_depth=max_depth), chunks)

    prefix = hexes(*head.split())
    closing = b"\xff" * prefix.count(b"\x9f"[0]) + b"\xff" * prefix.count(b"\xbf"[0])
    for depth in range(4):
        data = prefix * depth + b"\x00" + closing * depth
        assert decode(data, depth) == [cbor2.loads(data)]
        with pytest.raises(DecodeError, match="depth"):
            decode(prefix * (depth + 1) + b"\x00" + closing * (depth + 1), depth)
    # Empty containers and indefinite strings do not nest.
    assert decode(hexes("80 a0 98 00 5f 4161 ff 7f ff"), 0) == [[], {}, [], b"a", ""]


def test_max_depth_can_exceed_cbor2s_default() -> None:
    data = b"\x81" * 1000 + b"\x00"
    with pytest.raises(DecodeError):
        decode_chunks(CborCodec(), [data])
    if CBOR2_5:  # pure Python: its recursion limit bounds the nesting too
        with pytest.raises(DecodeError, match="RecursionError") as info:
            decode_chunks(CborCodec(max_depth=1000), [data])
        assert isinstance(info.value.__cause__, RecursionError)
        data = b"\x81" * 256 + b"\x00"  # the default max_depth
    (item,) = decode_chunks(CborCodec(max_depth=len(data) - 1), [data])
    for _ in range(len(data) - 1):
        (item,) = item
    assert item == 0


# -- linear time (deterministic) ------------------------------------------------------


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Record the absolute offset at which each call of a scanner helper starts."""
    calls: list[int] = []
    function: Callable[..., tuple[int, int, int]] = getattr(cbor_module, name)

    def wrapper(buf: Any, i: int, *args: Any) -> tuple[int, int, int]:
        calls.append(i)
        return function(buf, i, *args)

    monkeypatch.setattr(cbor_module, name, wrapper)
    return calls


def trickle(codec: CborCodec, wire: bytes, chunk: int) -> tuple[list[Any], list[int]]:
    """Decode ``wire`` fed ``chunk`` bytes at a time; also return the scan offsets."""
    decoder = codec.decoder()
    items: list[Any] = []
    offsets = []
    for start in range(0, len(wire), chunk):
        decoder.feed(wire[start : start + chunk])
        items.extend(decoder)
        offsets.append(decoder._base + decoder._scan)
    decoder.feed_eof()
    return items, offsets


def test_a_big_string_trickling_in_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # 4 MiB in 1 KiB feeds: the head is read when the string starts and when it is
    # complete (the chunks between are only collected), never the body.
    heads = counting(monkeypatch, "_slow_head")
    blob = b"q" * (4 * MIB)
    items, _ = trickle(CborCodec(8 * MIB), cbor2.dumps(blob), KIB)
    assert items == [blob]
    assert len(heads) == 2
    assert set(heads) == {0}


def test_indefinite_string_chunks_are_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = counting(monkeypatch, "_string_chunks")
    piece = b"\x59\x01\x00" + b"c" * 256
    wire = b"\x5f" + piece * 8192 + b"\xff"  # 2 MiB in 8192 chunks
    items, offsets = trickle(CborCodec(4 * MIB), wire, 1000)
    assert items == [b"c" * (2 * MIB)]
    # Every resumption starts where the previous one stopped, at a chunk head.
    assert chunks == sorted(chunks)
    assert offsets == sorted(offsets)
    assert len(chunks) == len(offsets)  # one call per feed, each going on from the last


def test_a_big_array_trickling_in_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    heads = counting(monkeypatch, "_slow_head")
    items = list(range(24, 256)) * 2000  # 928,000 bytes of two-byte ints
    wire = cbor2.dumps(items)
    decoded, offsets = trickle(CborCodec(), wire, 999)
    assert decoded == [items]
    # After every feed the scan stopped at the last (cut) int: it never goes back, and
    # the next feed resumes there.
    for fed, offset in zip(range(999, len(wire), 999), offsets, strict=False):
        assert fed - 2 < offset <= fed
    assert len(heads) == 1  # the array's head; every int went through the fast tables


# -- malformed data and failed decoders ----------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        "1c",  # reserved additional information
        "5d",
        "ff",  # a break outside an indefinite-length item
        "1f",  # indefinite length for an integer
        "df 00",  # ... or a tag
        "5f 01 ff",  # an integer inside an indefinite byte string
        "5f 5f ff ff",  # nested indefinite strings
        "7f 4161 ff",  # a byte string inside a text string
        "bf 01 ff",  # a break between a key and its value
        "f8 00",  # a simple value that needs no extra byte
        "62 ffff",  # invalid UTF-8
        "c1 61 78",  # an epoch datetime that is a string
    ],
)
@pytest.mark.parametrize("whole", [True, False])
def test_malformed_items_are_decode_errors(wire: str, whole: bool) -> None:
    data = stream([1, [2]]) + hexes(*wire.split()) + stream([3])
    chunks = [data] if whole else split_at(data, range(len(data)))
    decoder = CborCodec().decoder()
    items: list[Any] = []
    with pytest.raises(DecodeError) as info:  # noqa: PT012
        for chunk in chunks:
            decoder.feed(chunk)
            items.extend(decoder)
    assert items == [1, [2]]
    assert info.value.offset == 3


def test_hook_errors_are_decode_errors() -> None:
    def hook(tag: cbor2.CBORTag, immutable: bool) -> Any:
        raise KeyError(tag.tag)

    with pytest.raises(DecodeError, match="semantic tag 4660") as info:
        decode_chunks(CborCodec(tag_hook=hook), [hexes("d9 1234 00")])
    assert isinstance(info.value.__cause__, cbor2.CBORDecodeError)
    assert isinstance(info.value.__cause__.__cause__, KeyError)

    def object_hook(obj: Any, immutable: bool) -> Any:
        raise KeyError(len(obj))

    with pytest.raises(DecodeError, match="error decoding map") as info:
        decode_chunks(CborCodec(object_hook=object_hook), [hexes("a1 01 02")])
    assert isinstance(info.value.__cause__, cbor2.CBORDecodeError)
    assert isinstance(info.value.__cause__.__cause__, KeyError)


def test_a_cbor2_without_the_decoding_options_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # cbor2 5 with its C extension (or 6.0, 6.1): neither the fast path's options nor
    # the pure-Python decoder _cbor5 builds on, so the peer policy could not hold.
    monkeypatch.setattr(cbor_module, "_FAST", False)
    monkeypatch.setattr(cbor_module, "_SEMANTIC_FALLBACK", False)
    with pytest.raises(ImportError, match=r"CborCodec needs cbor2 6\.2 or later, or cbor2 5's"):
        CborCodec()


@pytest.mark.parametrize(
    ("data", "error"),
    [(hexes("01 1c 02"), DecodeError), (hexes("01 5b ffffffffffffffff"), FrameTooLarge)],
)
def test_failed_decoder_reraises_the_same_error(data: bytes, error: type[Exception]) -> None:
    decoder = CborCodec().decoder()
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
    "tail", ["82", "82 01", "19 01", "63 6162", "5f", "5f 41 61", "9f 01", "d9 d9f7", "c1"]
)
def test_feed_eof_inside_an_item(tail: str) -> None:
    data = hexes(*tail.split())
    decoder = CborCodec().decoder()
    decoder.feed(stream([1, "two"]) + data)
    assert list(decoder) == [1, "two"]
    with pytest.raises(IncompleteFrame) as info:
        decoder.feed_eof()
    assert (info.value.pending, info.value.offset) == (len(data), 5)
    with pytest.raises(IncompleteFrame) as again:
        list(decoder)
    assert again.value is info.value


def items(events: list[Any]) -> str:
    """The decoded items among ``decode_events``' events (errors are plain tuples)."""
    return repr([event for event in events if type(event) is not tuple])


@settings(max_examples=300, deadline=None)
@given(
    blob=st.binary(max_size=300)
    | st.lists(
        st.sampled_from(
            [b"\x5f", b"\x9f", b"\xbf", b"\xff", b"\x81", b"\xc1", b"\x41a", b"\x00", b"\x5a"]
        )
    ).map(b"".join),
    limit=st.sampled_from([1, 8, 64, MIB]),
    max_depth=st.sampled_from([0, 2, 256]),
    data=st.data(),
)
def test_arbitrary_bytes_raise_only_codec_errors_and_are_chunk_invariant(
    blob: bytes, limit: int, max_depth: int, data: st.DataObject
) -> None:
    codec = CborCodec(limit, max_depth=max_depth)
    whole = decode_events(codec, [blob])
    cut = decode_events(codec, draw_chunks(data, blob))
    bytewise = decode_events(codec, split_at(blob, range(len(blob))))
    # The items before the first error agree however the bytes were cut (cbor2 reads
    # whole items, the scanner items cut short: they must agree on what is valid).
    # Compared as repr: random bytes make NaNs.
    assert items(cut) == items(bytewise) == items(whole)

"""CborDecoder's scanner on malformed and hostile items, with the exact error, for
mutants of wsframed/codecs/cbor.py that no test killed (tools/mutation.py;
docs/contributing.md, Testing). Each item follows a complete one (``0x01``) and is fed
whole (cbor2 stops at it and hands it to the scanner) or cut after its first byte (the
scanner resumes it): the caller gets the item before it, then the scanner's own
message, not cbor2's.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

import cbor2
import pytest

import wsframed.codecs.cbor as cbor_module
from wsframed.codecs import CborCodec
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame

KEYS = (
    "; map keys and set elements may be integers, floats, simple values and strings, "
    "whose hashes a peer cannot make collide (pass trusted_peer=True to accept any)"
)


def decode(data: bytes, cut: bool, **options: Any) -> tuple[list[Any], str]:
    """The items decoded from ``0x01`` + ``data`` and the DecodeError's message."""
    decoder = CborCodec(**options).decoder()
    pieces = [b"\x01" + data[:1], data[1:]] if cut else [b"\x01" + data]
    items: list[Any] = []

    def feed_all() -> None:
        for piece in pieces:
            decoder.feed(piece)
            items.extend(decoder)

    with pytest.raises(DecodeError) as error:
        feed_all()
    return items, str(error.value)


@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        # an indefinite-length map: key 1, then a break where its value should be
        (b"\xbf\x01\xff", {}, "break (0xff) between a key and its value in a map"),
        # a negative integer with "indefinite length" (additional information 31)
        (b"\x3f", {}, "indefinite length is not allowed for major type 1"),
        # three indefinite-length arrays, one inside the other, over max_depth=2
        (b"\x9f\x9f\x9f\xff\xff\xff", {"max_depth": 2},
         "CBOR item nested deeper than max_depth=2"),
        # a map whose key is an indefinite-length array, or map
        (b"\xa1\x9f\xff\x01", {},
         f"a map key is an array{KEYS}; the head at stream offset 2"),
        (b"\xa1\xbf\xff\x01", {}, f"a map key is a map{KEYS}; the head at stream offset 2"),
    ],
)
def test_the_scanner_refuses_an_indefinite_length_head_with_its_own_message(
    data: bytes, options: dict[str, Any], message: str, cut: bool
) -> None:
    items, error = decode(data, cut, **options)
    assert items == [1]
    assert error == f"{message} (frame starting at stream offset 1)"


@pytest.mark.parametrize("cut", [False, True])
def test_indefinite_length_arrays_exactly_max_depth_deep_are_decoded(cut: bool) -> None:
    """Two indefinite-length arrays, one inside the other, with max_depth=2."""
    decoder = CborCodec(max_depth=2).decoder()
    data = b"\x01\x9f\x9f\xff\xff"
    items: list[Any] = []
    for piece in [data[:2], data[2:]] if cut else [data]:
        decoder.feed(piece)
        items.extend(decoder)
    assert items == [1, [[]]]


@pytest.mark.parametrize(
    ("data", "size", "at_least"),
    [
        (b"\x59\x01\x00", 259, False),  # a byte string of 256: exactly 3 + 256 bytes
        (b"\x81\x59\x01\x00", 260, True),  # the same in an array: at least 1 + 259
        (b"\x81\x79\x01\x00", 260, True),  # a text string
    ],
)
def test_a_string_head_over_the_limit_after_an_item_gives_its_own_size(
    data: bytes, size: int, at_least: bool
) -> None:
    """The size is counted from the start of the item, not of the buffer: the item
    before it in the same chunk is not counted."""
    decoder = CborCodec(max_frame_size=100).decoder()
    decoder.feed(b"\x01" + data)
    items: list[Any] = []
    with pytest.raises(FrameTooLarge) as error:
        items.extend(decoder)
    assert items == [1]
    found = (error.value.size, error.value.limit, error.value.at_least, error.value.local)
    assert found == (size, 100, at_least, False)


def feed_cut(data: bytes, cut: int, **options: Any) -> tuple[list[Any], Exception | None]:
    """The items decoded from ``0x01`` + ``data`` fed whole (``cut`` 0) or in two
    pieces cut after ``cut`` bytes of ``data``, and the error raised, if any."""
    decoder = CborCodec(**options).decoder()
    pieces = [b"\x01" + data] if not cut else [b"\x01" + data[:cut], data[cut:]]
    items: list[Any] = []
    try:
        for piece in pieces:
            decoder.feed(piece)
            items.extend(decoder)
    except (DecodeError, FrameTooLarge) as exc:
        return items, exc
    return items, None


ARRAY_24 = b"\x98\x18" + b"\x00" * 24  # an array of 24 zeros: its count in a second byte


@pytest.mark.parametrize("cut", [0, 2, 3])
@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        (b"\xa1\x80\x01", {}, f"a map key is an array{KEYS}; the head at stream offset 2"),
        (b"\xa1\xa0\x01", {}, f"a map key is a map{KEYS}; the head at stream offset 2"),
        (b"\xa1" + ARRAY_24 + b"\x01", {},
         f"a map key is an array{KEYS}; the head at stream offset 2"),
        (b"\xa1\xda\x00\x01\x00\x00\x01\x01", {},
         f"a map key is tag 65536{KEYS}; the head at stream offset 2"),
        (b"\xc4\x82\xc1\x01\x01", {},
         "tag 1 inside a decimal fraction, bigfloat or rational (tags 4, 5, 30), which may "
         "only hold integers; the head at stream offset 3"),
        # an array of 24 in an array of 24, and a tag in an array, over max_depth=1
        (b"\x98\x18" + ARRAY_24 + b"\x00" * 23, {"max_depth": 1},
         "CBOR item nested deeper than max_depth=1"),
        (b"\x81\xda\x00\x01\x00\x00\x01", {"max_depth": 1},
         "CBOR item nested deeper than max_depth=1"),
    ],
)
def test_the_scanner_refuses_a_long_or_empty_container_or_a_tag_with_its_own_message(
    data: bytes, options: dict[str, Any], message: str, cut: int
) -> None:
    """Heads the scanner's tables do not cover (empty containers where a key goes,
    containers of 24 or more entries, 32-bit tags, tags inside a decimal fraction)."""
    items, error = feed_cut(data, cut, **options)
    assert items == [1]
    assert isinstance(error, DecodeError)
    assert str(error) == f"{message} (frame starting at stream offset 1)"


@pytest.mark.parametrize("cut", [0, 2, 3])
def test_an_array_head_of_24_entries_over_the_limit_gives_the_item_s_least_size(
    cut: int,
) -> None:
    """An array of 100 entries after an item, limit 50: at least 2 + 100 bytes."""
    items, error = feed_cut(b"\x98\x64" + b"\x00" * 10, cut, max_frame_size=50)
    assert items == [1]
    assert isinstance(error, FrameTooLarge)
    assert (error.size, error.limit, error.at_least) == (102, 50, True)


@pytest.mark.parametrize("cut", [0, 2, 3])
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x82" + ARRAY_24 + b"\x01\x02", [[0] * 24, 1]),  # a long array inside an item
        (b"\xc4\x82\xc2\x41\x01\x01\x02", Decimal("1E+1")),  # a bignum in a decimal
    ],
)
def test_items_the_scanner_resumes_across_pieces_are_decoded_whole(
    data: bytes, expected: Any, cut: int
) -> None:
    """Cut in the middle, each piece scanned as it comes: the item, then the next."""
    items, error = feed_cut(data, cut)
    assert error is None
    assert items == [1, expected, 2]


@pytest.mark.parametrize("cut", [0, 2, 3])
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x5f\x5c\x00\xff", "initial byte 0x5c inside an indefinite-length byte string, "
         "which may only hold definite-length byte strings"),  # reserved length (28)
        (b"\x7f\x7c\x00\xff", "initial byte 0x7c inside an indefinite-length text string, "
         "which may only hold definite-length text strings"),
        (b"\x7f\x41\x00\xff", "initial byte 0x41 inside an indefinite-length text string, "
         "which may only hold definite-length text strings"),  # a byte string chunk
    ],
)
def test_an_indefinite_length_string_refuses_a_chunk_of_another_kind(
    data: bytes, message: str, cut: int
) -> None:
    items, error = feed_cut(data, cut)
    assert items == [1]
    assert isinstance(error, DecodeError)
    assert str(error) == f"{message} (frame starting at stream offset 1)"


@pytest.mark.parametrize("cut", [2, 3, 11])
@pytest.mark.parametrize(("kind", "expected"), [(0x40, b"ab"), (0x60, "ab")])
def test_an_indefinite_length_string_with_an_8_byte_length_chunk_is_decoded(
    kind: int, expected: bytes | str, cut: int
) -> None:
    """A chunk whose length takes 8 bytes (additional information 27) is allowed."""
    data = bytes([kind | 31, kind | 27]) + (2).to_bytes(8, "big") + b"ab\xff\x02"
    items, error = feed_cut(data, cut)
    assert error is None
    assert items == [1, expected, 2]


@pytest.mark.parametrize("cut", [0, 2, 3])
@pytest.mark.parametrize("chunk", [18, 19])
def test_an_indefinite_length_string_at_the_limit_gives_the_item_s_least_size(
    chunk: int, cut: int
) -> None:
    """Limit 20, after an item: a chunk ending 20 bytes into the item (the break
    still to come) or 21 bytes in: the item is at least 21 bytes."""
    data = bytes([0x5F, 0x40 | chunk]) + b"x" * chunk
    items, error = feed_cut(data, cut, max_frame_size=20)
    assert items == [1]
    assert isinstance(error, FrameTooLarge)
    assert (error.size, error.limit, error.at_least) == (21, 20, True)


@pytest.mark.parametrize(("size", "refused"), [(1024, False), (1025, True)])
def test_a_bignum_over_1024_bytes_in_a_decimal_is_refused_at_its_head(
    size: int, refused: bool
) -> None:
    """The bignum's length field is the last thing received: a length over the
    1024-byte bound fails at once, before its bytes arrive; 1024 waits for them."""
    decoder = CborCodec().decoder()
    decoder.feed(b"\x01\xc4\x82\xc2\x59" + size.to_bytes(2, "big"))
    items: list[Any] = []
    if not refused:
        items.extend(decoder)
        assert items == [1]
        return
    with pytest.raises(DecodeError) as error:
        items.extend(decoder)
    assert items == [1]
    assert str(error.value) == (
        "a bignum of 1025 bytes inside a decimal fraction, bigfloat or rational (tags 4, 5, "
        "30), over the 1024-byte bound: cbor2 converts them in time quadratic in their size "
        "(pass trusted_peer=True to lift the bound); the head at stream offset 3 (frame "
        "starting at stream offset 1)"
    )


def test_a_bignum_s_length_field_in_pieces_is_still_bounded() -> None:
    """The length field of a 2,000-byte bignum in a decimal fraction arrives one
    byte at a time: the bound is checked once the field is whole."""
    decoder = CborCodec().decoder()
    decoder.feed(b"\x01\xc4\x82\xc2\x59\x07")
    assert list(decoder) == [1]
    decoder.feed(b"\xd0")
    with pytest.raises(DecodeError, match=r"^a bignum of 2000 bytes inside a decimal"):
        list(decoder)


@pytest.mark.parametrize("cut", [3, 5])
def test_an_indefinite_length_string_resumed_inside_an_array_ends_in_it(cut: int) -> None:
    """[(_ "a", "b"), 1] cut inside the string: once the string ends, the array
    still needs its second item."""
    data = b"\x82\x5f\x41a\x41b\xff\x01\x02"
    items, error = feed_cut(data, cut)
    assert error is None
    assert items == [1, [b"ab", 1], 2]


@pytest.mark.parametrize("cut", [0, 4])
@pytest.mark.parametrize(
    ("bignum", "exponent"),
    [
        (b"\x40", 0),  # an empty bignum
        (b"\x4a" + b"\x00" * 9 + b"\x01", 1),  # 10 bytes, the length in the head
        (b"\x5b" + (2).to_bytes(8, "big") + b"\x00\x01", 1),  # an 8-byte length field
    ],
)
def test_bignums_of_every_head_form_in_a_decimal_are_decoded(
    bignum: bytes, exponent: int, cut: int
) -> None:
    """Tag 4 [bignum, 1]: the scanner measures each bignum's head to bound it, then
    cbor2 decodes the decimal fraction."""
    items, error = feed_cut(b"\xc4\x82\xc2" + bignum + b"\x01\x02", cut)
    if bignum == b"\x40" and cbor_module._SEMANTIC_FALLBACK:
        # cbor2 5 cannot convert an empty bignum (int(hexlify(b""), 16) raises): the
        # item passed the scanner's bound, and cbor2's error is reported.
        assert items == [1]
        assert str(error) == (
            "invalid CBOR item: CBORDecodeValueError: Incorrect tag 4 payload "
            "(frame starting at stream offset 1)"
        )
        return
    assert error is None
    assert items == [1, Decimal(1).scaleb(exponent), 2]


@pytest.mark.parametrize("cut", [4, 6])
def test_an_indefinite_length_string_resumed_two_arrays_deep_ends_both(cut: int) -> None:
    """[[(_ "a", "b")], 1] cut inside the string: once it ends, the inner array ends
    too and the outer one still needs its second item."""
    data = b"\x82\x81\x5f\x41a\x41b\xff\x01\x02"
    items, error = feed_cut(data, cut)
    assert error is None
    assert items == [1, [[b"ab"], 1], 2]


# Mutants outside the scanner (tools/mutation.py --error-paths, cbor.py lines 1-447 and
# 608-1351): the codec's bounds, the conversion policy's checks (_check_open), the
# decoder's loop, feed_eof() and the failed state. Inputs built with cbor2; the values
# expected are those the codec gives on cbor2 6 and on cbor2 5's pure decoder alike.


def test_max_frame_size_reaches_2_to_the_48_and_no_further() -> None:
    """2**48 is the largest limit (every count stays below the indefinite-length
    markers); one more is the caller's error, with the value in the message."""
    codec = CborCodec(max_frame_size=2**48)
    assert codec.max_frame_size == 2**48
    decoder = codec.decoder()
    decoder.feed(cbor2.dumps([1, "a"]) + cbor2.dumps(2))
    assert list(decoder) == [[1, "a"], 2]
    for bad in (2**48 + 1, 0):
        with pytest.raises(ValueError, match=r"^max_frame_size must be in") as error:
            CborCodec(max_frame_size=bad)
        assert str(error.value) == f"max_frame_size must be in 1..2**48, got {bad}"


def decimal(mantissa: Any, exponent: int = 1) -> bytes:
    """A decimal fraction (tag 4) of ``exponent`` and ``mantissa``, as cbor2 writes it."""
    return cbor2.dumps(cbor2.CBORTag(4, [exponent, mantissa]))


BIGNUM_MESSAGE = (
    "a bignum of {} bytes inside a decimal fraction, bigfloat or rational (tags 4, 5, "
    "30), over the 1024-byte bound: cbor2 converts them in time quadratic in their size "
    "(pass trusted_peer=True to lift the bound); the head at stream offset 4 (frame "
    "starting at stream offset 1)"
)


@pytest.mark.parametrize("cut", [0, 3, 4, 5])
@pytest.mark.parametrize(
    ("mantissa", "expected"),
    [
        (cbor2.CBORTag(3, b"\x05"), Decimal("-6E+1")),  # a negative bignum (tag 3)
        (cbor2.CBORTag(2, b"\x00" * 22 + b"\x05"), Decimal("5E+1")),  # 23 bytes: in the head
        (cbor2.CBORTag(2, b"\x00" * 1023 + b"\x05"), Decimal("5E+1")),  # 1,024: the bound
    ],
)
def test_bignums_of_both_signs_and_head_lengths_in_a_decimal_are_decoded(
    mantissa: Any, expected: Decimal, cut: int
) -> None:
    """Cut before the bignum's tag, after it (its head still to come) or in its head."""
    items, error = feed_cut(decimal(mantissa) + b"\x02", cut)
    assert error is None
    assert items == [1, expected, 2]


@pytest.mark.parametrize("cut", [0, 4, 5, 6])
@pytest.mark.parametrize("size", [1025, 2000])
def test_a_bignum_over_the_bound_is_refused_wherever_its_head_is_cut(
    size: int, cut: int
) -> None:
    """Only the bignum's head is sent (its bytes never come): cut right after the
    bignum's tag, the check waits for the head instead of passing it unchecked."""
    data = decimal(cbor2.CBORTag(2, b"\x01" * size))[:7]
    items, error = feed_cut(data, cut)
    assert items == [1]
    assert isinstance(error, DecodeError)
    assert str(error) == BIGNUM_MESSAGE.format(size)


@pytest.mark.parametrize("cut", [0, 4, 5])
@pytest.mark.parametrize(
    ("bignum", "message"),
    [
        (b"\xc2\x5f\x41\x05\xff", "an indefinite-length bignum inside a decimal fraction, "
         "bigfloat or rational (tags 4, 5, 30); the head at stream offset 4"),
        (b"\xc2\x5c\x00", "reserved additional information 28 in initial byte 0x5c"),
    ],
)
def test_a_bignum_in_a_decimal_with_an_indefinite_or_reserved_length_is_refused(
    bignum: bytes, message: str, cut: int
) -> None:
    items, error = feed_cut(b"\xc4\x82\x01" + bignum + b"\x02", cut)
    assert items == [1]
    assert isinstance(error, DecodeError)
    assert str(error) == f"{message} (frame starting at stream offset 1)"


@pytest.mark.parametrize("cut", [0, 3, 4])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        # the innermost mark (the set's), not the map's around it, applies to its content
        ({1: cbor2.CBORTag(258, {})}, "tag 258 (a set) holds a map, not an array; the "
         "head at stream offset 6"),
        (cbor2.CBORTag(258, {}), "tag 258 (a set) holds a map, not an array; the head at "
         "stream offset 4"),
        (cbor2.CBORTag(258, 1), None),  # not a container: cbor2's own error
    ],
)
def test_a_set_holding_anything_but_an_array_is_refused(
    value: Any, message: str | None, cut: int
) -> None:
    items, error = feed_cut(cbor2.dumps(value) + b"\x02", cut)
    assert items == [1]
    assert isinstance(error, DecodeError)
    if message is not None:
        assert str(error) == f"{message} (frame starting at stream offset 1)"


@pytest.mark.skipif(
    not cbor_module._FAST, reason="cbor2 5 (Pyodide's): no fast path, every item is scanned"
)
def test_the_fast_path_keeps_its_window_across_items_the_scanner_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100 decimal fractions (each one goes from the fast path to the scanner and
    back) in a bytearray buffer: the fast path copies one window for all of them,
    not one per item (a copy of up to max_frame_size bytes per few-byte item)."""
    windows: list[int] = []

    class CountingBytesIO(cbor_module.BytesIO):
        def __init__(self, data: Any = b"") -> None:
            windows.append(len(data))
            super().__init__(data)

    monkeypatch.setattr(cbor_module, "BytesIO", CountingBytesIO)
    items = [Decimal(k) / 4 for k in range(100)]
    data = b"".join(map(cbor2.dumps, items))
    decoder = CborCodec(4096).decoder()
    decoder.feed(data[:-10])
    decoder.feed(data[-10:])  # smaller than the buffer: it grows as a bytearray
    assert list(decoder) == items
    assert [size for size in windows if size] == [len(data)]


def test_bytes_fed_while_iterating_are_read_from_where_the_last_item_ended() -> None:
    """The buffer grows (a bytearray) while the caller handles an item; the items fed
    then include decimal fractions, which the scanner takes between fast-path items:
    every item comes once, in order, none skipped."""
    later = [Decimal(1) / 4, 5, Decimal(3) / 4, *range(6, 14)]
    decoder = CborCodec(4096).decoder()
    decoder.feed(b"\x01\x02\x03")
    decoder.feed(b"\x04")
    items: list[Any] = []
    for item in decoder:
        items.append(item)
        if item == 4:
            decoder.feed(b"".join(map(cbor2.dumps, later)))
    assert items == [1, 2, 3, 4, *later]
    decoder.feed_eof()


@pytest.mark.parametrize(("data", "scanner", "fast"), [
    (b"\xff\x02", "unexpected break (0xff) outside an indefinite-length item",
     "CBORDecodeError: break code encountered where a data item was expected"),
    (b"\x1c\x02", "reserved additional information 28 in initial byte 0x1c",
     "CBORDecodeError: error decoding unsigned integer: unknown unsigned integer "
     "subtype 0x1c"),
])
def test_a_trusted_peer_s_malformed_item_fails_with_the_decoder_s_own_message(
    data: bytes, scanner: str, fast: str
) -> None:
    """With trusted_peer=True cbor2's fast path reports what it found wrong (cbor2's
    exception as the cause), without scanning the item again; on cbor2 5 every item
    is the scanner's, with its message."""
    items, error = feed_cut(data, 0, trusted_peer=True)
    assert items == [1]
    assert isinstance(error, DecodeError)
    if cbor_module._FAST:
        assert str(error) == f"invalid CBOR item: {fast} (frame starting at stream offset 1)"
        assert isinstance(error.__cause__, cbor2.CBORDecodeError)
    else:
        assert str(error) == f"{scanner} (frame starting at stream offset 1)"


@pytest.mark.skipif(
    not cbor_module._FAST, reason="cbor2 5 (Pyodide's): no fast path, every item is scanned"
)
def test_integer_keyed_items_are_decoded_in_one_run_not_each_by_cbor2_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fifty maps with integer keys: checked together by one pass and decoded by a
    CBORDecoder; none goes through the scanner and cbor2.loads one by one."""
    calls: list[int] = []
    loads = cbor2.loads

    def counting_loads(data: bytes, **options: Any) -> Any:
        calls.append(len(data))
        return loads(data, **options)

    monkeypatch.setattr(cbor2, "loads", counting_loads)
    codec = CborCodec()  # its own option check calls loads once
    calls.clear()
    items = [{k: "v", k + 1: [k]} for k in range(50)]
    decoder = codec.decoder()
    decoder.feed(b"".join(map(cbor2.dumps, items)))
    assert list(decoder) == items
    assert calls == []


@pytest.mark.parametrize("cut", [0, 1, 6])
def test_an_item_one_byte_over_the_limit_received_whole_has_its_exact_size(cut: int) -> None:
    """An array of ten zeros is 11 bytes, limit 10: the scan looks at limit + 1 bytes,
    so the item is known whole, exactly 11 bytes (not "at least"); ten zeros less one
    is within the limit."""
    items, error = feed_cut(cbor2.dumps([0] * 10), cut, max_frame_size=10)
    assert items == [1]
    assert isinstance(error, FrameTooLarge)
    assert (error.size, error.limit, error.at_least, error.local) == (11, 10, False, False)
    items, error = feed_cut(cbor2.dumps([0] * 9) + b"\x02", cut, max_frame_size=10)
    assert (items, error) == ([1, [0] * 9, 2], None)


def test_the_decoder_keeps_no_reference_to_a_chunk_it_decoded_whole() -> None:
    """Between feeds, a decoder whose items were all taken holds nothing of the chunk
    (neither its buffer nor the window cbor2 read it through)."""
    data = bytes(b"\x01\x02" * 1000)
    decoder = CborCodec().decoder()
    before = sys.getrefcount(data)
    decoder.feed(data)
    assert list(decoder) == [1, 2] * 1000
    assert sys.getrefcount(data) == before


@pytest.mark.parametrize("cut", [0, 1, 2, 3])
@pytest.mark.parametrize("value", [[[[0]]], {1: {2: {3: 0}}}, [{1: [0]}]])
def test_short_containers_one_level_over_max_depth_are_refused_by_the_scanner(
    value: Any, cut: int
) -> None:
    """Arrays and maps of fewer than 24 entries, three deep, max_depth=2: the scanner's
    own message (not cbor2's), whole and resumed; two deep is decoded."""
    items, error = feed_cut(cbor2.dumps(value), cut, max_depth=2)
    assert items == [1]
    assert isinstance(error, DecodeError)
    assert str(error) == (
        "CBOR item nested deeper than max_depth=2 (frame starting at stream offset 1)"
    )
    items, error = feed_cut(cbor2.dumps([{1: 0}]) + b"\x02", cut, max_depth=2)
    assert (items, error) == ([1, [{1: 0}], 2], None)


@pytest.mark.parametrize("cut", [0, 1, 2, 4])
@pytest.mark.parametrize(
    ("value", "max_depth", "within"),
    [
        # tags the scanner passes inline: each one a level, as cbor2 counts them
        ([[cbor2.CBORTag(1000, 0)]], 2, [cbor2.CBORTag(1000, 0)]),
        (cbor2.CBORTag(1000, cbor2.CBORTag(1000, cbor2.CBORTag(1000, 0))), 2,
         cbor2.CBORTag(1000, cbor2.CBORTag(1000, 0))),
        # a decimal of two small integers, taken inline: the tag and its array, 2 levels
        (Decimal("1.5"), 1, [0]),
        ([Decimal("1.5")], 2, Decimal("1.5")),
    ],
)
def test_tags_one_level_over_max_depth_are_refused_by_the_scanner(
    value: Any, max_depth: int, within: Any, cut: int
) -> None:
    items, error = feed_cut(cbor2.dumps(value), cut, max_depth=max_depth)
    assert items == [1]
    assert isinstance(error, DecodeError)
    assert str(error) == (
        f"CBOR item nested deeper than max_depth={max_depth} (frame starting at stream "
        "offset 1)"
    )
    items, error = feed_cut(cbor2.dumps(within) + b"\x02", cut, max_depth=max_depth)
    assert (items, error) == ([1, within, 2], None)


def test_the_decoder_keeps_no_reference_to_a_chunk_that_ended_inside_an_item() -> None:
    """A chunk of 2,000 items and the start of one more: once iterated, the decoder
    keeps the two bytes of the item (its own copy), not the chunk or cbor2's window."""
    data = bytes(b"\x01\x02" * 1000 + b"\x82\x01")
    decoder = CborCodec().decoder()
    before = sys.getrefcount(data)
    decoder.feed(data)
    assert list(decoder) == [1, 2] * 1000
    assert sys.getrefcount(data) == before
    decoder.feed(b"\x02")
    assert list(decoder) == [[1, 2]]


def test_feed_eof_after_an_abandoned_iteration_counts_from_the_first_item_not_taken() -> None:
    """The stream's first 3 bytes are an item and a cut array; the caller then feeds
    3 bytes, takes one item and stops iterating: feed_eof() counts the 2 bytes not
    taken, at their stream offset (4)."""
    decoder = CborCodec().decoder()
    decoder.feed(b"\x01\x82\x01")
    assert list(decoder) == [1]
    decoder.feed(b"\x02\x03\x04")
    assert next(iter(decoder)) == [1, 2]
    with pytest.raises(IncompleteFrame) as error:
        decoder.feed_eof()
    assert (error.value.offset, str(error.value)) == (
        4,
        "stream ended inside a frame, with 2 bytes of it received (frame starting at "
        "stream offset 4)",
    )


def test_feed_eof_inside_a_long_string_counts_the_collected_chunks() -> None:
    """A 200,000-byte string after an item: its 5-byte head and 1,000 bytes, then two
    chunks of 70,000 (collected aside, the string still short of its end): feed_eof()
    counts all 141,005 bytes of it."""
    head = cbor2.dumps(b"x" * 200_000)[:5]
    decoder = CborCodec().decoder()
    decoder.feed(b"\x01" + head + b"x" * 1000)
    assert list(decoder) == [1]
    for _ in range(2):
        decoder.feed(b"x" * 70_000)
        assert list(decoder) == []
    with pytest.raises(IncompleteFrame) as error:
        decoder.feed_eof()
    assert (error.value.offset, str(error.value)) == (
        1,
        "stream ended inside a frame, with 141005 bytes of it received (frame starting at "
        "stream offset 1)",
    )


@pytest.mark.parametrize("cut", [0, 4])
def test_an_indefinite_length_array_after_an_integer_keyed_map_is_decoded(cut: int) -> None:
    """The run of plain items that starts at the integer-keyed map stops at the
    indefinite-length array (its 0x9f is no definite head, whatever bytes follow it):
    128 zeros then the break decode as one array."""
    data = cbor2.dumps({1: 0}) + b"\x9f" + b"\x00" * 128 + b"\xff" + b"\x02"
    items, error = feed_cut(data, cut)
    assert error is None
    assert items == [1, {1: 0}, [0] * 128, 2]


@pytest.mark.parametrize("cut", [0, 4, 5])
@pytest.mark.parametrize("head", [0x9C, 0x5C, 0x9D])
def test_a_reserved_head_after_an_integer_keyed_map_has_the_scanner_s_message(
    head: int, cut: int
) -> None:
    """A reserved length (28 to 30) after the integer-keyed map, followed by zeros
    (which would read as a length of 0): not a plain item, so the scanner says what
    is wrong with it."""
    data = cbor2.dumps({1: 0}) + bytes([head]) + b"\x00" * 16 + b"\x02"
    items, error = feed_cut(data, cut)
    assert items == [1, {1: 0}]
    assert isinstance(error, DecodeError)
    assert str(error) == (
        f"reserved additional information {head & 0x1F} in initial byte 0x{head:02x} "
        "(frame starting at stream offset 4)"
    )


@pytest.mark.parametrize("cut", [0, 4, 9])
def test_items_after_a_long_array_inside_an_array_count_in_the_outer_array(cut: int) -> None:
    """After an integer-keyed map, an array holding a 24-entry array and three more
    items, the last a decimal (which the run of plain items stops at): the outer
    array ends after all four, then the next item follows."""
    value = [[0] * 24, 1, 2, Decimal("1.5")]
    data = cbor2.dumps({1: 0}) + cbor2.dumps(value) + cbor2.dumps({2: 1}) + b"\x02"
    items, error = feed_cut(data, cut)
    assert error is None
    assert items == [1, {1: 0}, value, {2: 1}, 2]


@pytest.mark.skipif(
    not cbor_module._SEMANTIC_FALLBACK, reason="cbor2 5's pure-Python encoder only (Pyodide's)"
)
def test_encoding_past_cbor2_5_s_recursion_limit_is_a_value_error_naming_it() -> None:
    """cbor2 5's encoder recurses once per level: 1,000 nested lists raise
    RecursionError inside it, given to the caller as a ValueError that says why."""
    item: list[Any] = []
    for _ in range(1000):
        item = [item]
    with pytest.raises(ValueError, match=r"^cannot encode an item nested this deep") as error:
        CborCodec().encode(item)
    assert str(error.value) == (
        "cannot encode an item nested this deep with cbor2 5.9.0: its pure-Python encoder "
        "stops at Python's recursion limit (about 170 levels)"
    )
    assert isinstance(error.value.__cause__, RecursionError)

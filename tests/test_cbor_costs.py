"""CborCodec's conversion policy: what a peer's tags and map keys can make cbor2 do.

Each hostile shape here cost seconds to minutes of CPU per frame before the policy
(tests/cbor_worst_cases.py has them at any size); each test asserts what the caller
gets now: a value, an inert ``CBORTag``, or a ``DecodeError`` naming the head.
"""

from __future__ import annotations

import datetime
import decimal
import email.message
import fractions
import ipaddress
import re
import uuid
from typing import Any

import cbor2
import pytest

import wsframed.codecs.cbor as cbor_module
from wsframed.codecs.cbor import CborCodec
from wsframed.errors import DecodeError

from .cbor_worst_cases import (
    MODULUS,
    array,
    byte_string,
    cbor_worst_case,
    head,
    integer,
    tag,
    text,
    tuple_hash_collisions,
)
from .codec_checks import assert_chunk_invariant, decode_chunks, split_at

KIB = 1024
PREFIX = cbor2.dumps({"before": [1, 2]})  # an item ahead, so offsets are not 0
REFUSED_KEY = (
    "; map keys and set elements may be integers, floats, simple values and strings, "
    "whose hashes a peer cannot make collide (pass trusted_peer=True to accept any)"
)


def refusal(codec: CborCodec, frame: bytes, *, cuts: int = 0) -> DecodeError:
    """Decode PREFIX + frame + one more item; return the error, after PREFIX's item.

    ``cuts``: feed in pieces of that many bytes (0: whole).
    """
    data = PREFIX + frame + cbor2.dumps(3)
    chunks = [data] if not cuts else split_at(data, range(cuts, len(data), cuts))
    decoder = codec.decoder()
    items: list[Any] = []
    with pytest.raises(DecodeError) as info:  # noqa: PT012
        for chunk in chunks:
            decoder.feed(chunk)
            items.extend(decoder)
    assert items == [{"before": [1, 2]}]
    assert info.value.offset == len(PREFIX)
    assert info.value.__cause__ is None
    return info.value


def head_size(initial: int) -> int:
    """The size of a head from its initial byte."""
    info = initial & 0x1F
    return 1 if info < 24 else 1 + (1 << (info - 24))


def at(offset: int) -> str:
    """The end of a refusal's message for the head at ``offset`` in the frame."""
    start = len(PREFIX)
    return (
        f"; the head at stream offset {start + offset} (frame starting at stream offset {start})"
    )


# -- numeric tags: decimal fraction (4), bigfloat (5), rational (30) ------------------


@pytest.mark.parametrize(
    ("name", "tag_offset", "size"),
    [
        # cbor2 6.3 took 6 s over 256 KiB for each of the first three, 1.5 s for the last
        ("decimal_bignum", 3, 256 * KIB - 16),  # c4 82 00 c2 5a ...
        ("bigfloat_bignum", 3, 256 * KIB - 16),  # c5 82 22 c2 5a ...
        ("bigfloat_bignum_exponent", 2, 256 * KIB - 16),  # c5 82 c2 5a ...
        ("rational_bignums", 3, (256 * KIB - 16) // 2),  # d8 1e 82 c2 5a ...
    ],
)
@pytest.mark.parametrize("cuts", [0, 1000])
def test_a_huge_bignum_in_a_numeric_tag_is_refused(
    name: str, tag_offset: int, size: int, cuts: int
) -> None:
    frame = cbor_worst_case(name, 256 * KIB)
    error = refusal(CborCodec(), frame, cuts=cuts)
    assert str(error) == (
        f"a bignum of {size} bytes inside a decimal fraction, bigfloat or rational "
        f"(tags 4, 5, 30), over the 1024-byte bound: cbor2 converts them in time "
        f"quadratic in their size (pass trusted_peer=True to lift the bound)" + at(tag_offset)
    )


def test_numeric_tags_convert_up_to_the_bound() -> None:
    largest = int.from_bytes(b"\x9f" * 1024, "big")
    frames = [
        tag(4, array([integer(-5), integer(largest)])),
        tag(5, array([integer(-3), integer(-largest)])),
        tag(30, array([integer(largest), integer(3)])),
        tag(4, array([integer(-1), integer(125)])),
    ]
    items = [cbor2.loads(frame) for frame in frames]  # what cbor2 makes of them
    assert [type(item) for item in items] == [decimal.Decimal] * 2 + [fractions.Fraction] + [
        decimal.Decimal
    ]
    assert items[3] == decimal.Decimal("12.5")
    data = b"".join(frames)
    assert decode_chunks(CborCodec(), [data]) == items
    assert decode_chunks(CborCodec(), split_at(data, range(0, len(data), 7))) == items
    over = tag(4, array([integer(-5), integer(largest << 8)]))
    error = refusal(CborCodec(), over, cuts=1)
    assert str(error).startswith("a bignum of 1025 bytes inside a decimal fraction")
    assert str(error).endswith(at(3))


@pytest.mark.parametrize(
    ("wire", "message", "offset"),
    [
        # 55799 unwraps to its content, so a bignum hidden in it reached Decimal().
        ("c4 82 00 d9d9f7 c2 42 0102", "tag 55799 inside a decimal fraction", 3),
        ("c5 82 d8 1c 01 01", "tag 28 inside a decimal fraction", 2),
        ("d8 1e 82 c4 82 00 01 01", "tag 4 inside a decimal fraction", 3),
        ("c4 82 00 c2 5f 41 01 ff", "an indefinite-length bignum inside a decimal", 3),
        ("c4 9f 00 d9 d9f7 01 ff", "tag 55799 inside a decimal fraction", 3),
    ],
)
@pytest.mark.parametrize("cuts", [0, 1])
def test_only_plain_bignums_go_into_a_numeric_tag(
    wire: str, message: str, offset: int, cuts: int
) -> None:
    error = refusal(CborCodec(), bytes.fromhex(wire), cuts=cuts)
    assert str(error).startswith(message)
    assert str(error).endswith(at(offset))


# -- map keys and set elements ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("bignum_keys", "tag 2"),  # 31 s for 1 MiB with cbor2 6.3
        ("tuple_keys", "an array"),  # 64-bit integers, no bignum needed
        ("uuid_keys", "tag 37"),
        ("fraction_keys", "tag 30"),
        ("decimal_keys", "tag 4"),
    ],
)
@pytest.mark.parametrize("cuts", [0, 1000])
def test_keys_whose_hashes_collide_are_refused(name: str, what: str, cuts: int) -> None:
    frame = cbor_worst_case(name, 256 * KIB)
    error = refusal(CborCodec(), frame, cuts=cuts)
    assert str(error) == f"a map key is {what}{REFUSED_KEY}" + at(head_size(frame[0]))


def test_set_elements_whose_hashes_collide_are_refused() -> None:
    frame = cbor_worst_case("set_of_bignums", 256 * KIB)
    first = 3 + head_size(frame[3])
    for cuts in (0, 1000):
        error = refusal(CborCodec(), frame, cuts=cuts)
        assert str(error) == f"a set element (tag 258) is tag 2{REFUSED_KEY}" + at(first)


@pytest.mark.parametrize(
    ("wire", "message", "offset"),
    [
        ("a1 80 00", "a map key is an array", 1),  # even an empty one
        ("a1 a0 00", "a map key is a map", 1),
        ("bf 61 61 00 9f ff 00 ff", "a map key is an array", 4),  # indefinite map and key
        ("a2 01 a1 02 03 81 00 00", "a map key is an array", 5),  # the key of a value
        ("a1 01 a1 82 00 00 00", "a map key is an array", 3),
        ("a1 d9 d9f7 00 00", "a map key is tag 55799", 1),
        ("a1 c1 00 00", "a map key is tag 1", 1),
        ("d9 0102 82 00 81 00", "a set element (tag 258) is an array", 5),
        ("d9 0102 9f 00 c2 41 01 ff", "a set element (tag 258) is tag 2", 5),
    ],
)
@pytest.mark.parametrize("cuts", [0, 1])
def test_composite_and_tagged_keys_are_refused(
    wire: str, message: str, offset: int, cuts: int
) -> None:
    error = refusal(CborCodec(), bytes.fromhex(wire), cuts=cuts)
    assert str(error) == message + REFUSED_KEY + at(offset)


@pytest.mark.parametrize(
    ("wire", "what"),
    [("d9 0102 d8 1c 82 00 01", "tag 28"), ("d9 0102 a0", "a map")],
)
def test_a_set_holds_an_array_directly(wire: str, what: str) -> None:
    # cbor2 makes a set of an array inside tag 28, whose elements the scanner would
    # not see as set elements.
    for cuts in (0, 1):
        error = refusal(CborCodec(), bytes.fromhex(wire), cuts=cuts)
        assert str(error) == f"tag 258 (a set) holds {what}, not an array" + at(3)


@pytest.mark.parametrize("name", ["int_keys", "float_keys"])
def test_integer_and_float_keys_decode(name: str) -> None:
    # Their hashes collide only in short chains (at most 8 integers, 42 floats and
    # integers per value), so the dict still fills in linear time.
    frame = cbor_worst_case(name, 16 * KIB)
    expected = cbor2.loads(frame)
    assert decode_chunks(CborCodec(), [frame]) == [expected]
    assert decode_chunks(CborCodec(), split_at(frame, range(0, len(frame), 100))) == [expected]


def test_allowed_keys_decode_on_both_paths() -> None:
    items = [
        {"a": 1},
        {1: "x", -(2**64): b"", 2**64 - 1: None, 1.5: [], b"k": {}, False: 0, None: 1},
        {"b": {7: [1, {8: 9}]}, "c": {"d": [{}, []]}},
        [{cbor2.CBORSimpleValue(99): 0}],
        frozenset(),
    ]
    data = b"".join(map(cbor2.dumps, items))
    expected = [cbor2.loads(cbor2.dumps(item)) for item in items]
    assert_chunk_invariant(CborCodec(), data, expected)
    # Sets of strings and integers; string references as keys (cbor2's
    # string_referencing=True writes repeated keys that way).
    shared = CborCodec(string_referencing=True)
    more = [
        {"key long enough": 1, "more": [{"key long enough": 2}]},
        {3, "x", b"y"},  # 258(256([...])): a string namespace inside the set's tag
        decimal.Decimal("1.5"),  # 4(256([...])), and so for a rational
        fractions.Fraction(1, 3),
    ]
    wire = b"".join(map(shared.encode, more))
    assert b"\xd8\x19" in wire  # a string reference, used as a key
    assert_chunk_invariant(shared, wire, more)


# -- tags left inert ---------------------------------------------------------------


def test_regex_and_mime_tags_stay_inert() -> None:
    data = hexes_of(
        tag(35, text("(a+)+$")),
        tag(36, text("Subject: hi\n\nbody")),
        array([tag(35, text("x")), tag(37, byte_string(bytes(16)))]),
    )
    expected = [
        cbor2.CBORTag(35, "(a+)+$"),
        cbor2.CBORTag(36, "Subject: hi\n\nbody"),
        [cbor2.CBORTag(35, "x"), uuid.UUID(int=0)],
    ]
    assert_chunk_invariant(CborCodec(), data, expected)
    # cbor2 6.3 compiled the pattern (1 s for 256 KiB of "(a)") and parsed the message
    # (9 s for 1 MiB of empty ones).
    frame = cbor_worst_case("regex_groups", 256 * KIB)
    pattern = "(a)" * ((256 * KIB - 16) // 3)
    assert decode_chunks(CborCodec(), [frame]) == [cbor2.CBORTag(35, pattern)]
    headers = cbor_worst_case("mime_headers", 64 * KIB)
    message = cbor2.loads(headers[2:])
    assert message.startswith("H1: v\nH2: v\n")
    assert decode_chunks(CborCodec(), [headers]) == [cbor2.CBORTag(36, message)]


def hexes_of(*frames: bytes) -> bytes:
    return b"".join(frames)


UTC = datetime.UTC
INERT = object()  # in TAGS: the codec gives CBORTag(tag, content) unless trusted

# Every tag cbor2 6.3 has a decoder for, and one it has not: the wire, what the codec
# gives by default, and what trusted_peer=True gives (cbor2's own conversion).
# docs/security.md's tag table says why each is what it is. (28/29, shared values,
# are refused without value_sharing=True: test_codec_cbor.py.)
TAGS: list[tuple[int, str, Any, Any]] = [
    (
        0,
        "c0 74 323032302d30312d30315430303a30303a30305a",
        datetime.datetime(2020, 1, 1, tzinfo=UTC),
        None,
    ),
    (1, "c1 1a 5f5e1000", datetime.datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC), None),
    (2, "c2 49 010000000000000000", 2**64, None),
    (3, "c3 49 010000000000000000", -(2**64) - 1, None),
    (4, "c4 82 21 19 6ab3", decimal.Decimal("273.15"), None),
    (5, "c5 82 20 03", decimal.Decimal("1.5"), None),
    (256, "d9 0100 82 63 616263 63 616263", ["abc", "abc"], None),
    (30, "d8 1e 82 01 03", fractions.Fraction(1, 3), None),
    (32, "d8 20 6b 687474703a2f2f612e6263", cbor2.CBORTag(32, "http://a.bc"), None),
    (35, "d8 23 63 612b62", INERT, re.compile("a+b")),
    (37, "d8 25 50 00000000000000000000000000000001", uuid.UUID(int=1), None),
    (52, "d8 34 44 c0a80001", INERT, ipaddress.IPv4Address("192.168.0.1")),
    (52, "d8 34 82 18 18 43 c0a800", INERT, ipaddress.IPv4Network("192.168.0.0/24")),
    (54, "d8 36 50 20010db8000000000000000000000001", INERT, ipaddress.IPv6Address("2001:db8::1")),
    (54, "d8 36 82 18 30 46 20010db80001", INERT, ipaddress.IPv6Network("2001:db8:1::/48")),
    (64, "d8 40 42 0001", b"\x00\x01", None),
    (100, "d8 64 19 4e20", datetime.date(2024, 10, 4), None),
    (258, "d9 0102 83 01 02 03", {1, 2, 3}, None),
    (260, "d9 0104 44 c0a80001", INERT, ipaddress.IPv4Address("192.168.0.1")),
    (261, "d9 0105 a1 44 c0a80000 18 18", INERT, ipaddress.IPv4Network("192.168.0.0/24")),
    (1004, "d9 03ec 6a 323032302d30312d3031", datetime.date(2020, 1, 1), None),
    (43000, "d9 a7f8 82 f9 3c00 f9 4000", complex(1, 2), None),
    (55799, "d9 d9f7 01", 1, None),
    (6, "c6 00", cbor2.CBORTag(6, 0), None),
]


@pytest.mark.parametrize(("number", "wire", "default", "trusted"), TAGS)
def test_what_each_tag_decodes_to(number: int, wire: str, default: Any, trusted: Any) -> None:
    data = bytes.fromhex(wire)
    content = cbor2.loads(data[head_size(data[0]) :])
    expected = cbor2.CBORTag(number, content) if default is INERT else default
    assert_chunk_invariant(CborCodec(), data + data, [expected, expected])
    if default is INERT:
        frozen = tuple(content) if isinstance(content, list) else content
        if cbor_module._SEMANTIC_FALLBACK and number in (52, 54):
            # cbor2 5 (Pyodide's) has no decoder for them: an unknown tag, whose
            # content is decoded immutable, as cbor2 6 decodes an unknown tag's
            trusted = cbor2.CBORTag(number, frozen)
        assert decode_chunks(CborCodec(trusted_peer=True), [data]) == [trusted]
        # inside an array, and on the path of an immutable decoder (a tuple for a list)
        assert decode_chunks(CborCodec(), [b"\x81" + data]) == [[expected]]
        immutable = decode_chunks(CborCodec(immutable=True), [data])
        assert immutable == [cbor2.CBORTag(number, frozen)]
        if isinstance(content, list):
            assert type(immutable[0].value) is tuple


def test_string_references_are_refused_unless_agreed() -> None:
    # 256(["abc", 25(0)]): the second string is a reference to the first.
    frame = bytes.fromhex("d9 0100 82 63 616263 d8 19 00")
    error = string_ref_refusal(frame)
    assert str(error) == (
        "invalid CBOR item: CBORDecodeError: error decoding semantic tag 25 "
        f"(frame starting at stream offset {len(PREFIX)})"
    )
    assert_chunk_invariant(CborCodec(string_referencing=True), frame, [["abc", "abc"]])
    # Each reference re-encodes as the whole string: 64 KiB of them, 358 MB.
    refs = tag(256, head(4, 10_906) + text("a" * 32_768) + b"\xd8\x19\x00" * 10_905)
    assert len(refs) == 65_492
    [item] = decode_chunks(CborCodec(string_referencing=True), [refs])
    assert sum(map(len, item)) == 32_768 * 10_906
    string_ref_refusal(refs)


def string_ref_refusal(frame: bytes) -> DecodeError:
    """The DecodeError for ``frame`` after PREFIX's item, whole and cut (refused by cbor2)."""
    for cuts in (0, 7):
        data = PREFIX + frame + cbor2.dumps(3)
        chunks = [data] if not cuts else split_at(data, range(cuts, len(data), cuts))
        decoder = CborCodec().decoder()
        items: list[Any] = []
        with pytest.raises(DecodeError) as info:  # noqa: PT012
            for chunk in chunks:
                decoder.feed(chunk)
                items.extend(decoder)
        assert items == [{"before": [1, 2]}]
        assert info.value.offset == len(PREFIX)
        assert str(info.value.__cause__.__cause__) == (  # cbor2's error, then ours
            "string references (tag 25) are refused; pass string_referencing=True to "
            "CborCodec to accept them from this peer"
        )
    return info.value


def test_mime_tags_stay_inert() -> None:
    data = tag(36, text("")) + tag(36, text("Subject: hi\n\nbody"))
    expected = [cbor2.CBORTag(36, ""), cbor2.CBORTag(36, "Subject: hi\n\nbody")]
    assert_chunk_invariant(CborCodec(), data, expected)


# -- opting back in ------------------------------------------------------------------


def test_trusted_peer_decodes_as_cbor2_does() -> None:
    a, b = next(tuple_hash_collisions())
    bignum = int.from_bytes(b"\x9f" * 2000, "big")
    data = hexes_of(
        head(5, 2) + array([integer(a), integer(b)]) + b"\xf6" + integer(3 * MODULUS) + b"\x01",
        tag(258, array([integer(2**70), text("x")])),
        tag(4, array([integer(0), integer(bignum)])),
        tag(35, text("a+")),
        tag(36, text("Subject: hi\n\nbody")),
    )
    items = decode_chunks(CborCodec(trusted_peer=True), [data])
    assert items[:3] == [{(a, b): None, 3 * MODULUS: 1}, {2**70, "x"}, decimal.Decimal(bignum)]
    assert items[3] == re.compile("a+")
    assert isinstance(items[4], email.message.Message)
    assert items[4]["Subject"] == "hi"
    cut = decode_chunks(CborCodec(trusted_peer=True), split_at(data, range(len(data))))
    assert cut[:4] == items[:4]
    assert cut[4]["Subject"] == "hi"


def test_own_semantic_decoders_replace_the_policy_for_their_tags() -> None:
    codec = CborCodec(
        semantic_decoders={
            4: lambda value, immutable: ("decimal", value),
            35: lambda value, immutable: value.upper(),
        }
    )
    bignum = int.from_bytes(b"\x9f" * 4000, "big")
    data = tag(4, array([integer(0), integer(bignum)])) + tag(35, text("ab"))
    items = decode_chunks(codec, [data])
    assert items[0] == ("decimal", [0, bignum])
    assert items[1] == "AB"
    assert decode_chunks(codec, [data[:5], data[5:]])[0] == ("decimal", [0, bignum])


def test_trusted_peer_is_checked_and_shown() -> None:
    with pytest.raises(TypeError, match="trusted_peer must be a bool, not int"):
        CborCodec(trusted_peer=1)  # type: ignore[arg-type]
    assert repr(CborCodec(trusted_peer=True)) == (
        "CborCodec(max_frame_size=1048576, max_depth=256, trusted_peer=True)"
    )
    assert "trusted_peer" not in repr(CborCodec())


def test_a_diverted_item_does_not_disturb_the_items_around_it() -> None:
    # Items with integer keys or numeric tags leave the fast path for the scanner;
    # the fast path goes on after them, in the same feed.
    items: list[Any] = []
    for k in range(50):
        items += [{"k": k}, {k: "v"}, decimal.Decimal(k) / 4, [k]]
    data = b"".join(map(cbor2.dumps, items))
    decoder = CborCodec().decoder()
    decoder.feed(data)
    assert list(decoder) == items
    decoder.feed_eof()


@pytest.mark.skipif(
    not cbor_module._FAST, reason="cbor2 5 (Pyodide's): no fast path, every item is scanned"
)
def test_items_handed_to_the_scanner_do_not_recopy_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each such item sends the fast path to the scanner and back; the window the fast
    # path reads (a copy of up to max_frame_size bytes) is kept, not made again per
    # item, which would cost max_frame_size bytes of copying per three-byte item.
    windows: list[int] = []

    class CountingBytesIO(cbor_module.BytesIO):
        def __init__(self, data: Any = b"") -> None:
            windows.append(len(data))
            super().__init__(data)

    monkeypatch.setattr(cbor_module, "BytesIO", CountingBytesIO)
    codec = CborCodec(4 * KIB)
    data = b"\xa1\x00\x00" * 10_000 + cbor2.dumps({"k": 1})  # 30 KiB, read in windows
    decoder = codec.decoder()
    decoder.feed(data[:20_000])
    decoder.feed(data[20_000:])  # the buffer is now a bytearray: windows are copies
    assert list(decoder) == [{0: 0}] * 10_000 + [{"k": 1}]
    # Back to back: 1365 items fill 4095 bytes of each window, the scanner takes the
    # item cut off at its end, and the next window starts after that item.
    assert [size for size in windows if size] == [4096] * 7 + [len(data) - 7 * 4098]


def test_a_run_of_integer_keyed_items_is_checked_item_by_item() -> None:
    # The items after the first integer-keyed one are checked together
    # (_plain_run); a refused key after them is still refused at its own head.
    plain = [{1: i, 2: "x", 3: [1, {4: b"y" * 30}]} for i in range(50)]
    data = b"".join(map(cbor2.dumps, plain))
    bad = cbor2.dumps({(1, 2): 0})
    decoder = CborCodec().decoder()
    decoder.feed(data + bad + cbor2.dumps({5: 6}))
    items: list[Any] = []
    with pytest.raises(DecodeError) as info:
        items.extend(decoder)
    assert items == plain
    assert str(info.value) == (
        f"a map key is an array{REFUSED_KEY}; the head at stream offset {len(data) + 1} "
        f"(frame starting at stream offset {len(data)})"
    )
    assert info.value.offset == len(data)
    # Cut anywhere, with a set and a decimal between the plain items.
    mixed = [*plain[:3], {3, 4}, *plain[3:6], decimal.Decimal("1.5"), {7: [8]}]
    assert_chunk_invariant(CborCodec(), b"".join(map(cbor2.dumps, mixed)), mixed)


def test_dense_heads_of_a_frame_spanning_feeds_are_scanned_inline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A frame cut across feeds is delimited by the scanner. Empty arrays and maps, tags
    # that need no check and decimals of two small integers took a call to _slow_head
    # (and _check_open) each, ~0.45 us a head: a 1 MiB frame of them cost 2.5-3x
    # cbor2's own decode. Now the main loop takes them, also after a map that ended
    # (whose mark used to stay); a head that a check applies to (a key or element of
    # the innermost map or set, anything inside a numeric tag) still goes to _slow_head.
    calls: list[int] = []
    slow_head = cbor_module._slow_head

    def counting(buf: Any, i: int, *args: Any) -> Any:
        calls.append(buf[i])
        return slow_head(buf, i, *args)

    monkeypatch.setattr(cbor_module, "_slow_head", counting)
    # [], {}, 6(0), 200(1), 1000(2), 4([-2, 256]) = Decimal("2.56")
    unit = bytes.fromhex("80 a0 c600 d8c801 d903e802 c482211901 00")
    first = b"\x99\x17\x71" + cbor2.dumps({"a": [1]})  # an array of 6,001 items
    decoder = CborCodec().decoder()
    items: list[Any] = []
    decoder.feed(first)  # cut after the map: the scanner goes on from there
    for _ in range(100):
        decoder.feed(unit * 10)
        items.extend(decoder)
    tags = [cbor2.CBORTag(6, 0), cbor2.CBORTag(200, 1), cbor2.CBORTag(1000, 2)]
    assert items == [[{"a": [1]}, *[[], {}, *tags, decimal.Decimal("2.56")] * 1000]]
    assert calls == [0x99]  # the array's head (a count of 6,001 in two bytes) alone

    # Cut anywhere, checks still apply where they should.
    mixed = [
        {"k": [], "m": {}, "t": cbor2.CBORTag(6, [])},
        [[], {}, cbor2.CBORTag(6, 0), decimal.Decimal("2.56"), {"d": decimal.Decimal("-1.5")}],
        {1, 2},
        decimal.Decimal("1.5"),
        [decimal.Decimal(10**30) / 7, cbor2.CBORTag(4, [1, 2**70])],
    ]
    data = b"".join(map(cbor2.dumps, mixed))
    # A tag's content decodes immutable (a tuple), as cbor2 6 does; cbor2 5's own
    # loads() gives a list, the codec a tuple there too (see _cbor5).
    expected = [{"k": [], "m": {}, "t": cbor2.CBORTag(6, ())}]
    expected += [cbor2.loads(cbor2.dumps(x)) for x in mixed[1:]]
    assert_chunk_invariant(CborCodec(), data, expected)
    refused = refusal(CborCodec(), b"\xa1\x80\x00", cuts=1)  # {[]: 0}
    assert str(refused) == f"a map key is an array{REFUSED_KEY}{at(1)}"
    refused = refusal(CborCodec(), b"\x82\xa0\xc4\x82\x00\xc6\x00", cuts=1)  # [{}, 4([0, 6(0)])]
    assert str(refused) == (
        "tag 6 inside a decimal fraction, bigfloat or rational (tags 4, 5, 30), "
        f"which may only hold integers{at(5)}"
    )


@pytest.mark.skipif(not cbor_module._FAST, reason="cbor2 5 calls a Python decoder")
def test_inert_tags_run_no_python_code_per_tag() -> None:
    # A Python semantic decoder per inert tag cost 1.2 us a tag (0.6 us through C
    # calls): a frame of empty MIME messages, one per 3 bytes, cost 11x a benign one.
    import sys

    frame = array([tag(36, text("")), tag(52, byte_string(bytes(4)))] * 100)
    calls: list[str] = []

    def profile(frame_: Any, event: str, arg: Any) -> None:
        if event == "call":
            calls.append(frame_.f_code.co_name)

    decoder = CborCodec().decoder()
    decoder.feed(frame)
    sys.setprofile(profile)
    try:
        items = list(decoder)
    finally:
        sys.setprofile(None)
    assert items == [[cbor2.CBORTag(36, ""), cbor2.CBORTag(52, bytes(4))] * 100]
    assert "inert" not in calls
    assert len(calls) < 10  # the decoder's own generator, not one call per tag

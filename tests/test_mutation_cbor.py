"""CborDecoder's scanner on malformed and hostile items, with the exact error, for
mutants of wsframed/codecs/cbor.py that no test killed (tools/mutation.py;
docs/contributing.md, Testing). Each item follows a complete one (``0x01``) and is fed
whole (cbor2 stops at it and hands it to the scanner) or cut after its first byte (the
scanner resumes it): the caller gets the item before it, then the scanner's own
message, not cbor2's.
"""

from __future__ import annotations

from typing import Any

import pytest

from wsframed.codecs import CborCodec
from wsframed.errors import DecodeError, FrameTooLarge

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

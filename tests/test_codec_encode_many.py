"""encode_many(): the frames of many items at once, exactly as encode() one by one."""

from __future__ import annotations

from array import array
from typing import Any

import pytest

from wsframed.codecs import CborCodec, LengthPrefixedCodec, LinesCodec, MsgpackCodec

GOOD: list[tuple[Any, list[Any]]] = [
    (MsgpackCodec(), [1, "a", {"x": [1, 2]}, b"\x00" * 300, None]),
    (MsgpackCodec(max_frame_size=10), ["a" * 8] * 3),  # the total over the limit
    (MsgpackCodec(), []),
    (LengthPrefixedCodec(), [b"", b"abc", b"x" * 70_000]),
    (LengthPrefixedCodec(), [bytearray(b"ab"), memoryview(array("i", [1, 2])), b"c"]),
    (LengthPrefixedCodec(length_size=2, length_includes_header=True), [b"ab", b""]),
    (LengthPrefixedCodec(max_frame_size=4), [b"abcd"] * 3),
    (LinesCodec(), ["", "a\rb", "été", "x" * 100]),
    (LinesCodec(max_frame_size=4), ["abcd"] * 3),  # the total over the limit
    (LinesCodec(None), [b"a", b"", b"b\rc"]),
    (LinesCodec(None), [bytearray(b"a"), b"b"]),
    (LinesCodec("latin-1"), ["é", "a"]),
    (CborCodec(), [1, "a", {"x": [1, 2]}, b"\x00" * 300, None]),
    (CborCodec(max_frame_size=10), ["a" * 8] * 3),  # the total over the limit
    (CborCodec(value_sharing=True), [[1, 2], {"a": "b"}]),
]

BAD: list[tuple[Any, list[Any], int]] = [
    (MsgpackCodec(), [1, object(), 2], 1),
    (MsgpackCodec(), [1, 2**70, 2], 1),
    (MsgpackCodec(max_frame_size=10), ["a", "b" * 20, "c"], 1),
    (LengthPrefixedCodec(), [b"a", "text", b"b"], 1),
    (LengthPrefixedCodec(max_frame_size=4), [b"a", b"abcde", b"b"], 1),
    (LengthPrefixedCodec(length_size=1), [b"x" * 256], 0),
    (LinesCodec(), ["a", "b\nc", "d"], 1),
    (LinesCodec(), ["a", "b\r", "d"], 1),
    (LinesCodec(), ["a", "b\r\n", "d"], 1),
    (LinesCodec(), ["a", b"bytes", "d"], 1),
    (LinesCodec(max_frame_size=4), ["a", "abcde", "b"], 1),
    (LinesCodec(max_frame_size=4), ["a", "ééé", "b"], 1),  # 6 bytes in UTF-8
    (LinesCodec("latin-1"), ["a", "€", "b"], 1),
    (LinesCodec(None), [b"a", "text", b"b"], 1),
    (LinesCodec(None), [b"a", b"b\n", b"c"], 1),
    (CborCodec(), [1, object(), 2], 1),
    (CborCodec(max_frame_size=10), ["a", "b" * 20, "c"], 1),
]


@pytest.mark.parametrize(("codec", "items"), GOOD)
def test_encode_many_is_the_frames_of_encode_joined(codec: Any, items: list[Any]) -> None:
    assert codec.encode_many(items) == b"".join(codec.encode(item) for item in items)


@pytest.mark.parametrize(("codec", "items", "bad"), BAD)
def test_encode_many_raises_what_encode_raises_for_the_first_item_refused(
    codec: Any, items: list[Any], bad: int
) -> None:
    try:
        codec.encode(items[bad])
    except (ValueError, TypeError) as exc:  # FrameTooLarge is a ValueError
        expected = exc
    else:
        raise AssertionError(f"encode() accepted {items[bad]!r}")
    with pytest.raises(type(expected)) as got:
        codec.encode_many(items)
    assert str(got.value) == str(expected)
    assert codec.encode_many(items[:bad]) == b"".join(map(codec.encode, items[:bad]))

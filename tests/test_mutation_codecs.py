"""Codec limits at their exact boundaries, for mutants of wsframed/codecs/ that no test
killed (tools/mutation.py; docs/contributing.md, Testing): what the caller gets, with
the numbers the error carries.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from wsframed.codecs import JsonLinesCodec, MsgpackCodec
from wsframed.errors import DecodeError, FrameTooLarge


@pytest.mark.parametrize("dumps", [None, json.dumps, lambda item: json.dumps(item).encode()])
def test_jsonl_encode_accepts_exactly_max_frame_size_and_refuses_one_more(dumps: object) -> None:
    """A line of exactly ``max_frame_size`` bytes (without its ``\\n``) is encoded; one
    byte more is the caller's: FrameTooLarge(size, limit, local=True)."""
    codec = JsonLinesCodec(10, dumps=dumps)  # type: ignore[arg-type]
    assert codec.encode("x" * 8) == b'"xxxxxxxx"\n'  # 10 bytes of JSON
    with pytest.raises(FrameTooLarge) as error:
        codec.encode("x" * 9)
    assert (error.value.size, error.value.limit, error.value.local) == (11, 10, True)


def test_jsonl_a_custom_parser_s_message_of_exactly_the_limit_is_kept_whole() -> None:
    """200 characters of the parser's message are kept as they are; 201 are cut."""

    def loads(text: str) -> Any:
        raise ValueError(text)

    decoder = JsonLinesCodec(loads=loads).decoder()
    decoder.feed(b"x" * 200 + b"\n" + b"y" * 201 + b"\n")
    with pytest.raises(DecodeError) as whole:
        next(iter(decoder))
    assert str(whole.value) == (
        f"line is not valid JSON: {'x' * 200} (frame starting at stream offset 0)"
    )
    decoder = JsonLinesCodec(loads=loads).decoder()
    decoder.feed(b"y" * 201 + b"\n")
    with pytest.raises(DecodeError) as cut:
        list(decoder)
    assert str(cut.value) == (
        f"line is not valid JSON: {'y' * 200}... (frame starting at stream offset 0)"
    )


def test_jsonl_a_custom_parser_skips_blank_lines_and_goes_on() -> None:
    """A line of whitespace the custom parser refuses is skipped; the lines after it
    in the same batch are decoded."""

    def loads(text: str) -> Any:
        if text.isspace():
            raise ValueError("blank")
        return json.loads(text)

    decoder = JsonLinesCodec(loads=loads).decoder()
    decoder.feed(b'1\n \t\n{"a": 2}\n\xe3\x80\x80\n3\n')
    assert list(decoder) == [1, {"a": 2}, 3]


@pytest.mark.parametrize(
    ("header", "smallest", "exact"),
    [
        (b"\x8f", 31, False),  # fixmap of 15 pairs: at least 1 + 2 * 15 bytes
        (b"\x81", 3, False),  # fixmap of 1 pair
        (b"\x9f", 16, False),  # fixarray of 15: at least 1 + 15
        (b"\x91", 2, False),
        (b"\xbf", 32, True),  # fixstr of 31 bytes: exactly 1 + 31
        (b"\xa5", 6, True),
        (b"\xcb", 9, True),  # float 64
        (b"\xd8", 18, True),  # fixext 16
        (b"\xdc\x00\x0f", 18, False),  # array 16 of 15: at least 3 + 15
        (b"\xdc\x00\x0f\x05", 18, False),  # the same, its first element after it
        (b"\xde\x00\x0f", 33, False),  # map 16 of 15 pairs: at least 3 + 2 * 15
        (b"\xc5\x01\x00", 259, True),  # bin 16 of 256 bytes: exactly 3 + 256
    ],
)
def test_msgpack_a_header_over_the_limit_fails_at_once_with_its_smallest_size(
    header: bytes, smallest: int, exact: bool
) -> None:
    """The header alone tells the smallest size of its object: one byte under it, the
    decoder fails at the header (FrameTooLarge with that size, ``at_least`` unless the
    header fixes the size); at exactly that limit it waits for the rest."""
    decoder = MsgpackCodec(max_frame_size=smallest - 1).decoder()
    decoder.feed(header)
    with pytest.raises(FrameTooLarge) as error:
        list(decoder)
    found = (error.value.size, error.value.limit, error.value.at_least, error.value.local)
    assert found == (smallest, smallest - 1, not exact, False)
    decoder = MsgpackCodec(max_frame_size=smallest).decoder()
    decoder.feed(header)
    assert list(decoder) == []


@pytest.mark.parametrize("prefix", [b"", b"\x01"])
def test_msgpack_a_length_field_in_pieces_is_read_whole(prefix: bytes) -> None:
    """An array 16 header whose length field arrives one byte at a time, alone or
    after an object in the same buffer: nothing is judged until both bytes are in,
    then the declared 259 bytes (3 + 256) exceed the limit of 100."""
    decoder = MsgpackCodec(max_frame_size=100).decoder()
    decoder.feed(prefix + b"\xdc")
    assert list(decoder) == ([1] if prefix else [])
    decoder.feed(b"\x01")
    assert list(decoder) == []
    decoder.feed(b"\x00")
    with pytest.raises(FrameTooLarge) as error:
        list(decoder)
    found = (error.value.size, error.value.limit, error.value.at_least)
    assert found == (259, 100, True)


def test_msgpack_one_byte_objects_fit_a_limit_of_one() -> None:
    """nil, booleans and fixints are one byte each: a limit of 1 decodes them."""
    decoder = MsgpackCodec(max_frame_size=1).decoder()
    decoder.feed(b"\xc0\xc2\xc3\x00\x7f\xe0\xff")
    assert list(decoder) == [None, False, True, 0, 127, -32, -1]

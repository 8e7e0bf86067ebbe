"""Codec limits at their exact boundaries, for mutants of wsframed/codecs/ that no test
killed (tools/mutation.py; docs/contributing.md, Testing): what the caller gets, with
the numbers the error carries.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from wsframed.codecs import JsonLinesCodec
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

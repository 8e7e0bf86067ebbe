"""Codec limits at their exact boundaries, for mutants of wsframed/codecs/ that no test
killed (tools/mutation.py; docs/contributing.md, Testing): what the caller gets, with
the numbers the error carries.
"""

from __future__ import annotations

import json

import pytest

from wsframed.codecs import JsonLinesCodec
from wsframed.errors import FrameTooLarge


@pytest.mark.parametrize("dumps", [None, json.dumps, lambda item: json.dumps(item).encode()])
def test_jsonl_encode_accepts_exactly_max_frame_size_and_refuses_one_more(dumps: object) -> None:
    """A line of exactly ``max_frame_size`` bytes (without its ``\\n``) is encoded; one
    byte more is the caller's: FrameTooLarge(size, limit, local=True)."""
    codec = JsonLinesCodec(10, dumps=dumps)  # type: ignore[arg-type]
    assert codec.encode("x" * 8) == b'"xxxxxxxx"\n'  # 10 bytes of JSON
    with pytest.raises(FrameTooLarge) as error:
        codec.encode("x" * 9)
    assert (error.value.size, error.value.limit, error.value.local) == (11, 10, True)

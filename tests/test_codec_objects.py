"""What the two object-stream codecs, msgpack and CBOR, share: the same checks on each.

The items, the stream of them and the encoding of ``[1, 2]`` come from each codec's
own test module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from wsframed.codecs import CborCodec, MsgpackCodec
from wsframed.errors import FrameTooLarge

from . import test_codec_cbor as cbor_tests
from . import test_codec_msgpack as msgpack_tests
from .codec_checks import split_at


@dataclass(frozen=True)
class ObjectCodec:
    """One object-stream codec as these tests use it."""

    make: Callable[..., Any]
    stream: Callable[[list[Any]], bytes]
    items: list[Any]  # a few request-like items
    one_two: bytes  # [1, 2] encoded


CODECS = {
    "cbor": ObjectCodec(CborCodec, cbor_tests.stream, cbor_tests.RPC[:3], b"\x82\x01\x02"),
    "msgpack": ObjectCodec(
        MsgpackCodec, msgpack_tests.stream, msgpack_tests.RPC[:4], b"\x92\x01\x02"
    ),
}


@pytest.fixture(params=sorted(CODECS))
def kind(request: pytest.FixtureRequest) -> ObjectCodec:
    return CODECS[request.param]


def test_many_feeds_before_iterating(kind: ObjectCodec) -> None:
    items = kind.items * 30
    decoder = kind.make(400).decoder()
    for piece in split_at(kind.stream(items), range(0, 4000, 37)):
        decoder.feed(piece)
    assert list(decoder) == items
    decoder.feed_eof()


def test_encode_too_large_is_local_and_the_codec_still_works(kind: ObjectCodec) -> None:
    codec = kind.make(100)
    assert len(codec.encode(b"x" * 98)) == 100
    with pytest.raises(FrameTooLarge) as info:
        codec.encode(b"x" * 99)
    assert (info.value.size, info.value.limit, info.value.local) == (101, 100, True)
    assert codec.encode([1, 2]) == kind.one_two


def test_feed_eof_on_a_boundary_is_clean(kind: ObjectCodec) -> None:
    decoder = kind.make().decoder()
    decoder.feed_eof()
    decoder.feed(kind.stream([1, [2, 3]]))
    assert list(decoder) == [1, [2, 3]]
    decoder.feed_eof()

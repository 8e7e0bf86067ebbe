"""The "write your own codec" tutorial (examples/netstring_codec.py) works as documented."""

from __future__ import annotations

import pytest

from examples.netstring_codec import NetstringCodec
from wsframed import DecodeError, Framed, FrameTooLarge, IncompleteFrame, WsStream
from wsframed.codecs import Codec

from .codec_checks import assert_chunk_invariant, decode_chunks
from .conftest import ws_pair


def test_the_tutorial_codec_satisfies_the_codec_protocol() -> None:
    codec: Codec[bytes] = NetstringCodec()  # type-checks: a structural protocol
    items = [b"hello", b"", b"x" * 300, b"1:2,"]
    data = b"".join(codec.encode(item) for item in items)
    assert data.startswith(b"5:hello,0:,300:")
    assert_chunk_invariant(codec, data, items)


def test_the_tutorial_codec_refuses_bad_input() -> None:
    codec = NetstringCodec(max_frame_size=10)
    with pytest.raises(FrameTooLarge):
        codec.encode(b"x" * 11)
    with pytest.raises(FrameTooLarge):
        decode_chunks(codec, [b"9999:"])
    with pytest.raises(DecodeError):
        decode_chunks(codec, [b"3:abc;"])
    with pytest.raises(DecodeError):
        decode_chunks(codec, [b"1" * 30])
    with pytest.raises(IncompleteFrame):
        decode_chunks(codec, [b"3:ab"])


async def test_the_tutorial_codec_runs_over_a_websocket() -> None:
    async with ws_pair() as (client, server):
        sender = Framed(WsStream(client), NetstringCodec())
        receiver = Framed(WsStream(server), NetstringCodec())
        await sender.send_all([b"one", b"two", b"three"])
        assert [await receiver.recv() for _ in range(3)] == [b"one", b"two", b"three"]

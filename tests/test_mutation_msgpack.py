"""MsgpackDecoder's limits and error paths at their exact boundaries, for mutants of
wsframed/codecs/msgpack.py that no test killed (tools/mutation.py; docs/contributing.md,
Testing): what the caller gets, with the numbers the error carries.
"""

from __future__ import annotations

import pytest

from wsframed.codecs import MsgpackCodec
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame


def test_a_map_of_the_most_pairs_within_the_limit_is_decoded_by_the_stream_path() -> None:
    """The unpacker's ``max_map_len`` is ``max_frame_size // 2`` (every pair takes at
    least two bytes): a map of 48 integer pairs (99 bytes) inside a limit of 100 is
    decoded, also when it arrives in pieces (the streaming unpacker, not the fast
    path). A lower bound would refuse a valid frame as too large."""
    pairs = {key: 0 for key in range(48)}
    codec = MsgpackCodec(max_frame_size=100, strict_map_key=False)
    data = codec.encode(pairs)
    assert len(data) == 99
    decoder = codec.decoder()
    decoder.feed(bytearray(data[:50]))
    assert list(decoder) == []
    decoder.feed(bytearray(data[50:]))
    assert list(decoder) == [pairs]


def test_feed_eof_counts_an_unchecked_header_still_buffered() -> None:
    """An array 16 header whose length field is cut off stays in the decoder's buffer
    (it cannot be checked yet): feed_eof() counts those two bytes, at the offset after
    the object before them."""
    decoder = MsgpackCodec().decoder()
    decoder.feed(b"\x01\xdc\x00")
    assert list(decoder) == [1]
    with pytest.raises(IncompleteFrame) as error:
        decoder.feed_eof()
    assert (error.value.pending, error.value.offset) == (2, 1)


def test_feed_eof_counts_the_collected_rest_of_a_large_object() -> None:
    """A bin 32 of 200,000 bytes: once its header is checked the chunks fed next are
    collected (not buffered); feed_eof() counts them with the bytes fed before."""
    decoder = MsgpackCodec().decoder()
    decoder.feed(b"\xc6" + (200_000).to_bytes(4, "big") + b"x" * 10)
    assert list(decoder) == []
    decoder.feed(b"y" * 1000)
    with pytest.raises(IncompleteFrame) as error:
        decoder.feed_eof()
    assert (error.value.pending, error.value.offset) == (1015, 0)


@pytest.mark.parametrize("before", [b"\x91", b"\x92\x01"])
def test_an_ext_32_of_4_gib_nested_in_an_array_is_too_large(before: bytes) -> None:
    """An ext 32 header declaring 2**32 - 1 bytes inside an array: msgpack's skip()
    passes over it (its length wraps), and the unpacker refuses it by its
    ``max_ext_len``. The array's own header declares only a few bytes, so the error
    gives the least size over the limit: FrameTooLarge(limit + 1, at_least)."""
    decoder = MsgpackCodec(max_frame_size=100).decoder()
    decoder.feed(before + b"\xc9\xff\xff\xff\xff")
    with pytest.raises(FrameTooLarge) as error:
        list(decoder)
    found = (error.value.size, error.value.limit, error.value.at_least, error.value.local)
    assert found == (101, 100, True, False)


@pytest.mark.parametrize(("length", "kept"), [(200, "x" * 200), (201, "x" * 200 + "...")])
def test_a_hook_s_message_is_kept_whole_up_to_200_characters(length: int, kept: str) -> None:
    """An ``ext_hook``'s message of exactly 200 characters is kept as it is in the
    DecodeError; 201 are cut to 200 and an ellipsis."""

    def ext_hook(code: int, data: bytes) -> object:
        raise ValueError("x" * length)

    decoder = MsgpackCodec(ext_hook=ext_hook).decoder()
    decoder.feed(b"\x01\xd4\x05\x00")
    with pytest.raises(DecodeError) as error:
        list(decoder)
    assert str(error.value) == (
        f"cannot decode msgpack object: ValueError: {kept} (frame starting at stream offset 1)"
    )

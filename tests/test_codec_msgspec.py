"""MsgspecCodec: typed msgpack and JSON frames, each framing, limits, errors, costs."""

from __future__ import annotations

import asyncio
import itertools
import json
import struct
import subprocess
import sys
import tracemalloc
from typing import Any

import msgpack  # type: ignore[import-untyped]
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsframed
from wsframed import Framed
from wsframed.codecs import InvalidFrame, MsgspecCodec
from wsframed.codecs.msgspec_codec import _admits_tuple_keys
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame

from .codec_checks import assert_chunk_invariant, decode_chunks


class Request(msgspec.Struct):
    id: int
    method: str
    params: list[int]


class Loose(msgspec.Struct):
    id: int
    params: list[Any]


class Add(msgspec.Struct, tag="add"):
    a: int
    b: int


class Echo(msgspec.Struct, tag="echo"):
    text: str


REQUESTS = [Request(i, "add", [i, -i, 2**40]) for i in range(40)]
FRAMINGS = [("msgpack", "self"), ("msgpack", "length"), ("json", "lines"), ("json", "length")]

text = st.text(st.characters(exclude_categories=["Cs"]))
# Values both msgpack-python and msgspec build the same way (no tuples, no exponent
# floats for JSON).
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


def _json_line(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _framed_bytes(codec: MsgspecCodec[Any], payload: bytes) -> bytes:
    """``payload`` framed as ``codec`` frames it (a bad frame, for the error tests)."""
    if codec.framing == "length":
        return struct.pack(">I", len(payload)) + payload
    if codec.framing == "lines":
        return payload + b"\n"
    return payload


def test_defaults_and_repr() -> None:
    codec = MsgspecCodec()
    assert (codec.format, codec.framing, codec.max_frame_size) == ("msgpack", "self", 1 << 20)
    assert codec.type is Any
    json_codec = MsgspecCodec(Request, "json")
    assert (json_codec.framing, json_codec.max_frame_size) == ("lines", 64 * 1024)
    assert repr(json_codec) == (
        "MsgspecCodec(Request, 'json', framing='lines', max_frame_size=65536)"
    )
    assert MsgspecCodec(format="json", framing="length").max_frame_size == 1 << 20


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="format must be 'msgpack' or 'json', not 'xml'"):
        MsgspecCodec(format="xml")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="msgpack frames use framing 'self' or 'length'"):
        MsgspecCodec(framing="lines")
    with pytest.raises(ValueError, match="JSON frames use framing 'lines' or 'length'"):
        MsgspecCodec(format="json", framing="self")
    with pytest.raises(ValueError, match="max_frame_size must be at least 1, got 0"):
        MsgspecCodec(max_frame_size=0)
    with pytest.raises(TypeError, match="max_frame_size must be an int, not float"):
        MsgspecCodec(max_frame_size=1.5)  # type: ignore[call-overload]


@pytest.mark.parametrize(("fmt", "framing"), FRAMINGS)
def test_typed_round_trip_is_chunk_invariant(fmt: Any, framing: Any) -> None:
    codec = MsgspecCodec(Request, fmt, framing=framing)
    data = b"".join(map(codec.encode, REQUESTS))
    assert_chunk_invariant(codec, data, REQUESTS, rounds=10)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(plain_values, max_size=8))
def test_wire_identical_to_msgpack_packb_and_json_dumps(values: list[Any]) -> None:
    packed = b"".join(msgpack.packb(value) for value in values)
    codec = MsgspecCodec()
    assert b"".join(map(codec.encode, values)) == packed
    assert decode_chunks(codec, [packed]) == values
    lines = b"".join(map(_json_line, values))
    json_codec = MsgspecCodec(format="json")
    assert b"".join(map(json_codec.encode, values)) == lines
    assert decode_chunks(json_codec, [lines]) == values


def test_json_floats_differ_from_json_dumps_only_in_exponents() -> None:
    codec = MsgspecCodec(format="json")
    values = [0.1, 1.5, -0.0, 1e16, 1e-7, 1e-5]
    assert codec.encode(values) == b"[0.1,1.5,-0.0,1e16,1e-7,0.00001]\n"
    assert _json_line(values) == b"[0.1,1.5,-0.0,1e+16,1e-07,1e-05]\n"
    assert decode_chunks(codec, [b"[1e+16,1e-07,1e-05]\n"]) == [[1e16, 1e-7, 1e-5]]


def test_tagged_union_decodes_into_the_right_struct() -> None:
    codec = MsgspecCodec(Add | Echo, "json")
    data = b'{"type":"add","a":1,"b":2}\n{"type":"echo","text":"hi"}\n'
    assert decode_chunks(codec, [data]) == [Add(1, 2), Echo("hi")]
    assert codec.encode(Echo("hi")) == b'{"type":"echo","text":"hi"}\n'
    decoder = codec.decoder()
    decoder.feed(b'{"type":"mul","a":1}\n')
    with pytest.raises(InvalidFrame) as info:
        list(decoder)
    assert str(info.value) == (
        "frame does not match Add | Echo: Invalid value 'mul' - at `$.type`"
        " (frame starting at stream offset 0)"
    )
    assert info.value.path == "$.type"


@pytest.mark.parametrize(("fmt", "framing"), FRAMINGS)
def test_a_frame_that_does_not_match_is_invalid_frame_with_path_and_offset(
    fmt: Any, framing: Any
) -> None:
    codec = MsgspecCodec(Request, fmt, framing=framing)
    good = codec.encode(REQUESTS[1])
    value = {"id": 7, "method": "add", "params": [1, "x"]}
    payload = msgpack.packb(value) if fmt == "msgpack" else _json_line(value)[:-1]
    decoder = codec.decoder()
    decoder.feed(good + _framed_bytes(codec, payload) + good)
    items: list[Any] = []
    with pytest.raises(InvalidFrame) as info:
        items.extend(decoder)
    assert items == [REQUESTS[1]]
    assert info.value.path == "$.params[1]"
    assert info.value.offset == len(good)
    assert str(info.value) == (
        "frame does not match Request: Expected `int`, got `str` - at `$.params[1]`"
        f" (frame starting at stream offset {len(good)})"
    )
    assert isinstance(info.value.__cause__, msgspec.ValidationError)
    if framing == "lines":  # JSON Lines resynchronise at the next line
        assert list(decoder) == [REQUESTS[1]]
    else:  # msgpack and length-prefixed streams do not: the same error again
        with pytest.raises(InvalidFrame) as again:
            list(decoder)
        assert again.value is info.value
        with pytest.raises(InvalidFrame):
            decoder.feed(good)
        with pytest.raises(InvalidFrame):
            decoder.feed_eof()


@pytest.mark.parametrize(
    ("fmt", "payload", "message"),
    [
        ("msgpack", b"\x92\x01\xc1", "malformed msgpack data"),
        ("json", b'{"id":1,', "frame is not valid json: Input data was truncated"),
        (
            "json",
            b"[1] 2",
            "frame is not valid json: JSON is malformed: trailing characters (byte 5)",
        ),
    ],
)
def test_malformed_frames_are_decode_errors_with_offset(
    fmt: Any, payload: bytes, message: str
) -> None:
    codec = MsgspecCodec(format=fmt)
    good = codec.encode([1])
    decoder = codec.decoder()
    decoder.feed(good + _framed_bytes(codec, payload))
    items: list[Any] = []
    with pytest.raises(DecodeError) as info:
        items.extend(decoder)
    assert items == [[1]]
    assert type(info.value) is DecodeError
    assert str(info.value) == f"{message} (frame starting at stream offset {len(good)})"


def test_json_lines_skip_blank_lines() -> None:
    codec = MsgspecCodec(format="json")
    assert decode_chunks(codec, [b"\n1\n \t\r\n\r\n[2]\r\n"]) == [1, [2]]


def test_too_deep_nesting_is_a_decode_error() -> None:
    for fmt, payload in [
        ("json", b"[" * 5000 + b"]" * 5000),
        ("msgpack", b"\x91" * 1000 + b"\x01"),
    ]:
        codec = MsgspecCodec(format=fmt)  # type: ignore[call-overload]
        decoder = codec.decoder()
        decoder.feed(_framed_bytes(codec, payload))
        with pytest.raises(DecodeError) as info:
            list(decoder)
        assert str(info.value) == (
            "frame nested too deeply for the parser (frame starting at stream offset 0)"
        )


@pytest.mark.parametrize(("fmt", "framing"), FRAMINGS)
def test_encode_over_the_limit_is_local_frame_too_large(fmt: Any, framing: Any) -> None:
    codec = MsgspecCodec(format=fmt, framing=framing, max_frame_size=10)
    assert len(codec.encode("x" * 7)) - (4 if framing == "length" else 0) <= 10
    with pytest.raises(FrameTooLarge) as info:
        codec.encode("x" * 20)
    payload = 21 if fmt == "msgpack" else 22  # a fixstr header, or two quotes; 20 bytes
    assert (info.value.size, info.value.limit, info.value.local) == (payload, 10, True)


def test_encode_errors() -> None:
    with pytest.raises(TypeError, match="Encoding objects of type object is unsupported"):
        MsgspecCodec().encode(object())
    with pytest.raises(ValueError, match="cannot encode as msgpack: can't serialize ints"):
        MsgspecCodec().encode(2**64)
    with pytest.raises(ValueError, match="must not contain"):
        MsgspecCodec(format="json").encode(msgspec.Raw(b"[1,\n2]"))


ENCODE_CORPUS: list[Any] = [
    {"id": 1, "method": "add", "params": [1, 2]},
    Request(2, "add", [3, 4]),
    "é ☃ 𝄞 \x00\n",
    [1.5, -0.0, 1e-05, 1e16, 2**63, -(2**63), 2**64 - 1],
    {"nested": [[], {}, [[None, True, False]]]},
    b"\x00\xff",
    "",
]


@pytest.mark.parametrize(("fmt", "framing"), FRAMINGS)
@pytest.mark.parametrize("count", [1, 2, 15, 16, 17, 300])
def test_encode_many_is_the_frames_of_encode_joined(fmt: Any, framing: Any, count: int) -> None:
    """Array headers of every size (fixarray, array 16) are dropped exactly."""
    codec = MsgspecCodec(format=fmt, framing=framing)
    items = [ENCODE_CORPUS[i % len(ENCODE_CORPUS)] for i in range(count)]
    assert codec.encode_many(items) == b"".join(codec.encode(item) for item in items)
    assert codec.encode_many(tuple(items)) == b"".join(codec.encode(item) for item in items)
    assert codec.encode_many([]) == b""


@pytest.mark.parametrize(("fmt", "framing"), FRAMINGS)
def test_encode_many_raises_what_encode_raises_for_the_first_item_refused(
    fmt: Any, framing: Any
) -> None:
    codec = MsgspecCodec(format=fmt, framing=framing, max_frame_size=100)
    # Frames within the limit whose sum is not.
    items = ["x" * 90] * 5
    assert codec.encode_many(items) == b"".join(codec.encode(item) for item in items)
    bad_values: list[Any] = [object(), "y" * 101, [[1] * 5] * 50]
    if fmt == "msgpack":
        bad_values.append(2**64)
    elif framing == "lines":
        bad_values.append(msgspec.Raw(b"[1,\n2]"))
    for bad in bad_values:
        with pytest.raises((TypeError, ValueError, FrameTooLarge)) as alone:
            codec.encode(bad)
        with pytest.raises(type(alone.value)) as many:
            codec.encode_many(["ok", bad, "never reached"])
        assert str(many.value) == str(alone.value)


def test_msgpack_header_over_the_limit_fails_at_the_header() -> None:
    codec = MsgspecCodec(max_frame_size=1000)
    decoder = codec.decoder()
    decoder.feed(b"\x01" + b"\xc6\xff\xff\xff\xff" + b"\x00" * 10)
    items: list[Any] = []
    with pytest.raises(FrameTooLarge) as info:
        items.extend(decoder)
    assert items == [1]
    assert (info.value.size, info.value.limit, info.value.at_least) == (2**32 + 4, 1000, False)
    assert info.value.offset == 1
    with pytest.raises(FrameTooLarge) as again:
        decoder.feed(b"\x00")
    assert again.value is info.value


def test_msgpack_object_growing_past_the_limit_fails_before_it_is_whole() -> None:
    codec = MsgspecCodec(max_frame_size=1000)
    decoder = codec.decoder()
    decoder.feed(b"\xdc\x10\x00")  # an array of 4096 items: at least 4099 bytes
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    assert (info.value.size, info.value.at_least) == (4099, True)
    decoder = codec.decoder()
    decoder.feed(b"\x91" * 999)  # nested arrays: the header says too little
    assert list(decoder) == []
    decoder.feed(b"\x91" * 10)
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    assert (info.value.size, info.value.limit, info.value.at_least) == (1001, 1000, True)


def test_json_line_over_the_limit_fails_the_decoder() -> None:
    codec = MsgspecCodec(format="json", max_frame_size=8)
    decoder = codec.decoder()
    decoder.feed(b"[1]\n" + b"1" * 20)
    items: list[Any] = []
    with pytest.raises(FrameTooLarge) as info:
        items.extend(decoder)
    assert items == [[1]]
    assert (info.value.size, info.value.at_least, info.value.offset) == (9, True, 4)


def test_length_header_over_the_limit_fails_the_decoder() -> None:
    codec = MsgspecCodec(format="json", framing="length", max_frame_size=8)
    decoder = codec.decoder()
    decoder.feed(b"\x00\x00\x00\x09")
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    assert (info.value.size, info.value.limit) == (9, 8)
    with pytest.raises(FrameTooLarge) as again:
        list(decoder)
    assert again.value is info.value


@pytest.mark.parametrize(("fmt", "framing"), FRAMINGS)
def test_feed_eof_inside_a_frame_is_incomplete(fmt: Any, framing: Any) -> None:
    codec = MsgspecCodec(format=fmt, framing=framing)
    data = codec.encode([1]) + codec.encode("abc")[:-1]
    decoder = codec.decoder()
    decoder.feed(data)
    assert list(decoder) == [[1]]
    with pytest.raises(IncompleteFrame) as info:
        decoder.feed_eof()
    assert info.value.offset == len(codec.encode([1]))
    assert info.value.pending == len(codec.encode("abc")) - 1


def test_msgpack_fast_path_keeps_offsets_exact() -> None:
    codec = MsgspecCodec(Request)
    good = codec.encode(REQUESTS[0])
    decoder = codec.decoder()
    decoder.feed(good)  # one whole frame in one bytes chunk: the fast path
    decoder.feed(good + b"\x01")
    items: list[Any] = []
    with pytest.raises(InvalidFrame) as info:
        items.extend(decoder)
    assert items == [REQUESTS[0], REQUESTS[0]]
    assert info.value.offset == 2 * len(good)
    assert info.value.path is None


def _colliding_tuple_keys(count: int) -> list[tuple[int, ...]]:
    p = 2**61 - 1  # Python hashes an int modulo this prime
    same = [1 + k * p for k in range(8)]  # all < 2**64, all with hash 1
    return list(itertools.islice(itertools.product(same, repeat=4), count))


@pytest.mark.parametrize("tp", [Any, Loose, dict[tuple[int, ...], None]])
@pytest.mark.parametrize("chunked", [False, True])
def test_maps_of_colliding_array_keys_are_refused(tp: Any, chunked: bool) -> None:
    keys = _colliding_tuple_keys(3000)
    assert len({hash(key) for key in keys}) == 1
    bad: Any = {key: None for key in keys}
    if tp is Loose:
        bad = {"id": 1, "params": [bad]}
    data = msgpack.packb(bad)
    codec = MsgspecCodec(tp)
    first = codec.encode({} if tp is not Loose else Loose(5, []))
    decoder = codec.decoder()
    if chunked:  # the usual path (the fast path takes a lone chunk up to 16 KiB)
        for i in range(0, len(data), 1000):
            decoder.feed(data[i : i + 1000])
    else:
        decoder.feed(first + data)
    with pytest.raises(DecodeError) as info:
        list(decoder)
    assert str(info.value) == (
        "a map of 3000 entries has more than 32 array keys that share their hash with"
        f" another key (frame starting at stream offset {0 if chunked else len(first)})"
    )
    # 32 shared hashes, and any number of ordinary tuple keys, decode.
    few = {key: None for key in keys[:33]}
    plain = {(i, -i): None for i in range(3000)}
    assert decode_chunks(MsgspecCodec(), [msgpack.packb(few) + msgpack.packb(plain)]) == [
        few,
        plain,
    ]


def test_frames_with_map_header_bytes_are_still_decoded_in_one_call() -> None:
    """Bytes 0xde/0xdf inside integers and strings do not send a batch frame by frame.

    Only the frames holding such a byte are walked for colliding keys, once each.
    """
    items: list[Any] = [{"id": i, "n": 0xDE00 + i, "s": "\u07de"} for i in range(200)]
    data = b"".join(msgpack.packb(item) for item in items)
    assert data.count(0xDE) == data.count(0xDF) == 200  # one each per frame
    decoder = MsgspecCodec().decoder()
    calls: list[str] = []
    batch, one = decoder._decode_batch, decoder._decode
    assert batch is not None
    decoder._decode_batch = lambda data: (calls.append("batch"), batch(data))[1]
    decoder._decode = lambda data: (calls.append("one"), one(data))[1]
    decoder.feed(bytearray(data))  # not bytes: no fast path
    assert list(decoder) == items
    assert calls == ["batch"]

    # A frame of colliding keys among them is refused at its own offset, after the
    # frames before it.
    bad = msgpack.packb({key: None for key in _colliding_tuple_keys(100)})
    head = b"".join(msgpack.packb(item) for item in items[:50])
    decoder = MsgspecCodec().decoder()
    decoder.feed(bytearray(head + bad + data))
    got: list[Any] = []
    with pytest.raises(DecodeError, match="a map of 100 entries") as info:
        got.extend(decoder)
    assert got == items[:50]
    assert info.value.offset == len(head)


def test_a_batch_is_at_most_256_frames() -> None:
    """The values of a whole chunk are not built at once (the GC would walk them)."""
    items = list(range(600))
    decoder = MsgspecCodec().decoder()
    sizes: list[int] = []
    batch = decoder._decode_batch
    assert batch is not None
    decoder._decode_batch = lambda data: (sizes.append(len(values := batch(data))), values)[1]
    decoder.feed(bytearray(b"".join(msgpack.packb(item) for item in items)))
    assert list(decoder) == items
    assert sizes == [256, 256, 88]


class Tree(msgspec.Struct):
    children: list[Tree]
    name: str


def test_only_types_that_admit_tuple_keys_are_checked() -> None:
    assert _admits_tuple_keys(Any)
    assert _admits_tuple_keys(Loose)
    assert _admits_tuple_keys(dict[tuple[int, int], int])
    assert _admits_tuple_keys(list[dict[str, Any]])
    assert not _admits_tuple_keys(Request)
    assert not _admits_tuple_keys(Tree)
    assert not _admits_tuple_keys(dict[str, tuple[int, int]])
    assert not _admits_tuple_keys(Add | Echo)


def test_without_msgspec_the_import_error_names_the_extra() -> None:
    script = (
        "import sys; sys.modules['msgspec'] = None\n"
        "import wsframed.codecs\n"
        "from wsframed.codecs import *\n"
        "try:\n"
        "    wsframed.codecs.MsgspecCodec\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == (
        "wsframed.codecs.MsgspecCodec needs msgspec: pip install 'wsframed[msgspec]'\n"
    )


async def test_typed_frames_over_a_real_websocket() -> None:
    codec = MsgspecCodec(Add | Echo)
    seen: list[Any] = []

    async def handler(framed: Framed[Any]) -> None:
        try:
            async for item in framed:
                seen.append(item)
                await framed.send(Echo(f"{item!r}"))
        except InvalidFrame as exc:
            await framed.send(Echo(f"refused: {exc.path} at {exc.offset}"))

    async with (
        wsframed.serve(handler, "127.0.0.1", 0, codec=codec) as server,
        wsframed.connect(f"ws://127.0.0.1:{server.port}/", MsgspecCodec(Any)) as client,
    ):
        await client.send_all([{"type": "add", "a": 1, "b": 2}, {"type": "echo", "text": "x"}])
        replies = [await client.recv() for _ in range(2)]
        await client.send({"type": "add", "a": 1, "b": "2"})
        replies.append(await client.recv())
    assert seen == [Add(1, 2), Echo("x")]
    prefix = len(msgpack.packb({"type": "add", "a": 1, "b": 2})) + len(
        msgpack.packb({"type": "echo", "text": "x"})
    )
    assert replies == [
        {"type": "echo", "text": "Add(a=1, b=2)"},
        {"type": "echo", "text": "Echo(text='x')"},
        {"type": "echo", "text": f"refused: $.b at {prefix}"},
    ]


@pytest.mark.parametrize(("fmt", "framing"), FRAMINGS)
def test_a_pass_abandoned_part_way_loses_nothing(fmt: Any, framing: Any) -> None:
    codec = MsgspecCodec(Request, fmt, framing=framing)
    decoder = codec.decoder()
    decoder.feed(b"".join(map(codec.encode, REQUESTS[:10])))
    got = []
    for item in decoder:  # msgpack: the 10 frames are decoded in one call, as a batch
        got.append(item)
        break
    decoder.feed(b"".join(map(codec.encode, REQUESTS[10:20])))
    for item in decoder:
        got.append(item)
        if len(got) == 15:
            break
    got.extend(decoder)
    assert got == REQUESTS[:20]


async def test_rpc_peer_runs_unchanged_over_the_untyped_codec() -> None:
    from wsframed.rpc import RemoteError, RpcPeer

    from .conftest import framed_pair

    async with (
        framed_pair("ws", MsgspecCodec()) as (a, b),
        RpcPeer(a) as client,
        RpcPeer(b, handlers={"add": lambda x, y: x + y}) as _server,
        asyncio.timeout(20),
    ):
        assert await client.call("add", 2, 3) == 5
        assert await client.call("add", [1], [b"x"]) == [1, b"x"]
        with pytest.raises(RemoteError, match="NoMethodError: no method named 'nope'"):
            await client.call("nope")


class Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other.x == self.x


class Located(msgspec.Struct):
    p: Point


def test_a_dec_hook_runs_once_per_value() -> None:
    calls: list[Any] = []

    def dec_hook(tp: type, value: Any) -> Any:
        calls.append(value)
        return Point(value)

    codec = MsgspecCodec(Located, dec_hook=dec_hook, enc_hook=lambda point: point.x)
    data = codec.encode(Located(Point(1))) + codec.encode(Located(Point(2)))
    decoder = codec.decoder()
    decoder.feed(data + msgpack.packb({"q": 1}))  # one chunk: two frames, then a bad one
    items: list[Any] = []
    with pytest.raises(InvalidFrame, match="missing required field `p`"):
        items.extend(decoder)
    assert items == [Located(Point(1)), Located(Point(2))]
    assert calls == [1, 2]


def test_an_unscanned_chunk_is_never_unpacked_by_the_key_check() -> None:
    # Nested array 16 headers of 1500 items each, unfinished, and a map 16 header byte:
    # an unpacker parsing this chunk would preallocate 500 lists (6 MB).
    data = b"\xde\x00\x01" + b"\xdc\x05\xdc" * 500
    decoder = MsgspecCodec().decoder()
    tracemalloc.start()
    try:
        decoder.feed(data)
        assert list(decoder) == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024  # the scanner's first buffer (16 KiB) and the chunk

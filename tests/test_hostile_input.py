"""Hostile input: every decoder and the byte stream against a peer that means harm.

Three layers:

1. Sans-I/O: each attack is fed to a fresh decoder chunk by chunk, as a peer would
   trickle it, until the decoder refuses it. Each must end in the documented exception
   (``FrameTooLarge``, ``DecodeError``), at the earliest byte that reveals it (a header
   that declares too much fails with only the header fed), with bounded memory
   (``tracemalloc``) and in bounded time.
2. Hypothesis: arbitrary bytes, cut arbitrarily, into every decoder raise only the
   documented exceptions (the fuzz targets of ``fuzz/``, run as property tests).
3. Real connections: ``wsframed.serve`` against raw websockets clients and a WebSocket
   client written by hand, checking what the handler sees, the close code the client
   gets, and that the server keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from fuzz.targets import TARGETS, held_bytes, run_hypothesis
from wsframed import (
    ConnectionClosed,
    DecodeError,
    Framed,
    FrameTooLarge,
    ProtocolError,
    WsStream,
)
from wsframed.codecs import (
    BytesCodec,
    CborCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)
from wsframed.events import Closed, CloseFrame, Ping, TextMessage

from .conftest import ws_pair
from .peers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    KiB,
    MiB,
    RawWsClient,
    close_code,
    frame,
    frame_header,
    serving,
    traced,
)

# The close code wsframed.serve sends when the handler lets a codec error escape:
# 1007 (invalid data) or 1009 (too big), as RFC 6455 section 7.4.1 defines them.
CLOSE_CODE_FOR: dict[type[Exception], int] = {DecodeError: 1007, FrameTooLarge: 1009}


# 1. Sans-I/O attacks ------------------------------------------------------------------


def endless(first: bytes, filler: bytes, chunk: int = 16 * KiB) -> Iterator[bytes]:
    """``first``, then ``filler`` repeated forever, in chunks of about ``chunk`` bytes."""
    if first:
        yield first
    block = filler * max(1, chunk // len(filler))
    while True:
        yield block


def once(*chunks: bytes) -> Iterator[bytes]:
    yield from chunks


@dataclass
class Attack:
    """One hostile input: what the decoder must raise, and how early."""

    id: str
    codec: Any
    chunks: Callable[[], Iterable[bytes]]
    raises: type[Exception]
    # The most bytes the decoder may accept before refusing (None: up to the frame
    # limit plus the chunk that crossed it).
    fed_at_most: int | None = None
    frames_before: int = 0
    # Peak memory allowed, in multiples of max_frame_size (plus a fixed 512 KiB).
    memory_factor: float = 2


def _deep(opener: bytes, depth: int, leaf: bytes) -> bytes:
    return opener * depth + leaf


ATTACKS = [
    # Length-prefixed: a header declaring more than max_frame_size fails at the header.
    Attack("length/4GiB-u32", LengthPrefixedCodec(),
           lambda: endless(b"\xff\xff\xff\xff", b"x"), FrameTooLarge, fed_at_most=4),
    Attack("length/16EiB-u64", LengthPrefixedCodec(8),
           lambda: endless(b"\xff" * 8, b"x"), FrameTooLarge, fed_at_most=8),
    Attack("length/4GiB-after-a-good-frame", LengthPrefixedCodec(),
           lambda: endless(b"\x00\x00\x00\x02ok" + b"\xff\xff\xff\xff", b"x"),
           FrameTooLarge, fed_at_most=10, frames_before=1),
    Attack("length/4GiB-bytewise", LengthPrefixedCodec(),
           lambda: iter([b"\xff"] * 4 + [b"x"] * 10), FrameTooLarge, fed_at_most=4),
    Attack("length/shorter-than-its-header", LengthPrefixedCodec(length_includes_header=True),
           lambda: once(b"\x00\x00\x00\x02"), DecodeError, fed_at_most=4),
    # Lines: a line that never ends is refused once the limit is passed.
    Attack("lines/never-ends", LinesCodec(), lambda: endless(b"", b"a"), FrameTooLarge),
    Attack("lines/never-ends-bytes", LinesCodec(None), lambda: endless(b"", b"a"),
           FrameTooLarge),
    Attack("lines/carriage-returns-only", LinesCodec(), lambda: endless(b"", b"\r"),
           FrameTooLarge),
    Attack("lines/never-ends-1-byte-chunks", LinesCodec(max_frame_size=4 * KiB),
           lambda: endless(b"", b"a", chunk=1), FrameTooLarge),
    Attack("lines/invalid-utf8", LinesCodec(), lambda: once(b"ok\n\xff\xfe\xfd\n"),
           DecodeError, frames_before=1),
    Attack("lines/overlong-utf8-encoding", LinesCodec(), lambda: once(b"\xc0\xaf\n"),
           DecodeError),
    Attack("lines/lone-surrogate", LinesCodec(), lambda: once(b"\xed\xa0\x80\n"), DecodeError),
    Attack("jsonl/never-ends", JsonLinesCodec(), lambda: endless(b"", b"["), FrameTooLarge),
    Attack("jsonl/invalid-utf8", JsonLinesCodec(), lambda: once(b'1\n"\xff"\n'), DecodeError,
           frames_before=1),
    Attack("jsonl/not-json", JsonLinesCodec(), lambda: once(b"{'a': 1}\n"), DecodeError),
    Attack("jsonl/nested-60000-deep", JsonLinesCodec(), lambda: once(b"[" * 60_000 + b"\n"),
           DecodeError),
    Attack("jsonl/60000-digit-number", JsonLinesCodec(max_frame_size=64 * KiB),
           lambda: once(b"9" * 60_000 + b"\n"), DecodeError),
    # msgpack: every sized header declaring 4 GiB fails at the header.
    Attack("msgpack/bin32-4GiB", MsgpackCodec(), lambda: endless(b"\xc6\xff\xff\xff\xff", b"x"),
           FrameTooLarge, fed_at_most=5),
    Attack("msgpack/str32-4GiB", MsgpackCodec(), lambda: endless(b"\xdb\xff\xff\xff\xff", b"x"),
           FrameTooLarge, fed_at_most=5),
    Attack("msgpack/ext32-4GiB", MsgpackCodec(),
           lambda: endless(b"\xc9\xff\xff\xff\xff\x01", b"x"), FrameTooLarge, fed_at_most=6),
    Attack("msgpack/array32-4G-items", MsgpackCodec(),
           lambda: endless(b"\xdd\xff\xff\xff\xff", b"\x00"), FrameTooLarge, fed_at_most=5),
    Attack("msgpack/map32-4G-entries", MsgpackCodec(),
           lambda: endless(b"\xdf\xff\xff\xff\xff", b"\x00"), FrameTooLarge, fed_at_most=5),
    # ... nested, at the header or at the latest once the object passes the limit.
    Attack("msgpack/nested-array32", MsgpackCodec(),
           lambda: endless(b"\x91\xdd\xff\xff\xff\xff", b"\x00"), FrameTooLarge),
    Attack("msgpack/nested-map32", MsgpackCodec(),
           lambda: endless(b"\x91\xdf\xff\xff\xff\xff", b"\x00"), FrameTooLarge),
    Attack("msgpack/nested-bin32", MsgpackCodec(),
           lambda: endless(b"\x91\xc6\xff\xff\xff\xff", b"x"), FrameTooLarge, memory_factor=3),
    Attack("msgpack/nested-str32", MsgpackCodec(),
           lambda: endless(b"\x92\x01\xdb\xff\xff\xff\xff", b"x"), FrameTooLarge,
           memory_factor=3),
    # The unpacker builds the list as the items arrive: 8 bytes per 1-byte item.
    Attack("msgpack/endless-array-of-ints", MsgpackCodec(),
           lambda: endless(b"\x91\xdd\x00\x0f\xff\xff", b"\x01"), FrameTooLarge,
           memory_factor=10),
    Attack("msgpack/arrays-10000-deep", MsgpackCodec(),
           lambda: once(_deep(b"\x91", 10_000, b"\xc0")), DecodeError),
    Attack("msgpack/arrays-10000-deep-bytewise", MsgpackCodec(),
           lambda: iter([b"\x91"] * 10_000 + [b"\xc0"]), DecodeError),
    Attack("msgpack/maps-10000-deep", MsgpackCodec(),
           lambda: once(_deep(b"\x81\xa1k", 10_000, b"\xc0")), DecodeError),
    Attack("msgpack/reserved-byte-0xc1", MsgpackCodec(), lambda: once(b"\x01\x02\xc1"),
           DecodeError, frames_before=2),
    Attack("msgpack/invalid-utf8-str", MsgpackCodec(), lambda: once(b"\xa2\xff\xfe"),
           DecodeError),
    # CBOR.
    Attack("cbor/arrays-10000-deep", CborCodec(),
           lambda: once(_deep(b"\x81", 10_000, b"\xf6")), DecodeError),
    Attack("cbor/arrays-10000-deep-bytewise", CborCodec(),
           lambda: iter([b"\x81"] * 10_000 + [b"\xf6"]), DecodeError),
    Attack("cbor/indefinite-arrays-10000-deep", CborCodec(),
           lambda: once(b"\x9f" * 10_000), DecodeError),
    Attack("cbor/maps-10000-deep", CborCodec(),
           lambda: once(_deep(b"\xa1\x00", 10_000, b"\xf6")), DecodeError),
    Attack("cbor/tags-10000-deep", CborCodec(), lambda: once(_deep(b"\xc6", 10_000, b"\xf6")),
           DecodeError),
    Attack("cbor/indefinite-bytes-never-end", CborCodec(max_frame_size=64 * KiB),
           lambda: endless(b"\x5f", b"\x41x"), FrameTooLarge),
    Attack("cbor/indefinite-text-never-ends", CborCodec(max_frame_size=64 * KiB),
           lambda: endless(b"\x7f", b"\x61x"), FrameTooLarge),
    Attack("cbor/indefinite-array-never-ends", CborCodec(max_frame_size=64 * KiB),
           lambda: endless(b"\x9f", b"\x00"), FrameTooLarge),
    Attack("cbor/bytes-2**64", CborCodec(), lambda: endless(b"\x5b" + b"\xff" * 8, b"x"),
           FrameTooLarge, fed_at_most=9),
    Attack("cbor/text-4GiB", CborCodec(), lambda: endless(b"\x7a\xff\xff\xff\xff", b"x"),
           FrameTooLarge, fed_at_most=5),
    Attack("cbor/array-2**64-items", CborCodec(), lambda: endless(b"\x9b" + b"\xff" * 8, b"\0"),
           FrameTooLarge, fed_at_most=9),
    Attack("cbor/map-4G-entries", CborCodec(), lambda: endless(b"\xba\xff\xff\xff\xff", b"\0"),
           FrameTooLarge, fed_at_most=5),
    Attack("cbor/reserved-additional-info", CborCodec(), lambda: once(b"\x01\x1c"),
           DecodeError, frames_before=1),
    Attack("cbor/break-outside-indefinite", CborCodec(), lambda: once(b"\xff"), DecodeError),
    Attack("cbor/invalid-utf8-text", CborCodec(), lambda: once(b"\x62\xff\xfe"), DecodeError),
    Attack("cbor/wrong-chunk-in-indefinite-text", CborCodec(), lambda: once(b"\x7f\x41x\xff"),
           DecodeError),
]


def run_attack(attack: Attack, budget: int = 64 * MiB) -> tuple[BaseException, int, int]:
    """Feed the attack until the decoder refuses it; return (error, bytes fed, frames).

    Fails if the decoder accepts ``budget`` bytes without refusing.
    """
    decoder = attack.codec.decoder()
    fed = 0
    frames = 0
    for chunk in attack.chunks():
        try:
            decoder.feed(chunk)
            fed += len(chunk)
            for _ in decoder:
                frames += 1
        except (DecodeError, FrameTooLarge) as exc:
            return exc, fed, frames
        assert fed < budget, f"{fed} bytes accepted without refusal"
    try:
        decoder.feed_eof()
    except DecodeError as exc:
        return exc, fed, frames
    raise AssertionError("the decoder accepted the whole attack")


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_decoder_refuses_the_attack_early_with_bounded_memory(attack: Attack) -> None:
    limit = attack.codec.max_frame_size
    started = time.monotonic()
    run_attack(attack)
    assert time.monotonic() - started < 2  # no hang, no quadratic rescanning
    with traced() as peak:  # again, traced (which slows allocations down a lot)
        error, fed, frames = run_attack(attack)
    assert type(error) is attack.raises, error
    assert frames == attack.frames_before
    if isinstance(error, FrameTooLarge):
        assert not error.local
        assert error.limit == limit
        assert error.size > limit
    # Refused at the earliest byte that reveals the attack: at the header for a
    # declared size, within one chunk past the limit for an endless frame.
    at_most = attack.fed_at_most if attack.fed_at_most is not None else limit + 16 * KiB
    assert fed <= at_most + 8, (fed, at_most)
    # Memory: the frame limit, one chunk, and the decoder's fixed overhead.
    assert peak.bytes <= attack.memory_factor * limit + 512 * KiB, peak.bytes


@pytest.mark.parametrize(
    "codec",
    [LengthPrefixedCodec(), MsgpackCodec(), CborCodec(), LinesCodec(), JsonLinesCodec()],
    ids=lambda c: type(c).__name__,
)
def test_a_failed_decoder_stays_failed_and_releases_its_buffer(codec: Any) -> None:
    attack = {
        LengthPrefixedCodec: b"\xff\xff\xff\xff",
        MsgpackCodec: b"\xc6\xff\xff\xff\xff",
        CborCodec: b"\x5b" + b"\xff" * 8,
        LinesCodec: b"a" * (codec.max_frame_size + 2),
        JsonLinesCodec: b"a" * (codec.max_frame_size + 2),
    }[type(codec)]
    decoder = codec.decoder()
    decoder.feed(b"x" * 100 if isinstance(codec, LinesCodec | JsonLinesCodec) else b"")
    decoder.feed(attack)
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    for call in (lambda: decoder.feed(b"\n\x00" * 1000), lambda: list(decoder), decoder.feed_eof):
        with pytest.raises(FrameTooLarge) as again:
            call()
        assert again.value is info.value
    assert held_bytes(decoder) == 0  # nothing of the attack is kept


def test_lines_discard_mode_survives_an_endless_line_with_bounded_memory() -> None:
    codec = LinesCodec(max_frame_size=4 * KiB, on_overflow="discard")
    decoder = codec.decoder()
    decoder.feed(b"before\n")
    assert list(decoder) == ["before"]
    with traced() as peak:
        errors = 0
        for chunk in itertools.islice(endless(b"", b"a", chunk=1000), 4000):  # 4 MB
            decoder.feed(chunk)
            try:
                assert list(decoder) == []
            except FrameTooLarge:
                errors += 1
    assert errors == 1  # raised once, then the rest of the line is dropped as it comes
    assert peak.bytes < 64 * KiB
    decoder.feed(b"aaa\nafter\n")
    assert list(decoder) == ["after"]


def test_invalid_utf8_in_lines_and_json_lines_is_skipped_and_decoding_resumes() -> None:
    for codec, expected in ((LinesCodec(), ["one", "two"]), (JsonLinesCodec(), [1, 2])):
        decoder = codec.decoder()
        raw = b"one\n\xff\xfe\ntwo\n" if isinstance(codec, LinesCodec) else b'1\n"\xff"\n2\n'
        decoder.feed(raw)
        got: list[Any] = []
        errors = []
        while True:
            try:
                got.extend(decoder)
            except DecodeError as exc:
                errors.append(exc)
                continue
            break
        assert got == expected
        assert len(errors) == 1
        assert isinstance(errors[0].__cause__, UnicodeDecodeError)
        decoder.feed_eof()


def test_bytes_codec_splits_a_huge_chunk_into_frames_within_the_limit() -> None:
    codec = BytesCodec(max_frame_size=64 * KiB)
    decoder = codec.decoder()
    decoder.feed(b"z" * (10 * MiB + 1))
    sizes = [len(frame) for frame in decoder]
    assert max(sizes) == 64 * KiB
    assert sum(sizes) == 10 * MiB + 1


@pytest.mark.parametrize(
    ("codec", "frame_of_empty_containers"),
    [
        (MsgpackCodec(max_frame_size=64 * KiB), b"\xdc\xff\xfc" + b"\x90" * 0xFFFC),
        (CborCodec(max_frame_size=64 * KiB), b"\x99\xff\xfc" + b"\x80" * 0xFFFC),
    ],
    ids=["msgpack", "cbor"],
)
def test_decoded_size_is_a_bounded_multiple_of_the_frame_limit(
    codec: Any, frame_of_empty_containers: bytes
) -> None:
    """max_frame_size bounds bytes on the wire, not the decoded objects: one byte can
    become an empty list (56 bytes). docs/security.md states the factor."""
    decoder = codec.decoder()
    with traced() as peak:
        decoder.feed(frame_of_empty_containers)
        (item,) = list(decoder)
        assert len(item) == 0xFFFC
    ratio = peak.bytes / len(frame_of_empty_containers)
    assert 20 < ratio < 100, ratio


# msgpack preallocates up to 10,000 list slots per array header (and per map header
# with object_pairs_hook) before the items arrive; see docs/security.md, "Fixed".
ARRAY32 = b"\xdd\x00\x00\xff\xf0"  # an array of 65,520 items
ARRAY16 = b"\xdc\xff\xf0"
MAP32 = b"\xdf\x00\x00\x7f\xf0"


@pytest.mark.parametrize(
    ("options", "limit", "chunks"),
    [
        ({}, 64 * KiB, [ARRAY32 * 1000]),  # one feed: the original report
        ({}, MiB, [ARRAY16 * 1000]),  # a small message, as the fast path sees it
        ({}, 64 * KiB, [ARRAY32] * 1000),  # one header per feed
        ({}, MiB, [ARRAY32 * 200] * 5),  # five messages of 1,000 bytes
        ({"object_pairs_hook": list}, 64 * KiB, [MAP32 * 1000]),
    ],
    ids=[
        "array32-one-feed",
        "array16-small-message",
        "array32-per-feed",
        "array32-5-feeds",
        "map32-pairs-hook",
    ],
)
def test_msgpack_nested_array_headers_cannot_make_the_unpacker_hold_memory(
    options: dict[str, Any], limit: int, chunks: list[bytes]
) -> None:
    codec = MsgpackCodec(max_frame_size=limit, **options)
    decoder = codec.decoder()
    with traced() as peak:
        for chunk in chunks:
            decoder.feed(chunk)
            assert list(decoder) == []
    # Without the fix: about 77 MiB (1,000 headers x 10,000 slots x 8 bytes).
    assert peak.bytes < 2 * limit + 512 * KiB, peak.bytes
    # The object in progress is held as bytes, and refused past the limit.
    decoder.feed(b"\x00" * limit)
    with pytest.raises(FrameTooLarge):
        list(decoder)


def test_msgpack_objects_behind_nested_headers_still_decode() -> None:
    """The same headers inside a complete object are decoded (nothing refused)."""
    nested: list[Any] = [0]
    for _ in range(500):
        nested = [nested, *range(300)]  # array 16 headers, every slot filled
    wire = msgpack.packb([1, nested, 2]) + msgpack.packb("after")
    decoder = MsgpackCodec(max_frame_size=MiB).decoder()
    items: list[Any] = []
    for start in range(0, len(wire), 1000):
        decoder.feed(wire[start : start + 1000])
        items.extend(decoder)
    assert items == [[1, nested, 2], "after"]
    decoder.feed_eof()


# 2. Arbitrary bytes (the fuzz targets as property tests) ---------------------------


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(min_size=2, max_size=600))
@example(  # found by atheris: a line decoder keeps its last batch of lines until the next
    data=base64.b64decode(
        "/AgKAXYKChAACrsKCgoKCgoKCgqOCgcKCgoKCgoTCgoKCgoKCgoKCgoKCgoK4woKCgoKCgoKCgoKCgoKCgoK"
        "CgoKCgoKCgoKCgoPCgoKCgoKCgoKAQAKuwoK"
    )
)
def test_arbitrary_bytes_raise_only_documented_errors(name: str, data: bytes) -> None:
    TARGETS[name](data)


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=60, deadline=None)
@given(head=st.binary(min_size=2, max_size=2), tail=st.lists(st.sampled_from([
    b"\x00", b"\xff", b"\n", b"\r", b"\xc1", b"\x81", b"\x9f", b"\x5f", b"\xdd\xff\xff",
    b"\xc6\x00\x00\x10\x00", b"[", b"\"", b"\xed\xa0\x80", b"\x00\x00\x00\x40", b"x" * 40,
]), max_size=60))
def test_structured_garbage_raises_only_documented_errors(
    name: str, head: bytes, tail: list[bytes]
) -> None:
    """Garbage built from the bytes each format treats specially (headers, breaks,
    terminators) reaches deeper states than uniform random bytes."""
    TARGETS[name](head + b"".join(tail))


@pytest.mark.soak
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_soak_fuzz_targets_with_many_examples(name: str) -> None:
    examples = int(os.environ.get("WSFRAMED_SOAK_EXAMPLES", "20000"))
    run_hypothesis(TARGETS[name], examples)


# 3. Over real connections ------------------------------------------------------------


@dataclass
class WireAttack:
    id: str
    codec: Any
    good: list[Any]  # frames sent first, which the handler must receive
    attack: Callable[[], Iterable[bytes]]  # hostile bytes, as binary messages
    raises: type[Exception]


WIRE_ATTACKS = [
    WireAttack("length/4GiB-then-trickle", LengthPrefixedCodec(), [b"ok"],
               lambda: endless(b"\xff\xff\xff\xff", b"x", 64 * KiB), FrameTooLarge),
    WireAttack("lines/never-ends", LinesCodec(), ["ok"],
               lambda: endless(b"", b"a", 64 * KiB), FrameTooLarge),
    WireAttack("lines/invalid-utf8", LinesCodec(), ["ok"], lambda: once(b"\xff\xfe\n"),
               DecodeError),
    WireAttack("jsonl/invalid-utf8", JsonLinesCodec(), [{"a": 1}], lambda: once(b'"\xff"\n'),
               DecodeError),
    WireAttack("jsonl/never-ends", JsonLinesCodec(), [[1]], lambda: endless(b"", b"[", 64 * KiB),
               FrameTooLarge),
    WireAttack("msgpack/bin32", MsgpackCodec(), [1],
               lambda: endless(b"\xc6\xff\xff\xff\xff", b"x", 64 * KiB), FrameTooLarge),
    WireAttack("msgpack/str32", MsgpackCodec(), [1],
               lambda: endless(b"\xdb\xff\xff\xff\xff", b"x", 64 * KiB), FrameTooLarge),
    WireAttack("msgpack/array32", MsgpackCodec(), [1],
               lambda: endless(b"\xdd\xff\xff\xff\xff", b"\x00", 64 * KiB), FrameTooLarge),
    WireAttack("msgpack/map32", MsgpackCodec(), [1],
               lambda: endless(b"\xdf\xff\xff\xff\xff", b"\x00", 64 * KiB), FrameTooLarge),
    WireAttack("msgpack/nested-str32", MsgpackCodec(), [1],
               lambda: endless(b"\x91\xdb\xff\xff\xff\xff", b"x", 64 * KiB), FrameTooLarge),
    WireAttack("msgpack/10000-deep", MsgpackCodec(), [1], lambda: once(b"\x91" * 10_000),
               DecodeError),
    WireAttack("cbor/10000-deep", CborCodec(), [1], lambda: once(b"\x81" * 10_000),
               DecodeError),
    WireAttack("cbor/indefinite-string-never-ends", CborCodec(max_frame_size=256 * KiB), [1],
               lambda: endless(b"\x5f", b"\x41x", 64 * KiB), FrameTooLarge),
]


async def send_until_closed(ws: ClientConnection, chunks: Iterable[bytes], budget: int) -> int:
    """Send ``chunks`` as binary messages until the server closes; return bytes sent."""
    sent = 0
    try:
        for chunk in chunks:
            await ws.send(chunk)
            sent += len(chunk)
            if sent > budget:
                raise AssertionError(f"the server accepted {sent} hostile bytes")
    except WsConnectionClosed:
        pass
    return sent


async def wait_close_code(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    """Read until the server closes; return the close code it sent."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                await ws.recv()
            except WsConnectionClosed as exc:
                return close_code(exc)


async def assert_still_serving(url: str, codec: Any, item: Any) -> None:
    """A well-behaved client still gets its frame delivered to a fresh handler."""
    async with connect(url, compression=None) as ws:
        await ws.send(codec.encode(item))
        await ws.close()


@pytest.mark.parametrize("attack", WIRE_ATTACKS, ids=[a.id for a in WIRE_ATTACKS])
async def test_serve_refuses_hostile_frames_and_closes_the_connection(attack: WireAttack) -> None:
    async with serving(attack.codec) as (url, outcomes, _server):
        with traced() as peak:
            async with connect(url, compression=None) as ws:
                for item in attack.good:
                    await ws.send(attack.codec.encode(item))
                sent = await asyncio.wait_for(
                    send_until_closed(ws, attack.attack(), budget=64 * MiB), 10
                )
                assert await wait_close_code(ws) == CLOSE_CODE_FOR[attack.raises]
            await outcomes.wait(1)
        assert outcomes.items[0] == attack.good
        assert type(outcomes.errors[0]) is attack.raises
        # What got through before the close is what was in flight: the queue of
        # websockets (16 messages) and the socket buffers, not the attack's size.
        assert sent < 32 * MiB
        assert peak.bytes < 3 * attack.codec.max_frame_size + 8 * MiB, peak.bytes
        await assert_still_serving(url, attack.codec, attack.good[0])
        await outcomes.wait(2)
        assert outcomes.items[1] == attack.good


async def test_a_handler_may_skip_invalid_lines_and_carry_on() -> None:
    async def body(framed: Framed[Any], items: list[Any]) -> None:
        while True:
            try:
                items.append(await framed.recv())
            except DecodeError:
                items.append("<skipped>")
            except Exception:
                return

    async with serving(LinesCodec(), body) as (url, outcomes, _server):
        async with connect(url, compression=None) as ws:
            await ws.send(b"one\n\xff\xfe\ntwo\n")
        await outcomes.wait(1)
    assert outcomes.items[0] == ["one", "<skipped>", "two"]


async def test_text_message_is_refused_with_1003_and_a_protocol_error() -> None:
    async with serving(MsgpackCodec()) as (url, outcomes, _server):
        async with connect(url, compression=None) as ws:
            await ws.send(msgpack.packb("binary first"))
            await ws.send("some text")
            assert await wait_close_code(ws) == 1003
        await outcomes.wait(1)
        assert outcomes.items[0] == ["binary first"]
        assert isinstance(outcomes.errors[0], ProtocolError)
        await assert_still_serving(url, MsgpackCodec(), 1)


async def test_text_messages_flood_is_dropped_under_text_ignore() -> None:
    async def body(framed: Framed[Any], items: list[Any]) -> None:
        stream = framed.stream
        assert isinstance(stream, WsStream)
        events = stream.events()
        async for item in framed:
            items.append(item)
        items.append(("events", events.pending(), events.dropped))

    async with serving(MsgpackCodec(), body, text="ignore") as (url, outcomes, _server):
        async with connect(url, compression=None) as ws:
            for i in range(2000):
                await ws.send("t" * 100)
                if i % 500 == 0:
                    await ws.send(msgpack.packb(i))
        await outcomes.wait(1)
    items = outcomes.items[0]
    assert items[:-1] == [0, 500, 1000, 1500]
    _, pending, dropped = items[-1]
    assert pending <= 256  # the event queue's default bound
    assert pending + dropped >= 2000  # every text message was reported or counted


async def test_message_over_max_size_closes_with_1009() -> None:
    async with serving(BytesCodec(), max_size=64 * KiB) as (url, outcomes, server):
        ws = await connect(url, compression=None, max_size=None)
        await ws.send(b"fine")
        with contextlib.suppress(WsConnectionClosed):
            await ws.send(b"x" * (1 * MiB))
        assert await wait_close_code(ws) == 1009
        await outcomes.wait(1)
        assert outcomes.items[0] == [b"fine"]
        assert isinstance(outcomes.errors[0], ConnectionClosed)
        # The server refuses a message at the frame header that declares it too
        # large, before buffering its body: a peer that declares 4 GiB and trickles
        # it in costs nothing.
        peer = await RawWsClient.connect(server.port)
        with traced() as peak:
            peer.write(frame_header(OP_BINARY, 4 * 1024 * MiB) + b"mask")
            for _ in range(64):
                peer.write(b"x" * (16 * KiB))
            assert await peer.close_code() == 1009
        peer.close()
        assert peak.bytes < 2 * MiB
        await assert_still_serving(url, BytesCodec(), b"again")


# Frames that no well-behaved client sends, from a client written by hand. Each is
# refused by websockets with the RFC 6455 code; the handler sees ConnectionClosed.
RAW_FRAMES = [
    ("unmasked-client-frame", frame(OP_BINARY, b"x", mask=False), 1002),
    ("reserved-bits-set", frame(OP_BINARY, b"x", rsv=4), 1002),
    ("reserved-opcode", frame(3, b"x"), 1002),
    ("2**63-byte-frame-header", frame_header(OP_BINARY, 2**63 - 1) + b"\0\0\0\0", 1009),
    ("4GiB-frame-then-trickle", frame_header(OP_BINARY, 2**32) + b"\0\0\0\0" + b"x" * 1000, 1009),
    ("fragmented-ping", frame(OP_PING, b"x", fin=False), 1002),
    ("ping-over-125-bytes", frame(OP_PING, b"x" * 126), 1002),
    ("continuation-without-start", frame(OP_CONT, b"x"), 1002),
    ("text-with-invalid-utf8", frame(OP_TEXT, b"\xff\xfe"), 1007),
    ("close-with-invalid-code", frame(OP_CLOSE, struct.pack(">H", 999)), 1002),
    ("close-with-1-byte-payload", frame(OP_CLOSE, b"\x03"), 1002),
    ("new-message-inside-a-fragmented-one",
     frame(OP_BINARY, b"a", fin=False) + frame(OP_BINARY, b"b"), 1002),
]


@pytest.mark.parametrize(
    ("raw", "code"),
    [(raw, code) for _, raw, code in RAW_FRAMES],
    ids=[name for name, _, _ in RAW_FRAMES],
)
async def test_malformed_websocket_frames_close_the_connection(raw: bytes, code: int) -> None:
    async with serving(BytesCodec()) as (url, outcomes, server):
        peer = await RawWsClient.connect(server.port)
        try:
            peer.send(OP_BINARY, b"before")
            peer.write(raw)
            assert await peer.close_code() == code
        finally:
            peer.close()
        await outcomes.wait(1)
        assert outcomes.items[0] == [b"before"]
        assert isinstance(outcomes.errors[0], ConnectionClosed)
        await assert_still_serving(url, BytesCodec(), b"x")


async def test_ping_flood_keeps_event_queues_bounded() -> None:
    """10,000 pings: every one is answered, the event queue keeps at most
    event_queue_size of them, and the byte stream is not held up."""
    flood = 10_000
    counted = asyncio.Event()  # the peer closes only then: its CloseFrame would count

    async def body(framed: Framed[Any], items: list[Any]) -> None:
        stream = framed.stream
        assert isinstance(stream, WsStream)
        events = stream.events()  # an observer that does not read until the end
        items.append(await framed.recv())
        async with asyncio.timeout(10):
            while events.pending() + events.dropped < flood:
                await asyncio.sleep(0.01)
        items.append(await framed.recv())
        items.append((events.pending(), events.dropped))
        counted.set()
        drained = [event async for event in _drain(events)]
        # The peer's close may arrive while this drains: its CloseFrame comes after
        # every ping, in wire order; the newest ping must be the last ping kept.
        pings = [event for event in drained if isinstance(event, Ping)]
        assert all(isinstance(e, (CloseFrame, Closed)) for e in drained[len(pings) :])
        items.append(pings[-1])

    async with serving(MsgpackCodec(), body, event_queue_size=64) as (_url, outcomes, server):
        peer = await RawWsClient.connect(server.port)
        with traced() as peak:
            peer.send(OP_BINARY, msgpack.packb("first"))
            for i in range(flood):
                peer.send(OP_PING, b"%d" % i)
            peer.send(OP_BINARY, msgpack.packb("after the flood"))
            pongs = 0
            async with asyncio.timeout(10):
                while pongs < flood:
                    opcode, _ = await peer.read_frame()
                    pongs += opcode == 10
            await asyncio.wait_for(counted.wait(), 10)
        peer.send(OP_CLOSE, struct.pack(">H", 1000))
        await outcomes.wait(1)
        peer.close()
    items = outcomes.items[0]
    assert items[:2] == ["first", "after the flood"]
    assert items[2] == (64, flood - 64)
    assert items[3] == Ping(b"%d" % (flood - 1))  # the newest events are the ones kept
    assert peak.bytes < 4 * MiB


async def test_ping_flood_from_a_peer_that_never_reads_does_not_grow_memory() -> None:
    async def body(framed: Framed[Any], items: list[Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for item in framed:
                items.append(item)

    async with serving(BytesCodec(), body) as (_url, outcomes, server):
        peer = await RawWsClient.connect(server.port)
        peer.writer.transport.pause_reading()  # never reads a pong
        (connection,) = server.ws_server.connections
        largest = 0
        try:
            for _ in range(12):
                for _ in range(10_000):
                    peer.send(OP_PING, b"p" * 125)
                with contextlib.suppress(ConnectionError):
                    await asyncio.wait_for(peer.writer.drain(), 5)
                await asyncio.sleep(0.05)
                largest = max(largest, connection.transport.get_write_buffer_size())
                if connection.transport.is_closing():
                    break  # refusing the flooder is fine too
        finally:
            peer.writer.transport.abort()
        await outcomes.wait(1)
    assert largest < 5 * MiB, largest


async def _drain(events: Any) -> Any:
    while events.pending():
        yield await anext(events)


async def test_byte_stream_readline_refuses_an_endless_line_with_bounded_buffer() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client, limit=64 * KiB)

        async def flood() -> None:
            try:
                while True:
                    await server.send(b"a" * (16 * KiB))
            except WsConnectionClosed:
                pass

        flooder = asyncio.create_task(flood())
        with pytest.raises(asyncio.LimitOverrunError):
            await asyncio.wait_for(stream.readline(), 5)
        # The buffer holds the limit plus at most one message, while the peer is
        # held back by backpressure (websockets' queue, then TCP).
        assert len(stream._buffer) <= 64 * KiB + 16 * KiB
        await asyncio.sleep(0.1)
        assert len(stream._buffer) <= 64 * KiB + 16 * KiB
        await stream.aclose(timeout=2)
        await asyncio.wait_for(flooder, 5)


async def test_byte_stream_skips_a_flood_of_empty_messages() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        for _ in range(20_000):
            await server.send(b"")
        await server.send(b"data\n")
        with traced() as peak:
            assert await asyncio.wait_for(stream.readline(), 10) == b"data\n"
        # websockets pauses reading once max_queue frames wait, but parses a whole
        # 64 KiB socket read at once: up to 32,768 two-byte frames, ~100 bytes each.
        assert peak.bytes < 8 * MiB


async def test_text_reject_event_and_error_reach_the_byte_stream_reader() -> None:
    async with ws_pair() as (client, server):
        stream = WsStream(client)
        events = stream.events()
        await server.send(b"ok")
        await server.send("x" * 1000)
        assert await stream.read(100) == b"ok"
        with pytest.raises(ProtocolError):
            await stream.read(100)
        assert TextMessage(1000) in [event async for event in events]


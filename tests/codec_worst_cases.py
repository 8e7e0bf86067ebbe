"""Hostile inputs for the codecs (all but CBOR), for the adversarial cost benchmark.

``worst_cases(codec_name, size)`` returns, for ``codec_name`` in ``lines``, ``jsonl``,
``length``, ``msgpack`` and ``bytes``, a dict of shapes: hostile bytes of about
``size`` bytes each, plus ``"benign"``, ordinary traffic of the same size. Decode them
with the codec ``codec_for(codec_name)`` returns (the settings the shapes are aimed
at) through :func:`consume`, which feeds a message the way the shape says
(``feed_chunk``) and plays the consumer that catches every ``DecodeError`` or
``FrameTooLarge`` and keeps iterating, as docs/security.md recommends for codecs that
resynchronise. A decoder that poisons raises its stored error again at once; ``consume``
retries it ``retries`` times to measure that path too.

Target: no shape costs more than 10 times its benign input per MiB, and the cost per
MiB does not grow with ``size``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from wsframed.codecs import (
    BytesCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)
from wsframed.errors import DecodeError, FrameTooLarge

__all__ = ["CODECS", "codec_for", "consume", "feed_chunk", "worst_cases"]

CODECS = ("lines", "jsonl", "length", "msgpack", "bytes")

# The line limit the lines shapes are aimed at: small, so that overlong lines (which
# LinesCodec skips with on_overflow="discard") can be many.
LINES_LIMIT = 1024


def _fill(unit: bytes, size: int) -> bytes:
    """``unit`` repeated to about ``size`` bytes (never less than once)."""
    return unit * max(1, size // len(unit))


def _cycle(units: list[bytes], size: int) -> bytes:
    """The ``units`` in turn, repeated to about ``size`` bytes."""
    return _fill(b"".join(units), size)


def _lines(size: int) -> dict[str, bytes]:
    every_window = b"x" * 14 + b"\n"
    return {
        "benign": _fill(b"hello, world 1\n", size),
        "empty_lines": b"\n" * size,
        "one_byte_lines": _fill(b"a\n", size),
        "bad_utf8_alternating": _cycle([b"ok\n", b"\xff\n"], size),
        "bad_utf8_every_line": _fill(b"\xff\n", size),
        # One bad line per 1 KiB, behind good ones: a batch decode fails each time.
        "bad_utf8_every_kib": _fill(every_window * 68 + b"\xc3\n", size),
        "crlf_lines": _fill(b"a\r\n", size),
        "cr_runs": _fill(b"\r" * 60 + b"\r\n", size),
        # Overlong lines (skipped with on_overflow="discard") between short ones.
        "overlong_alternating": _cycle([b"y" * (LINES_LIMIT + 1) + b"\n", b"ok\n"], size),
        "overlong_then_tiny": _cycle([b"y" * (LINES_LIMIT + 1) + b"\n", b"a\n" * 512], size),
        "one_long_line": b"z" * (size - 1) + b"\n",
    }


def _jsonl(size: int) -> dict[str, bytes]:
    deep = 1100  # past the parser's recursion limit (1000 by default)
    within = 900  # within it, with room for the caller's frames
    big_deep = 30_000
    return {
        "benign": _fill(b'{"id":12345,"name":"abcdefghij"}\n', size),
        "bad_json_alternating": _cycle([b'{"a":1}\n', b'{"a":\n'], size),
        "bad_json_every_line": _fill(b"x\n", size),
        "bad_utf8_alternating": _cycle([b"1\n", b'"\xff"\n'], size),
        "deep_nesting_just_over": _fill(b"[" * deep + b"\n", size),
        # Within the parser's reach: parsed level by level, then refused (truncated),
        # or valid. One level per byte or two is what deep nesting costs any parser.
        "deep_nesting_just_under": _fill(b"[" * within + b"\n", size),
        "deep_nesting_valid": _fill(b"[" * within + b"]" * within + b"\n", size),
        "deep_nesting_long": _fill(b"[" * big_deep + b"]" * big_deep + b"\n", size),
        "deep_objects": _fill(b'{"a":' * deep + b"\n", size),
        "int_over_digit_limit": _fill(b"1" * 4301 + b"\n", size),
        "int_60k_digits": _fill(b"9" * 60_000 + b"\n", size),
        "float_60k_digits": _fill(b"1." + b"3" * 60_000 + b"e-5\n", size),
        "float_huge_exponent": _fill(b"1e" + b"9" * 60_000 + b"\n", size),
        "escapes": _fill(b'"' + b"\\u00e9\\n" * 8000 + b'"\n', size),
        "surrogate_escapes": _fill(b'"' + b"\\ud83d\\ude00\\udc00" * 3000 + b'"\n', size),
        "duplicate_keys": _fill(b"{" + b'"a":0,' * 10_000 + b'"a":0}\n', size),
        "many_keys": _fill(b"{" + b",".join(b'"k%d":0' % i for i in range(5000)) + b"}\n", size),
        "whitespace_around": _fill(b" " * 30_000 + b"1" + b" " * 30_000 + b"\n", size),
        "whitespace_only": _fill(b" " * 100 + b"\n", size),
        "extra_data": _fill(b"1 " * 30_000 + b"\n", size),
        "empty_lines": b"\n" * size,
    }


def _length(size: int) -> dict[str, bytes]:
    frame = b"\x00\x00\x00\x3c" + b"p" * 60
    return {
        "benign": _fill(frame, size),
        "zero_length": b"\x00\x00\x00\x00" * (size // 4),
        "one_byte": _fill(b"\x00\x00\x00\x01z", size),
        # One frame of the whole size: its body arrives in the chunks feed_chunk says.
        "one_frame_in_small_chunks": struct.pack(">I", size - 4) + b"b" * (size - 4),
        # A header over the limit, then more bytes: the decoder fails at the header.
        "oversized_header": b"\xff\xff\xff\xff" + b"\x00" * (size - 4),
    }


def _msgpack(size: int) -> dict[str, bytes]:
    def map16(count: int, entry: bytes) -> bytes:
        return b"\xde" + struct.pack(">H", count) + entry * count

    # 64-bit timestamps (ext -1): nanoseconds 999999999 and seconds 2**34 - 1.
    timestamp = b"\xd7\xff" + struct.pack(">Q", (999_999_999 << 34) | (2**34 - 1))
    # 96-bit timestamp with the most negative seconds msgpack allows.
    timestamp96 = b"\xc7\x0c\xff" + struct.pack(">Iq", 999_999_999, -(2**63))
    return {
        "benign": _fill(b"\x82\xa2id\xcd\x30\x39\xa4name\xaaabcdefghij", size),
        "fixint_flood": b"\x00" * size,
        "nil_flood": b"\xc0" * size,
        "empty_arrays": b"\x90" * size,
        "ext_flood": _fill(b"\xd4\x01\x00", size),
        "timestamp_flood": _fill(timestamp, size),
        "timestamp96_extreme": _fill(timestamp96, size),
        "duplicate_keys": _fill(map16(10_000, b"\xa1a\x00"), size),
        "int_keys_rejected": _fill(b"\x81\x01\x00", size),
        "bad_utf8_str": _fill(b"\xa1\xff", size),
        "deep_nesting": b"\x91" * size,
        "deep_nesting_valid": _fill(b"\x91" * 900 + b"\x00", size),  # 900 levels each
        "array16_headers": _fill(b"\xdc\xff\xff", size),
        "nested_map_headers": _fill(b"\xdf\x00\x00\xff\xff", size),
        "malformed": b"\xc1" * size,
        "oversized_bin32": b"\xc6\xff\xff\xff\xff" + b"\x00" * (size - 5),
        "one_bin_in_small_chunks": b"\xc6" + struct.pack(">I", size - 5) + b"b" * (size - 5),
    }


def _bytes(size: int) -> dict[str, bytes]:
    return {
        "benign": b"\x00" * size,
        "one_byte_chunks": b"\x01" * size,
        "chunks_over_limit": b"\x02" * size,
    }


_MAKERS: dict[str, Callable[[int], dict[str, bytes]]] = {
    "lines": _lines,
    "jsonl": _jsonl,
    "length": _length,
    "msgpack": _msgpack,
    "bytes": _bytes,
}


def worst_cases(codec_name: str, size: int) -> dict[str, bytes]:
    """Hostile inputs of about ``size`` bytes for ``codec_name``, and ``"benign"``."""
    return _MAKERS[codec_name](size)


def codec_for(codec_name: str) -> Any:
    """The codec, with the settings the shapes of ``codec_name`` are aimed at."""
    if codec_name == "lines":
        return LinesCodec(max_frame_size=LINES_LIMIT, on_overflow="discard")
    if codec_name == "jsonl":
        return JsonLinesCodec()
    if codec_name == "length":
        return LengthPrefixedCodec()
    if codec_name == "msgpack":
        return MsgpackCodec()
    if codec_name == "bytes":
        return BytesCodec(max_frame_size=1024)
    raise ValueError(f"no worst cases for codec {codec_name!r}")


def feed_chunk(codec_name: str, shape: str) -> int | None:
    """The chunk size a shape is fed in (``None``: the whole input at once)."""
    if shape in ("one_frame_in_small_chunks", "one_bin_in_small_chunks"):
        return 512
    if shape == "one_byte_chunks":
        return 1
    if codec_name == "bytes" and shape == "benign":
        return 4096  # chunks the size of a typical read
    return None


def consume(
    decoder: Any, data: bytes, chunk: int | None = None, retries: int = 1000
) -> tuple[int, int]:
    """Feed ``data`` (in pieces of ``chunk`` bytes), draining ``decoder`` after each.

    Plays the consumer that catches every ``DecodeError``/``FrameTooLarge`` and carries
    on. A decoder that raises the same error object twice is poisoned: the rest of the
    input is dropped and the consumer tries ``retries`` more passes, each of which
    raises. Returns the number of items yielded and of errors caught.
    """
    items = errors = 0
    previous: BaseException | None = None
    poisoned = False
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        try:
            decoder.feed(piece)
        except (DecodeError, FrameTooLarge):
            errors += 1
            poisoned = True
            break
        while True:
            try:
                for _ in decoder:
                    items += 1
                break
            except (DecodeError, FrameTooLarge) as exc:
                errors += 1
                poisoned = exc is previous
                previous = exc
                if poisoned:
                    break
        if poisoned:
            break
    if poisoned:
        for _ in range(retries):
            try:
                for _ in decoder:
                    items += 1
            except (DecodeError, FrameTooLarge):
                errors += 1
    return items, errors

"""Shared drivers for codec tests: whole, byte by byte, at every cut, at random cuts."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from wsframed.codecs import Buffer, Codec


def decode_chunks(codec: Codec[Any], chunks: Iterable[Buffer], *, eof: bool = True) -> list[Any]:
    """Feed ``chunks`` one by one into a fresh decoder, collecting every frame."""
    decoder = codec.decoder()
    items: list[Any] = []
    for chunk in chunks:
        decoder.feed(chunk)
        items.extend(decoder)
    if eof:
        decoder.feed_eof()
    return items


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Cut ``data`` at the sorted offsets ``cuts``."""
    pieces = []
    start = 0
    for cut in sorted(cuts):
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return pieces


def assert_chunk_invariant(
    codec: Codec[Any], data: bytes, expected: list[Any], *, seed: int = 0, rounds: int = 20
) -> None:
    """Decode ``data`` whole, byte by byte, cut once at every offset (short data) and at
    random cut sets, and assert every way gives ``expected``."""
    assert decode_chunks(codec, [data]) == expected
    assert decode_chunks(codec, [data[i : i + 1] for i in range(len(data))]) == expected
    if len(data) <= 512:
        for cut in range(len(data) + 1):
            assert decode_chunks(codec, split_at(data, [cut])) == expected, cut
    rng = random.Random(seed)
    for _ in range(rounds):
        k = rng.randint(1, min(len(data), 64)) if data else 0
        cuts = rng.sample(range(len(data) + 1), k) if data else []
        assert decode_chunks(codec, split_at(data, cuts)) == expected, cuts


def consume_skipping_errors(decoder: Any) -> tuple[list[Any], list[Exception]]:
    """Drain ``decoder`` as a handler that catches each codec error and carries on.

    Stops when the decoder raises the error it raised last (failed for good).
    """
    from wsframed.errors import DecodeError, FrameTooLarge

    items: list[Any] = []
    errors: list[Exception] = []
    while True:
        try:
            items.extend(decoder)
        except (DecodeError, FrameTooLarge) as exc:
            if errors and exc is errors[-1]:
                return items, errors
            errors.append(exc)
            continue
        return items, errors


def traceback_length(exc: BaseException) -> int:
    """How many frames ``exc``'s traceback holds."""
    count = 0
    tb = exc.__traceback__
    while tb is not None:
        count += 1
        tb = tb.tb_next
    return count


def python_lines_run(function: Any) -> int:
    """How many lines of wsframed's codecs run while ``function()`` runs."""
    import sys

    count = 0

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def trace(frame: Any, event: str, arg: Any) -> Any:
        return local if "wsframed/codecs/" in frame.f_code.co_filename else None

    # Put back whatever tracer was there (coverage's, under CI): settrace(None) would
    # switch coverage off for the rest of the run.
    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        function()
    finally:
        sys.settrace(previous)
    return count

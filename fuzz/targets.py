"""Fuzz targets for every wsframed decoder, shared by atheris and by the test-suite.

Each target is a function ``target(data: bytes) -> None`` that must never raise. It
reads the first two bytes of ``data`` as its configuration (which codec variant,
how to cut the rest into chunks) and feeds the rest to a fresh decoder, checking the
contract of :mod:`wsframed.codecs.base` on the way:

1. only the documented exceptions come out: ``DecodeError`` (``IncompleteFrame``
   included) and ``FrameTooLarge``, from iteration; ``feed`` and ``feed_eof`` raise
   nothing but the stored error of a failed decoder, or ``IncompleteFrame``;
2. a decoder that raised the same error object twice is failed for good: ``feed``,
   iteration and ``feed_eof`` all raise that object again;
3. memory stays bounded: after every pass, the bytes the decoder holds are at most
   twice ``max_frame_size`` plus the largest chunk fed (the frame in progress, and
   the line decoders' last batch of lines, kept for error offsets until the next);
4. frames respect ``max_frame_size`` where the frame's size is its wire size (bytes,
   lines, length-prefixed);
5. the frames are the same whatever the chunking: the input decoded whole and in the
   drawn chunks gives the same frames, and fails (or not) the same way.

Any violation raises ``AssertionError`` (or the unexpected exception itself), which
atheris reports as a crash and Hypothesis as a failing example.
"""

# The harness runs under atheris and Hypothesis, not only pytest: it asserts on
# caught exceptions itself.
# ruff: noqa: PT017

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from wsframed.codecs import (
    BytesCodec,
    CborCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame, WsFramedError

__all__ = ["CODECS", "TARGETS", "check", "decode", "held_bytes"]

# Small limits make the fuzzer reach the limit checks; the defaults cover the
# ordinary paths. Every variant of one target is chosen by the first input byte.
CODECS: dict[str, list[Any]] = {
    "bytes": [BytesCodec(max_frame_size=7), BytesCodec()],
    "lines": [
        LinesCodec(max_frame_size=16),
        LinesCodec(None, max_frame_size=16),
        LinesCodec(max_frame_size=16, on_overflow="discard"),
        LinesCodec("latin-1", max_frame_size=0),
        LinesCodec(),
    ],
    "jsonl": [JsonLinesCodec(max_frame_size=32), JsonLinesCodec()],
    "length": [
        LengthPrefixedCodec(max_frame_size=64),
        LengthPrefixedCodec(1, max_frame_size=64),
        LengthPrefixedCodec(2, "little", max_frame_size=64, length_includes_header=True),
        LengthPrefixedCodec(8, max_frame_size=64),
        LengthPrefixedCodec(),
    ],
    "msgpack": [
        MsgpackCodec(max_frame_size=64),
        MsgpackCodec(max_frame_size=64, raw=True, strict_map_key=False, use_list=False),
        MsgpackCodec(),
    ],
    "cbor": [CborCodec(max_frame_size=64, max_depth=8), CborCodec()],
}

# Line-based decoders resynchronise after some errors: iteration may go on after a
# DecodeError (invalid UTF-8 / JSON) or, with on_overflow="discard", FrameTooLarge.
_HEADER_SLACK = 16


def _cuts(data: bytes, seed: int) -> list[bytes]:
    """Cut ``data`` into chunks chosen by ``seed``: whole, bytewise or random sizes."""
    if seed == 0 or not data:
        return [data]
    if seed == 1:
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    chunks = []
    start = 0
    while start < len(data):
        size = rng.choice((1, 2, 3, 5, 8, 13, 64, 1000))
        chunks.append(data[start : start + size])
        start += size
    return chunks


def held_bytes(obj: Any, depth: int = 0) -> int:
    """Bytes held in byte buffers by ``obj`` and the objects it holds, two levels deep.

    Looks at every attribute (``__slots__`` and ``__dict__``), so it keeps working
    when a decoder's internals are renamed.
    """
    if isinstance(obj, bytes | bytearray):
        return len(obj)
    if isinstance(obj, memoryview):
        return obj.nbytes
    if depth > 2:
        return 0
    if isinstance(obj, deque | list | tuple):
        return sum(held_bytes(x, depth + 1) for x in obj)
    total = 0
    names: set[str] = set(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        names.update(getattr(cls, "__slots__", ()))
    if not names or type(obj).__module__.split(".")[0] != "wsframed":
        return 0
    for name in names:
        try:
            value = getattr(obj, name)
        except AttributeError:
            continue
        total += held_bytes(value, depth + 1)
    return total


def _wire_size(frame: Any) -> int | None:
    """The payload size of a frame whose wire size is its own length, else None."""
    if isinstance(frame, bytes):
        return len(frame)
    if isinstance(frame, str):
        return None  # a str line's wire size depends on the encoding; checked as bytes
    return None


def decode(codec: Any, chunks: Iterable[bytes]) -> tuple[list[Any], list[str]]:
    """Decode ``chunks`` with a fresh decoder, checking the contract as it goes.

    Returns the frames (as reprs, so NaN compares equal; for ``BytesCodec``, whose
    frames are the chunks, the bytes joined) and the error events, as ``"TypeName"``
    strings, in order. Raises ``AssertionError`` on a violation.
    """
    decoder = codec.decoder()
    limit: int = codec.max_frame_size
    frames: list[Any] = []
    errors: list[str] = []
    stored: WsFramedError | None = None
    largest = 0
    sized = not isinstance(codec, MsgpackCodec | CborCodec | JsonLinesCodec)
    chunked = isinstance(codec, BytesCodec)  # its frames are the chunks themselves

    def check_failed(exc: WsFramedError) -> None:
        for call in (lambda: decoder.feed(b"\x00"), lambda: list(decoder), decoder.feed_eof):
            try:
                call()
            except WsFramedError as again:
                assert again is exc, f"a failed decoder raised {again!r}, not {exc!r}"
            else:
                raise AssertionError(f"a failed decoder stopped raising {exc!r}")

    for chunk in chunks:
        try:
            decoder.feed(chunk)
        except WsFramedError as exc:
            assert exc is stored, f"feed() raised {exc!r}, which iteration never did"
            check_failed(exc)
            return frames, errors
        while True:
            try:
                for frame in decoder:
                    size = _wire_size(frame) if sized else None
                    assert size is None or size <= limit, f"a {size}-byte frame passed {limit}"
                    frames.append(frame if chunked else repr(frame))
            except (DecodeError, FrameTooLarge) as exc:
                assert not isinstance(exc, IncompleteFrame), "IncompleteFrame before the end"
                if exc is stored:
                    check_failed(exc)
                    return frames, errors
                if isinstance(exc, FrameTooLarge):
                    assert not exc.local, "a received frame reported as local"
                errors.append(type(exc).__name__)
                stored = exc
                continue
            break
        largest = max(largest, len(chunk))
        held = held_bytes(decoder)
        bound = 2 * (limit + largest) + _HEADER_SLACK
        assert held <= bound, f"decoder holds {held} bytes, over {bound}"
    if chunked:
        frames = [b"".join(frames)]
    try:
        decoder.feed_eof()
    except IncompleteFrame:
        errors.append("IncompleteFrame")
    except WsFramedError as exc:
        assert exc is stored, f"feed_eof() raised {exc!r}, which iteration never did"
    return frames, errors


def check(name: str, data: bytes) -> None:
    """Run the ``name`` target on ``data``; raise ``AssertionError`` on a violation."""
    if len(data) < 2:
        return
    variants = CODECS[name]
    codec = variants[data[0] % len(variants)]
    body = data[2:]
    whole = decode(codec, [body])
    cut = decode(codec, _cuts(body, data[1]))
    assert cut[0] == whole[0], f"frames differ by chunking: {cut[0]} != {whole[0]}"
    # The error *type* may legitimately differ when a frame is both malformed and
    # too large (which check fires first depends on what has arrived); whether the
    # stream failed, and where, may not.
    assert bool(cut[1]) == bool(whole[1]), f"errors differ by chunking: {cut[1]} != {whole[1]}"


def _target(name: str) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        check(name, data)

    target.__name__ = f"fuzz_{name}"
    target.__qualname__ = target.__name__
    return target


TARGETS: dict[str, Callable[[bytes], None]] = {name: _target(name) for name in CODECS}
"""One target per decoder, by codec name."""


def main(name: str) -> None:
    """Entry point of ``fuzz/fuzz_<name>.py``: atheris if installed, else Hypothesis.

    With atheris, every command-line argument goes to libFuzzer (``-runs=``,
    ``-max_total_time=``, a corpus directory, ...). Without it, or with
    ``--hypothesis [N]``, the target runs on N Hypothesis examples (default 20000).
    """
    import sys

    target = TARGETS[name]
    argv = sys.argv
    use_hypothesis = "--hypothesis" in argv
    if not use_hypothesis:
        try:
            import atheris  # type: ignore[import-not-found]
        except ImportError:
            print("atheris is not installed; running the Hypothesis loop instead", file=sys.stderr)
            use_hypothesis = True
    if use_hypothesis:
        args = argv[argv.index("--hypothesis") + 1 :] if "--hypothesis" in argv else []
        examples = int(args[0]) if args else 20_000
        run_hypothesis(target, examples)
        return
    # Instrument the Python code already imported (wsframed's codecs; msgpack and
    # cbor2 are compiled, so coverage inside them is not seen).
    atheris.instrument_all()
    atheris.Setup(argv, target)
    atheris.Fuzz()


def run_hypothesis(target: Callable[[bytes], None], examples: int) -> None:
    """Drive ``target`` with ``examples`` Hypothesis-generated inputs."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.binary(min_size=2, max_size=4096))
    def run(data: bytes) -> None:
        target(data)

    run()
    print(f"{target.__name__}: {examples} Hypothesis examples passed")

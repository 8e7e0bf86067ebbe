"""JsonLinesDecoder's fast parser against ``json`` alone: the same values and errors.

The default decoder tries msgspec first on each line; ``parser="json"`` parses each
line with ``json``. For any stream, cut into any feeds and iterated in
passes that may stop part-way, both must yield the same values (same types, same
key order) and raise the same errors (type, message, offset), and fail at the same
point. The lines are drawn from what tells the parsers apart: big integers, NaN and
Infinity, duplicate keys, lone surrogate escapes, whitespace json and msgspec treat
differently, blank lines, ``\\r\\n`` terminators, deep nesting, bad UTF-8, overlong lines
and enough bad lines to exhaust the budget.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wsframed.codecs.jsonl import JsonLinesCodec, JsonLinesDecoder
from wsframed.errors import DecodeError, FrameTooLarge

LIMIT = 4096  # max_frame_size of both codecs: "[" * 1200 fits, some lines do not

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**19, max_value=10**30)  # past msgspec's int range
    | st.floats()
    | st.text(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def _good(draw: st.DrawFn) -> bytes:
    """A line both parsers accept (or json alone: NaN, big ints), in some spelling."""
    value = draw(_values)
    compact = draw(st.booleans())
    text = json.dumps(
        value,
        ensure_ascii=draw(st.booleans()),
        separators=(",", ":") if compact else (", ", ": "),
    )
    pad = st.sampled_from(["", " ", "\t", "\r", "  "])
    return (draw(pad) + text + draw(pad)).encode()


_SPECIAL = [
    b'{"a":1,"a":2}',  # duplicate keys: the last one wins
    b'{"a":1,"b":2,"a":3}',
    b"12345678901234567890123",  # 20+ digits
    b"-99999999999999999999",
    b"1e400",
    b"NaN",
    b"[Infinity,-Infinity]",
    b'"\\ud800"',  # a lone surrogate escape
    b'["\\udc00x"]',
    b'"\\u0000"',
    b"1.0",
    b"-0",
    b"-0.0",
    b"0.1e1",
    b"1E5",
    b'"\\/"',
]
_BAD = [
    b"{",
    b"tru",
    b"1 2",
    b"[1,",
    b"]",
    b"x",
    b"1\x0c",  # form feed: not JSON whitespace
    b"\x0c1",
    b"1\x0b",
    b"\xc2\xa01",  # no-break space before a value
    b'"a\tb"',  # a raw control character in a string
    b"'a'",
    b"[1,]",
    b"01",
    b"\\",
]
_BLANK = [b"", b" ", b"\t", b"\r", b"\xc2\xa0", b"\xe2\x80\x83", b"\x0c"]
_BAD_UTF8 = [b"\xff", b'"\xc3"', b"1\xed\xa0\x80", b"[\x80]"]


@st.composite
def _deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([5, 200, 300, 900, 1200]))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"k":', b"}")]))
    closed = draw(st.booleans())
    return opener * depth + b"1" + (closer * depth if closed else b"")


_line = st.one_of(
    _good(),
    _good(),
    st.sampled_from(_SPECIAL),
    st.sampled_from(_BAD),
    st.sampled_from(_BLANK),
    st.sampled_from(_BAD_UTF8),
    _deep(),
    st.integers(LIMIT - 2, LIMIT + 3).map(lambda n: b"[" + b"1," * (n // 2 - 1) + b"1]"),
)


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[int], list[int]]:
    """A stream of lines, where to cut it into feeds, and when passes stop early."""
    lines = draw(st.lists(_line, max_size=40))
    ends = st.sampled_from([b"\n", b"\r\n"])
    blob = b"".join(line + draw(ends) for line in lines)
    if draw(st.booleans()):
        blob += draw(st.sampled_from([b"", b"1", b'{"a"']))  # an unterminated line
    cuts = sorted(draw(st.lists(st.integers(0, len(blob)), max_size=8)))
    stops = draw(st.lists(st.integers(0, 5), max_size=6))  # values taken before a break
    return blob, cuts, stops


def _show(value: Any) -> str:
    """``value`` with its types: ``repr`` tells 1, 1.0 and True apart, and nan."""
    return repr(value)


def _run(decoder: JsonLinesDecoder, blob: bytes, cuts: list[int], stops: list[int]) -> list[Any]:
    """Feed ``blob`` cut at ``cuts``; iterate after each feed, stopping passes per ``stops``.

    Returns the values (as ``_show``) and errors (type, message, offset) in order.
    """
    events: list[Any] = []
    stops = list(stops)
    bounds = [0, *cuts, len(blob)]
    for start, end in itertools.pairwise(bounds):
        try:
            decoder.feed(blob[start:end])
        except (DecodeError, FrameTooLarge) as exc:
            events.append(("feed", type(exc).__name__, str(exc), exc.offset))
            return events
        last: Exception | None = None
        while True:
            try:
                stop = stops.pop(0) if stops else None
                for taken, value in enumerate(decoder, 1):
                    events.append(_show(value))
                    if taken == stop:
                        break
                else:
                    break
                events.append("break")
            except (DecodeError, FrameTooLarge) as exc:
                events.append((type(exc).__name__, str(exc), exc.offset))
                if exc is last:  # failed for good: the same error again
                    return events
                last = exc
    try:
        decoder.feed_eof()
    except Exception as exc:  # IncompleteFrame, or the stored error
        events.append(("eof", type(exc).__name__, str(exc)))
    return events


@settings(max_examples=300, deadline=None)
@given(_streams())
def test_the_fast_parser_gives_json_s_values_and_errors(
    stream: tuple[bytes, list[int], list[int]],
) -> None:
    blob, cuts, stops = stream
    fast = _run(JsonLinesCodec(LIMIT).decoder(), blob, cuts, stops)
    alone = _run(JsonLinesCodec(LIMIT, parser="json").decoder(), blob, cuts, stops)
    assert fast == alone


def test_runs_of_good_lines_between_bad_ones() -> None:
    # Long runs (several per batch), each cut by a bad line at a different place.
    good = [json.dumps({"id": i, "x": [i, str(i)]}).encode() for i in range(300)]
    lines = list(good)
    for at, bad in [(3, b"{"), (70, b"NaN"), (71, b""), (140, b"\xff"), (200, b"1 2")]:
        lines.insert(at, bad)
    blob = b"\n".join(lines) + b"\n"
    for cuts in ([], [1000], list(range(0, len(blob), 777))):
        for stops in ([], [1, 50, 0, 64, 65, 3]):
            fast = _run(JsonLinesCodec(LIMIT).decoder(), blob, cuts, stops)
            alone = _run(JsonLinesCodec(LIMIT, parser="json").decoder(), blob, cuts, stops)
            assert fast == alone
            values = [event for event in fast if isinstance(event, str) and event != "break"]
            assert len(values) == 301  # the 300 good lines and NaN


def test_the_bad_line_budget_runs_out_at_the_same_line() -> None:
    kinds = [b"{", b"NaN", b"", b"\xff", b"[1]", b"1 2", b" ", b'"\\ud800"', b"[" * 1100]
    blob = b"".join(kinds[i % len(kinds)] + b"\n" for i in range(400))
    for cuts in ([], list(range(0, len(blob), 100))):
        fast = _run(JsonLinesCodec(LIMIT).decoder(), blob, cuts, [2, 1])
        alone = _run(JsonLinesCodec(LIMIT, parser="json").decoder(), blob, cuts, [2, 1])
        assert fast == alone
        assert fast[-1][1].startswith("too many bad lines: 88 by this one")
        assert any("nested too deeply" in event[1] for event in fast if isinstance(event, tuple))

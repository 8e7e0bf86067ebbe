"""The worst cases of tests/codec_worst_cases.py cost linear time (issue 14).

Counted, not timed: the lines of Python that the codecs run while a consumer that
catches every error drains each hostile input, at two sizes. Work in C (copies,
searches) is checked by the codecs' own tests.
"""

from __future__ import annotations

import pytest

from .codec_checks import python_lines_run
from .codec_worst_cases import CODECS, codec_for, consume, feed_chunk, worst_cases

KIB = 1024


def _cost(codec_name: str, shape: str, size: int) -> tuple[float, tuple[int, int]]:
    """Lines of Python run per input byte, and the items and errors counted."""
    data = worst_cases(codec_name, size)[shape]
    decoder = codec_for(codec_name).decoder()
    outcome: list[tuple[int, int]] = []
    steps = python_lines_run(
        lambda: outcome.append(consume(decoder, data, feed_chunk(codec_name, shape), retries=10))
    )
    return steps / len(data), outcome[0]


@pytest.mark.parametrize("codec_name", CODECS)
def test_every_shape_costs_linear_python_work(codec_name: str) -> None:
    for shape in worst_cases(codec_name, 16 * KIB):
        few, few_outcome = _cost(codec_name, shape, 16 * KIB)
        many, many_outcome = _cost(codec_name, shape, 64 * KIB)
        # Four times the input costs four times the work (per byte: the same), give
        # or take a constant cost per input.
        assert many <= 1.05 * few + 0.05, (shape, few, many, few_outcome, many_outcome)


def test_a_line_nested_past_the_parser_is_refused_without_parsing_it() -> None:
    # "[" * 1100 cost the parser ~60-150 us a line to refuse (every level built,
    # then RecursionError); now its brackets are counted and the parser never sees it.
    # Strings do not count, nor do brackets side by side (wide, not deep).
    import json
    import sys

    from wsframed.codecs import JsonLinesCodec
    from wsframed.errors import DecodeError

    from .codec_checks import consume_skipping_errors

    limit = sys.getrecursionlimit()
    deep = "[" * (limit + 100)
    in_string = '["' + "[" * (2 * limit) + '\\\\"]'  # ends with an escaped backslash
    wide = "[" + ",".join(["[1]"] * (2 * limit)) + "]"
    objects = '{"a":' * (limit + 1)
    decoder = JsonLinesCodec(max_frame_size=1 << 20, parser="json").decoder()
    parsed: list[str] = []
    raw_decode = decoder._raw_decode
    assert raw_decode is not None

    def counting(line: str) -> tuple[object, int]:
        parsed.append(line)
        return raw_decode(line)

    decoder._raw_decode = counting
    lines = ["1", deep, in_string, wide, objects, "2"]
    decoder.feed("\n".join([*lines, ""]).encode())
    items, errors = consume_skipping_errors(decoder)
    assert items == [1, json.loads(in_string), json.loads(wide), 2]
    assert parsed == ["1", in_string, wide, "2"]  # the deep lines never reach json
    offsets = [len("\n".join(lines[:k])) + 1 for k in (1, 4)]
    assert [(type(e), e.offset, str(e)) for e in errors] == [  # type: ignore[attr-defined]
        (
            DecodeError,
            offset,
            "line is not valid JSON: nested too deeply for the parser"
            f" (frame starting at stream offset {offset})",
        )
        for offset in offsets
    ]
    assert all(isinstance(e.__cause__, RecursionError) for e in errors)

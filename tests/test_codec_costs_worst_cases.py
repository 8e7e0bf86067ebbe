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


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_batch_of_bad_lines_is_searched_only_as_far_as_the_allowance(
    encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 64 KiB of alternating good and bad lines in one feed: 13,107 bad lines, of
    # which the decoder raises 64 (its allowance at that offset), then "too many bad
    # lines". Each bad line of the batch cost a search (or a failed decode) before:
    # 28 times a benign 64 KiB, to raise 65 errors. Now the search stops at the
    # allowance at the batch's end: 64 + 65,535 // 1024 + 1 = 128 bad lines.
    import wsframed.codecs.lines as lines_module
    from wsframed.codecs import LinesCodec
    from wsframed.errors import DecodeError

    from .codec_checks import consume_skipping_errors

    bad = b"\xff\n" if encoding == "utf-8" else b"\x81\n"  # undefined in cp1252
    data = (b"ok\n" + bad) * (64 * KIB // 5)  # 65,535 bytes, 13,107 bad lines
    searched: list[int] = []
    failed: list[int] = []
    escaped = lines_module._ESCAPED

    class Counting:
        def search(self, text: str, at: int) -> object:
            searched.append(at)
            return escaped.search(text, at)

    monkeypatch.setattr(lines_module, "_ESCAPED", Counting())
    decode_each = lines_module._decode_each

    def counting_decode_each(items: list[object], name: str, most: int) -> object:
        bad_lines = decode_each(items, name, most)
        failed.extend(index for index, _ in bad_lines)
        return bad_lines

    monkeypatch.setattr(lines_module, "_decode_each", counting_decode_each)
    decoder = LinesCodec(max_frame_size=1024, encoding=encoding).decoder()
    decoder.feed(data)
    items, errors = consume_skipping_errors(decoder)
    assert items == ["ok"] * 65
    assert len(errors) == 65
    assert all(type(e) is DecodeError for e in errors)
    assert str(errors[-1]).startswith("too many bad lines: 65 by this one, more than 64")
    if encoding == "utf-8":  # decoded whole, then searched for escapes
        assert (len(searched), failed) == (128, [])  # 13,108 before
    else:  # line by line
        assert (searched, len(failed)) == ([], 128)  # 13,107 before

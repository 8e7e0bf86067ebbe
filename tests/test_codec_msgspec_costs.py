"""The worst cases of tests/msgspec_worst_cases.py cost linear Python work (issues 14, 16).

Counted, not timed, as tests/test_codec_costs_worst_cases.py counts: the lines of Python
run while a consumer that catches every error drains each hostile input, at two sizes.
The work in C (msgspec, msgpack's scanner, dict building) is measured by the
adversarial benchmark; the one superlinear C path found, colliding tuple keys, has its
own test in tests/test_codec_msgspec.py.
"""

from __future__ import annotations

import pytest

from .codec_checks import python_lines_run
from .msgspec_worst_cases import CODECS, codec_for, consume, feed_chunk, worst_cases

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
        assert many <= 1.05 * few + 0.05, (shape, few, many, few_outcome, many_outcome)


def test_a_json_line_nested_past_msgspec_is_refused_without_parsing_it() -> None:
    # As JsonLinesCodec (tests/test_codec_costs_worst_cases.py): msgspec built every
    # level of "[" * 1100 before its RecursionError, ~75-150 us a line. A typed codec
    # is left to msgspec, which may stop at the first level that does not fit.
    import sys
    from typing import Any

    from wsframed.codecs import MsgspecCodec
    from wsframed.errors import DecodeError

    from .codec_checks import consume_skipping_errors
    from .msgspec_worst_cases import Request

    limit = sys.getrecursionlimit()
    deep = b"[" * (limit + 100)
    in_string = b'["' + b"[" * (2 * limit) + b'"]'
    data = b"\n".join([b"1", deep, in_string, b"2", b""])
    decoder = MsgspecCodec(format="json").decoder()
    decoded: list[bytes] = []
    decode = decoder._decode

    def counting(line: bytes) -> Any:
        decoded.append(bytes(line))
        return decode(line)

    decoder._decode = counting
    decoder.feed(data)
    items, errors = consume_skipping_errors(decoder)
    assert items == [1, ["[" * (2 * limit)], 2]
    assert decoded == [b"1", in_string, b"2"]
    assert [(type(e), e.offset, str(e)) for e in errors] == [  # type: ignore[attr-defined]
        (
            DecodeError,
            2,
            "frame nested too deeply for the parser (frame starting at stream offset 2)",
        )
    ]
    assert isinstance(errors[0].__cause__, RecursionError)

    typed = MsgspecCodec(Request, "json").decoder()
    typed.feed(deep + b"\n")
    with pytest.raises(DecodeError, match=r"Expected `object`, got `array`"):
        list(typed)

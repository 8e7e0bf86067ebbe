"""JsonLinesCodec: one JSON value per line, resynchronising after bad lines."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsframed.codecs import jsonl as jsonl_module
from wsframed.codecs import lines as lines_module
from wsframed.codecs.base import Codec
from wsframed.codecs.jsonl import JsonLinesCodec, JsonLinesDecoder
from wsframed.errors import DecodeError, FrameTooLarge, IncompleteFrame

from .codec_checks import (
    assert_chunk_invariant,
    consume_skipping_errors,
    decode_chunks,
    python_lines_run,
    split_at,
)
from .codec_strategies import decode_events, draw_chunks

text = st.text(st.characters(exclude_categories=["Cs"]))  # UTF-8 cannot carry surrogates
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


@pytest.fixture(autouse=True, params=["msgspec", "json"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both paths of the default parser: msgspec first, json alone.

    The values and errors must be the same (see jsonl's "Fast parser"), and so must
    the bytes encoded (msgspec's encoder, checked, or json's).
    """
    if request.param == "json":
        monkeypatch.setattr(jsonl_module, "_msgspec_loads", None)
        monkeypatch.setattr(jsonl_module, "_checked_encoder", None)
    else:
        assert jsonl_module._msgspec_loads is not None
    return str(request.param)


def test_the_fast_parser_is_used_when_installed_or_asked_for(parser: str) -> None:
    fast = jsonl_module._msgspec_loads
    assert JsonLinesCodec().decoder()._fast_loads is fast
    if parser == "json":  # as without msgspec installed
        with pytest.raises(ImportError, match=r"pip install 'wsframed\[msgspec\]'"):
            JsonLinesCodec(parser="msgspec")
    else:
        assert JsonLinesCodec(parser="msgspec").decoder()._fast_loads is fast
    assert JsonLinesCodec(parser="json").decoder()._fast_loads is None
    assert JsonLinesCodec(loads=json.loads).decoder()._fast_loads is None
    with pytest.raises(ValueError, match="parser must be 'auto', 'json' or 'msgspec', not 'x'"):
        JsonLinesCodec(parser="x")  # type: ignore[arg-type]


def test_values_the_fast_parser_refuses_are_json_loads_values() -> None:
    # NaN and infinities, lone surrogates, 1e400, integers of thousands of digits,
    # duplicate keys, -0: what json.loads gives, on both paths.
    lines = [
        "NaN", "-Infinity", '"\\ud800x"', "1e400", "1" * 4000, '{"a":1,"a":2}', "-0",
        "12345678901234567890123", "[1.5e-400, 0.1, 2.5e+16]",
    ]  # fmt: skip
    data = "".join(line + "\n" for line in lines).encode()
    got = decode_chunks(JsonLinesCodec(), [data])
    expected = [json.loads(line) for line in lines]
    assert repr(got) == repr(expected)  # repr: nan != nan, and int vs float shows


def test_defaults() -> None:
    codec: Codec[Any] = JsonLinesCodec()
    assert codec.max_frame_size == 64 * 1024
    assert isinstance(codec.decoder(), JsonLinesDecoder)
    assert repr(JsonLinesCodec(100)) == "JsonLinesCodec(max_frame_size=100)"
    with pytest.raises(AttributeError):
        JsonLinesCodec().max_frame_size = 1  # type: ignore[misc]


def test_encode_golden() -> None:
    codec = JsonLinesCodec()
    assert codec.encode({"id": 1, "tags": ["\u00e9", None]}) == (
        '{"id":1,"tags":["\u00e9",null]}\n'.encode()
    )
    assert codec.encode("line\nbreak") == b'"line\\nbreak"\n'
    assert codec.encode([]) == b"[]\n"


def test_decode_golden_skips_blank_lines() -> None:
    data = b'1\n\n"two"\r\n   \n\r\n{"x":null, "y": [true]}\n'
    assert decode_chunks(JsonLinesCodec(), [data]) == [1, "two", {"x": None, "y": [True]}]


def test_chunk_invariant_short() -> None:
    data = b'{"a":1}\n\n[1,2]\r\n"\xc3\xa9"\n'
    assert_chunk_invariant(JsonLinesCodec(), data, [{"a": 1}, [1, 2], "\u00e9"])


def test_chunk_invariant_long() -> None:
    values: list[Any] = [{"i": i, "s": "x" * (i % 50), "l": [0] * (i % 7)} for i in range(300)]
    values.append("y" * 50_000)
    codec = JsonLinesCodec()
    data = b"".join(codec.encode(value) for value in values)
    assert_chunk_invariant(codec, data, values, rounds=10)


def test_encode_errors() -> None:
    codec = JsonLinesCodec(max_frame_size=8)
    assert codec.encode([1, 2, 3]) == b"[1,2,3]\n"  # 7 bytes
    with pytest.raises(FrameTooLarge) as info:
        codec.encode([1, 2, 3, 4])
    assert (info.value.size, info.value.limit, info.value.local) == (9, 8, True)
    with pytest.raises(TypeError):
        codec.encode({1, 2})
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(ValueError, match=r"[Cc]ircular"):
        codec.encode(circular)
    assert codec.encode("ok") == b'"ok"\n'  # still usable


def test_custom_dumps_and_loads() -> None:
    codec = JsonLinesCodec(dumps=lambda v: json.dumps(v).encode(), loads=lambda s: ("L", s))
    assert codec.encode({"a": 1}) == b'{"a": 1}\n'
    assert decode_chunks(codec, [b"anything\n"]) == [("L", "anything")]
    with pytest.raises(ValueError, match="must not contain"):
        JsonLinesCodec(dumps=lambda v: "1\n2").encode(None)
    with pytest.raises(ValueError, match="must not contain"):
        JsonLinesCodec(dumps=lambda v: b"1\n2").encode(None)
    with pytest.raises(FrameTooLarge):
        JsonLinesCodec(4, dumps=lambda v: b"12345").encode(None)


def test_invalid_json_is_a_decode_error_and_decoding_continues() -> None:
    decoder = JsonLinesCodec().decoder()
    decoder.feed(b'1\n{"broken": \r\n2\n')
    items: list[Any] = []
    with pytest.raises(DecodeError) as info:
        items.extend(decoder)
    assert items == [1]
    assert isinstance(info.value.__cause__, json.JSONDecodeError)
    assert info.value.offset == 2
    assert list(decoder) == [2]
    decoder.feed_eof()


def test_decode_error_offsets_are_exact_and_chunk_invariant() -> None:
    data = '[1]\r\n"\u00e9"\nnope\r\n\n\u00e9\n\xff\n'.encode() + b"\xff\n7\n"
    expected = [
        [1],
        "\u00e9",
        ("error", "DecodeError", 10),  # nope
        ("error", "DecodeError", 17),  # a bare é (two bytes)
        ("error", "DecodeError", 20),  # ÿ encoded in UTF-8
        ("error", "DecodeError", 23),  # invalid UTF-8
        7,
    ]
    for i in range(len(data) + 1):
        assert decode_events(JsonLinesCodec(), split_at(data, [i])) == expected


def test_invalid_utf8_is_a_decode_error_with_its_cause() -> None:
    decoder = JsonLinesCodec().decoder()
    decoder.feed(b'"\xff"\n3\n')
    with pytest.raises(DecodeError) as info:
        list(decoder)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
    assert list(decoder) == [3]


def test_nesting_too_deep_for_the_parser_is_a_decode_error() -> None:
    decoder = JsonLinesCodec(max_frame_size=200_000).decoder()
    decoder.feed(b"[" * 100_000 + b"]" * 100_000 + b"\n1\n")
    with pytest.raises(DecodeError) as info:
        list(decoder)
    assert isinstance(info.value.__cause__, RecursionError)
    assert list(decoder) == [1]


def test_too_large_on_decode_fails_the_decoder() -> None:
    decoder = JsonLinesCodec(max_frame_size=16).decoder()
    decoder.feed(b"1\n" + b'"' + b"x" * 16)
    items: list[Any] = []
    with pytest.raises(FrameTooLarge) as info:
        items.extend(decoder)
    assert items == [1]
    assert info.value.at_least
    with pytest.raises(FrameTooLarge) as again:
        decoder.feed(b'"\n')
    assert again.value is info.value


def test_memory_is_bounded_by_the_limit() -> None:
    decoder = JsonLinesCodec().decoder()
    chunk = b"[" + b"1," * 32 * 1024
    peak = 0
    errors = 0
    for _ in range(160):  # 10 MiB of a line that never ends
        try:
            decoder.feed(chunk)
            peak = max(peak, len(decoder._lines._buf))
            list(decoder)
        except FrameTooLarge:
            errors += 1
            break
    assert errors == 1
    assert peak <= 64 * 1024 + len(chunk)


def test_feed_eof() -> None:
    decoder = JsonLinesCodec().decoder()
    decoder.feed(b'{"a": 1}\n{"b"')
    assert list(decoder) == [{"a": 1}]
    with pytest.raises(IncompleteFrame) as info:
        decoder.feed_eof()
    assert (info.value.pending, info.value.offset) == (4, 9)
    decoder = JsonLinesCodec().decoder()
    decoder.feed(b'{"a": 1}\n')
    assert list(decoder) == [{"a": 1}]
    decoder.feed_eof()


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, max_size=8), st.data())
def test_round_trip(values: list[Any], data: st.DataObject) -> None:
    codec = JsonLinesCodec()
    blob = b"".join(codec.encode(value) for value in values)
    assert decode_chunks(codec, [blob]) == values
    assert decode_events(codec, draw_chunks(data, blob)) == values


noisy = st.lists(
    st.sampled_from(
        [b"\n", b"\r\n", b"{", b"}", b"[", b"]", b'"', b"1", b",", b":", b"\xff", b" "]
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=80), noisy), st.integers(0, 12), st.data())
def test_arbitrary_bytes_raise_only_codec_errors_and_are_chunk_invariant(
    blob: bytes, limit: int, data: st.DataObject
) -> None:
    codec = JsonLinesCodec(limit)
    whole = decode_events(codec, [blob])
    assert decode_events(codec, draw_chunks(data, blob)) == whole
    assert decode_events(codec, [blob[i : i + 1] for i in range(len(blob))]) == whole


def test_default_dumps_fast_path_gives_what_json_dumps_gives() -> None:
    codec = JsonLinesCodec()
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for value in (1, 1.5, float("nan"), "é\u2028\n\r\t\x00", [None, True], {"z": 1, "a": 2}):
        assert codec.encode(value) == dumps(value).encode() + b"\n"
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference detected"):
        codec.encode(cycle)
    with pytest.raises(TypeError, match="not JSON serializable"):
        codec.encode({"a": object()})
    with pytest.raises(UnicodeEncodeError):
        codec.encode("\ud800")


_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# Values whose JSON differs between libraries (floats, NaN, big integers, keys that
# json converts, escapes) and strings that look like encode_many's markers.
ENCODE_CORPUS: list[Any] = [
    {"id": 1, "method": "add", "params": [1, 2], "note": "x" * 40},
    "é ☃ 𝄞 \u2028\u2029\x7f",
    "".join(map(chr, range(32))),
    [1.0, -0.0, 0.1, 1e-05, 1e-4, 1e16, 1e15, 1.5e300, 5e-324, 123456789012345678.0],
    [float("nan"), float("inf"), -float("inf")],
    [2**63, 2**64, -(2**63) - 1, 10**4000, -(10**300)],
    {2: "int key", 1.5: "float key", True: "true", None: "null", "k": {"n": [[], {}, [[[]]]]}},
    (1, ("tuple", [2])),
    "\x00",
    ["a\x00b", {"\x00": 0}],
    ["a", "\x00", "b"],  # holds the marker between two items
    "\\u0000",
    ',"\\u0000",',
    [",", '","', "]", "["],
    "",
    None,
    True,
]


def test_encode_many_gives_the_bytes_of_encode_for_a_corpus() -> None:
    """The batch is json's bytes, whatever the values (markers in strings included)."""
    codec = JsonLinesCodec()
    expected = [(_compact(value) + "\n").encode() for value in ENCODE_CORPUS]
    assert [codec.encode(value) for value in ENCODE_CORPUS] == expected
    assert codec.encode_many(ENCODE_CORPUS) == b"".join(expected)
    for size in (1, 2, 3, 5):
        for start in range(len(ENCODE_CORPUS) - size + 1):
            part = ENCODE_CORPUS[start : start + size]
            assert codec.encode_many(part) == b"".join(expected[start : start + size])
    assert codec.encode_many(tuple(ENCODE_CORPUS)) == b"".join(expected)
    assert codec.encode_many([]) == b""


class _Color(enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


class _Name(enum.StrEnum):
    ADA = "ada"


class _Text(str):
    pass


class _Number(int):
    pass


@dataclasses.dataclass
class _Point:
    x: int


class _Struct(msgspec.Struct):
    x: int


# Values json refuses, every one of which msgspec encodes or refuses differently.
UNENCODABLE: list[Any] = [
    {1, 2},
    frozenset([1]),
    b"bytes",
    bytearray(b"x"),
    {"k": b"bytes"},
    object(),
    _Color.RED,
    _Point(1),
    _Struct(1),
    datetime.date(2026, 12, 3),
    datetime.datetime(2026, 12, 3, 14, 0),
    uuid.UUID(int=7),
    decimal.Decimal("1.5"),
    msgspec.Raw(b"1"),
    {(1, 2): "tuple key"},
    10**5000,
    "\ud800",
    {"a": "\udfff"},
]


def test_encode_gives_json_s_bytes_for_subclasses_and_enums() -> None:
    codec = JsonLinesCodec()
    for value in (
        [_Level.HIGH, _Name.ADA, _Text("t"), _Number(5), collections.OrderedDict(b=1, a=2)],
        {_Name.ADA: 1, _Level.HIGH: 2},
        collections.Counter("aab"),
    ):
        assert codec.encode(value) == (_compact(value) + "\n").encode()
        assert codec.encode_many([value, value]) == 2 * (_compact(value) + "\n").encode()


@given(st.lists(st.floats(), max_size=8))
@settings(max_examples=300, deadline=None)
def test_floats_are_encoded_as_json_writes_them(values: list[float]) -> None:
    codec = JsonLinesCodec()
    assert codec.encode(values) == (_compact(values) + "\n").encode()
    assert codec.encode_many(values) == "".join(_compact(v) + "\n" for v in values).encode()


def test_every_code_point_is_encoded_as_json_writes_it() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    codec = JsonLinesCodec(max_frame_size=8 * 1024 * 1024)
    assert codec.encode(text) == (_compact(text) + "\n").encode()


def test_msgspec_encodes_unless_turned_off(parser: str) -> None:
    checked = jsonl_module._checked_encoder
    assert (checked is None) == (parser == "json")
    assert JsonLinesCodec()._checked is checked
    assert JsonLinesCodec(parser="json")._checked is None
    assert JsonLinesCodec(dumps=json.dumps)._checked is None


def test_a_dict_subclass_whose_items_differ_from_its_contents(parser: str) -> None:
    """The one documented difference: msgspec writes a dict's contents, json its items()."""

    class Redacted(dict[str, Any]):
        def items(self) -> Any:
            return [(key, "***") for key in self]

    value = Redacted(password="secret")
    expected = b'{"password":"secret"}\n' if parser == "msgspec" else b'{"password":"***"}\n'
    assert JsonLinesCodec().encode(value) == expected
    assert JsonLinesCodec(parser="json").encode(value) == b'{"password":"***"}\n'


def test_encode_many_raises_what_encode_raises_for_the_first_item_refused() -> None:
    codec = JsonLinesCodec()
    cycle: list[Any] = []
    cycle.append(cycle)
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    for bad in [*UNENCODABLE, cycle, deep]:
        with pytest.raises((TypeError, ValueError, RecursionError)) as alone:
            codec.encode(bad)
        with pytest.raises(type(alone.value)) as many:
            codec.encode_many([{"ok": 1}, "\x00", bad, {"never": "reached"}])
        assert str(many.value) == str(alone.value)
        with pytest.raises(type(alone.value)) as plain:
            JsonLinesCodec(parser="json").encode(bad)
        assert str(plain.value) == str(alone.value)


def test_encode_many_checks_each_line_against_the_limit() -> None:
    codec = JsonLinesCodec(max_frame_size=10)
    # Lines of 10 bytes: 33 bytes in all, each one within the limit.
    assert codec.encode_many(["12345678", [123, 5678], 1234567890]) == (
        b'"12345678"\n[123,5678]\n1234567890\n'
    )
    with pytest.raises(FrameTooLarge) as info:
        codec.encode_many(["12345678", "é" * 5, "never reached"])
    assert (info.value.size, info.value.limit, info.value.local) == (12, 10, True)


def test_default_loads_fast_path_leaves_whitespace_and_errors_to_json() -> None:
    decoder = JsonLinesCodec().decoder()
    decoder.feed(b'1\n 2\n3 \n1,2\n{"a":[1,2]}\n')
    items: list[Any] = []
    with pytest.raises(DecodeError, match="Extra data"):
        items.extend(decoder)
    items.extend(decoder)
    assert items == [1, 2, 3, {"a": [1, 2]}]


# -- error paths: linear cost, exact offsets, nothing but DecodeError (issue 14) -------


def test_skipping_64k_of_alternating_bad_lines_costs_linear_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lines_module, "_BAD_LINES_BURST", 10**9)  # no rate limit here
    data = bytearray()
    good: list[Any] = []
    bad: list[int] = []
    n = 0
    while len(data) < 64 * 1024:
        good.append({"n": n})
        data += b'{"n":%d}\n' % n
        bad.append(len(data))
        data += b'{"n":%d,\n' % n
        n += 1
    decoder = JsonLinesCodec().decoder()
    decoder.feed(data)
    result: list[Any] = []
    steps = python_lines_run(lambda: result.extend(consume_skipping_errors(decoder)))
    items, errors = result
    assert items == good
    assert [type(e) for e in errors] == [DecodeError] * len(bad)
    assert [e.offset for e in errors] == bad
    assert str(errors[0]) == (
        "line is not valid JSON: Expecting property name enclosed in double quotes:"
        f" line 1 column 8 (char 7) (frame starting at stream offset {bad[0]})"
    )
    # The Python work per line is bounded (about 21 lines of Python run per input
    # line): the old decoder walked every earlier line of the batch to find the offset
    # of each bad one (about 3,100 per input line here, 19 million in all).
    assert steps < 40 * 2 * n
    decoder.feed_eof()


def test_too_deep_a_value_is_a_decode_error_with_its_offset() -> None:
    decoder = JsonLinesCodec().decoder()
    deep = b"[" * 5000 + b"]" * 5000
    decoder.feed(b"1\n" + deep + b"\n" + b'{"a":' * 5000 + b"\n2\n")
    items, errors = consume_skipping_errors(decoder)
    assert items == [1, 2]
    assert [(type(e), e.offset) for e in errors] == [  # type: ignore[attr-defined]
        (DecodeError, 2),
        (DecodeError, 10_003),
    ]
    assert all(isinstance(e.__cause__, RecursionError) for e in errors)
    assert str(errors[0]) == (
        "line is not valid JSON: nested too deeply for the parser"
        " (frame starting at stream offset 2)"
    )


def test_integers_over_the_digit_limit_are_a_decode_error() -> None:
    decoder = JsonLinesCodec().decoder()
    decoder.feed(b"1\n" + b"9" * 4301 + b"\n[" + b"8" * 60_000 + b"]\n" + b"9" * 4300 + b"\n")
    items, errors = consume_skipping_errors(decoder)
    assert items == [1, int("9" * 4300)]
    assert [(type(e), e.offset) for e in errors] == [  # type: ignore[attr-defined]
        (DecodeError, 2),
        (DecodeError, 4304),
    ]
    assert all(type(e.__cause__) is ValueError for e in errors)
    assert "4300 digits" in str(errors[0])


def test_hostile_but_valid_values_decode_as_json_does() -> None:
    lines = [
        b'"' + b"\\u00e9\\n\\ud83d\\ude00" * 2000 + b'"',
        b"{" + b'"a":0,' * 5000 + b'"a":1}',
        b"1." + b"3" * 20_000 + b"e-5",
        b"1e" + b"9" * 20_000,
        b" " * 20_000 + b"[]" + b" " * 20_000,
        b"[" * 900 + b"]" * 900,
    ]
    decoder = JsonLinesCodec().decoder()
    decoder.feed(b"\n".join(lines) + b"\n")
    assert list(decoder) == [json.loads(line) for line in lines]


def test_a_custom_parsers_long_message_is_cut() -> None:
    def loads(text: str) -> Any:
        raise ValueError("bad: " + text)

    decoder = JsonLinesCodec(loads=loads).decoder()
    decoder.feed(b"x" * 1000 + b"\n")
    with pytest.raises(DecodeError) as info:
        list(decoder)
    reason = "bad: " + "x" * 195
    assert str(info.value) == (
        f"line is not valid JSON: {reason}... (frame starting at stream offset 0)"
    )


def test_lines_of_any_unicode_whitespace_are_skipped() -> None:
    decoder = JsonLinesCodec().decoder()
    decoder.feed(" \t\n1\n\x0c\n\u3000\u2028\n \u00a0 \n2\n".encode())
    assert list(decoder) == [1, 2]
    decoder.feed_eof()


def test_bad_json_lines_past_the_tolerated_rate_fail_the_decoder() -> None:
    # JSON Lines counts its own bad lines with the line decoder's: 64, plus one per
    # KiB of stream before the bad line.
    data = b'{"n":\n1\n' * 200
    decoder = JsonLinesCodec().decoder()
    decoder.feed(data)
    items, errors = consume_skipping_errors(decoder)
    assert items == [1] * 64
    assert len(errors) == 65
    assert str(errors[-1]) == (
        "too many bad lines: 65 by this one, more than 64 plus one per 1024 bytes of"
        " stream; the peer is not speaking this protocol (frame starting at stream"
        f" offset {64 * 8})"
    )
    assert type(errors[-1].__cause__) is DecodeError
    assert errors[-1].__cause__.offset == 64 * 8  # type: ignore[attr-defined]
    with pytest.raises(DecodeError) as again:
        list(decoder)
    assert again.value is errors[-1]


def test_lines_with_many_brackets_skip_the_fast_parser() -> None:
    """Such a line may nest deeply: msgspec failing there would cost a second parse."""
    tried: list[str] = []

    def fast(line: str) -> Any:
        tried.append(line)
        return json.loads(line)

    shallow = "[" + ",".join(["[1]"] * 255) + "]"  # 256 brackets: msgspec may take it
    wide = "[" + ",".join(["[1]"] * 256) + "]"  # 257
    deep = "[" * 1100 + "]" * 1100
    decoder = JsonLinesDecoder(fast_loads=fast)
    decoder.feed(f"{shallow}\n{wide}\n{deep}\n".encode())
    items: list[Any] = []
    with pytest.raises(DecodeError, match="nested too deeply for the parser"):
        items.extend(decoder)
    assert items == [json.loads(shallow), json.loads(wide)]
    assert tried == [shallow]

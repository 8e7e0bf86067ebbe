"""Codecs by name, and frames as one line of text: what ``serve`` and ``connect`` print.

A received frame is shown on one line,

- ``lines``: the text of the line, as received;
- ``bytes``, ``length``: a Python bytes literal, for example ``b'hello\\n'``;
- ``msgpack``, ``cbor``, ``jsonl``: compact JSON (:func:`json_text`). What JSON cannot
  write is shown as a one-key object: a byte string as ``{"$bytes":"<hex>"}``; NaN and
  the infinities as ``{"$float":"NaN"}``, ``"Infinity"``, ``"-Infinity"``; an integer of
  more than 14,000 bits (JSON allows it, but writing it in decimal costs time quadratic
  in its length) as ``{"$int":"0x<hex>"}``; a set as ``{"$set":[...]}``; a CBOR tag the
  codec left as a tag as ``{"$tag":N,"value":...}``; a msgpack extension type as
  ``{"$ext":N,"data":"<hex>"}``. A map key that is a number, ``true``, ``false`` or
  ``null`` is written as its JSON text, a byte string key as its hex; a map with any
  other key (an array, a map) is written as ``{"$map":[[key,value],...]}``. Anything
  else (a datetime, a Decimal, a msgpack Timestamp) is the string of its ``repr``.

:func:`parse_input_line` turns a line of ``connect``'s input into the item it sends;
for msgpack and CBOR it reads ``$bytes``, ``$float`` and ``$int`` back, so printed
frames can be sent again as they are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from cbor2 import CBORTag
from msgpack import ExtType  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from ..codecs.base import Codec

__all__ = ["CODECS", "SKIP", "format_frame", "json_text", "make_codec", "parse_input_line"]

CODECS = ("bytes", "lines", "length", "msgpack", "cbor", "jsonl")
"""The ``--codec`` choices of ``serve`` and ``connect``."""

_STRUCTURED = frozenset({"msgpack", "cbor", "jsonl"})

SKIP: Any = object()
"""What :func:`parse_input_line` returns for a line that sends nothing (a blank line
under a JSON codec, an empty read under ``bytes``)."""


# Codecs and frame formatting ---------------------------------------------------


def make_codec(name: str, max_frame_size: int | None = None) -> Codec[Any]:
    """Return the codec named ``name`` (one of :data:`CODECS`), with its default limit
    unless ``max_frame_size`` is given."""
    from .. import codecs

    options: dict[str, Any] = {}
    if max_frame_size is not None:
        options["max_frame_size"] = max_frame_size
    factories: dict[str, Callable[..., Codec[Any]]] = {
        "bytes": codecs.BytesCodec,
        "lines": codecs.LinesCodec,
        "length": codecs.LengthPrefixedCodec,
        "msgpack": codecs.MsgpackCodec,
        "cbor": codecs.CborCodec,
        "jsonl": codecs.JsonLinesCodec,
    }
    try:
        factory = factories[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; choose from {', '.join(CODECS)}") from None
    return factory(**options)


# Frames as JSON text. The printer walks the item with an explicit stack (no recursion,
# so any nesting the codec accepted prints) and does a bounded amount of work per
# element: integers are written in decimal only up to _MAX_DECIMAL_BITS (decimal
# conversion is quadratic; CPython refuses it past 4,300 digits), larger ones in hex,
# which is linear. Nothing is looked up in the item twice.

_MAX_DECIMAL_BITS = 14_000
"""Integers of more bits than this (about 4,200 digits) print as ``{"$int": "0x..."}``."""

_FLOAT_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class _Raw(str):
    """Text the printer emits as it is (punctuation, an encoded key)."""

    __slots__ = ()


_COMMA = _Raw(",")
_END_ARRAY = _Raw("]")
_END_OBJECT = _Raw("}")
_END_MAP = _Raw("]}")


def _int_text(value: int) -> str:
    if value.bit_length() <= _MAX_DECIMAL_BITS:
        return int.__repr__(value)
    return f'{{"$int":"{hex(value)}"}}'


def _float_name(value: float) -> str:
    """JavaScript's name for a float JSON cannot write: NaN, Infinity, -Infinity."""
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def _float_text(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    return f'{{"$float":"{_float_name(value)}"}}'


def _key_text(key: Any) -> str | None:
    """A map key as JSON object key text (with its colon), or None if it is a container."""
    if isinstance(key, str):
        text = key
    elif key is None:
        text = "null"
    elif isinstance(key, bool):
        text = "true" if key else "false"
    elif isinstance(key, int):
        text = int.__repr__(key) if key.bit_length() <= _MAX_DECIMAL_BITS else hex(key)
    elif isinstance(key, float):
        text = float.__repr__(key) if math.isfinite(key) else _float_name(key)
    elif isinstance(key, bytes | bytearray | memoryview):
        text = bytes(key).hex()
    else:
        return None
    return encode_basestring(text) + ":"


def json_text(value: Any) -> str:
    """Return ``value`` as one line of compact JSON (see the module documentation).

    Costs time linear in the size of ``value`` whatever its shape, and no recursion.
    Raises whatever ``repr()`` raises for a value shown as its ``repr``.
    """
    out: list[str] = []
    stack: list[Any] = [value]
    push, pop, emit = stack.append, stack.pop, out.append
    while stack:
        item = pop()
        if type(item) is _Raw:
            emit(item)
        elif isinstance(item, str):
            emit(encode_basestring(item))
        elif item is None:
            emit("null")
        elif isinstance(item, bool):
            emit("true" if item else "false")
        elif isinstance(item, int):
            emit(_int_text(item))
        elif isinstance(item, float):
            emit(_float_text(item))
        elif isinstance(item, bytes | bytearray | memoryview):
            emit(f'{{"$bytes":"{bytes(item).hex()}"}}')
        elif isinstance(item, ExtType):  # a tuple: before the arrays
            emit(f'{{"$ext":{item.code},"data":"{bytes(item.data).hex()}"}}')
        elif isinstance(item, list | tuple):
            _push_array(item, emit, push)
        elif isinstance(item, Mapping):
            entries = list(item.items())
            keys = [_key_text(key) for key, _ in entries]
            if None in keys:  # a key that is a container: a list of pairs
                emit('{"$map":')
                push(_END_OBJECT)
                _push_array(entries, emit, push)
                continue
            emit("{")
            push(_END_OBJECT)
            for index in range(len(entries) - 1, -1, -1):
                push(entries[index][1])
                push(_Raw(keys[index]))
                if index:
                    push(_COMMA)
        elif isinstance(item, set | frozenset):
            emit('{"$set":')
            push(_END_OBJECT)
            _push_array(list(item), emit, push)
        elif isinstance(item, CBORTag):
            emit(f'{{"$tag":{int(item.tag)},"value":')
            push(_END_OBJECT)
            push(item.value)
        else:
            emit(encode_basestring(repr(item)))
    return "".join(out)


def _push_array(
    items: Sequence[Any], emit: Callable[[str], None], push: Callable[[Any], None]
) -> None:
    emit("[")
    push(_END_ARRAY)
    for index in range(len(items) - 1, -1, -1):
        push(items[index])
        if index:
            push(_COMMA)


def _object_hook(value: dict[str, Any]) -> Any:
    """Turn ``{"$bytes": hex}``, ``{"$float": name}`` and ``{"$int": hex}`` back."""
    if len(value) != 1:
        return value
    [(key, text)] = value.items()
    if not isinstance(text, str):
        return value
    if key == "$bytes":
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise ValueError('a {"$bytes": ...} value is not valid hex') from None
    if key == "$float":
        try:
            return _FLOAT_NAMES[text]
        except KeyError:
            raise ValueError(
                'a {"$float": ...} value must be "NaN", "Infinity" or "-Infinity"'
            ) from None
    if key == "$int":
        try:
            return int(text, 16)
        except ValueError:
            raise ValueError('a {"$int": ...} value is not a hex integer ("0x...")') from None
    return value


def format_frame(codec: str, item: Any) -> str:
    """Return the one-line text ``serve`` and ``connect`` print for a received frame.

    Raises an exception for a frame it cannot show: ``serve`` and ``connect`` report
    it on stderr and go on.
    """
    if codec in _STRUCTURED:
        text = json_text(item)
        if not text.isascii():
            # A lone surrogate (JSON's "\ud800") cannot be written as UTF-8: escape it
            # as JSON does, so that the line stays valid JSON.
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        return text
    if isinstance(item, str):
        return item
    return repr(bytes(item))


def parse_input_line(codec: str, line: bytes) -> Any:
    """Return the item ``connect`` sends for one line of input (with its terminator).

    ``bytes`` sends the line as read, newline included (a raw byte stream, as netcat
    does); ``length`` the line without its terminator; ``lines`` its text; ``msgpack``,
    ``cbor`` and ``jsonl`` parse it as JSON (a blank line gives :data:`SKIP`) and, except for
    ``jsonl``, turn ``{"$bytes": "<hex>"}`` into bytes, ``{"$float": "NaN"}`` (or
    ``"Infinity"``, ``"-Infinity"``) into a float and ``{"$int": "0x<hex>"}`` into an int.
    Raises ``ValueError`` with a message saying what is wrong with the line.
    """
    if codec == "bytes":
        return line if line else SKIP
    stripped = line.removesuffix(b"\n").removesuffix(b"\r")
    if codec == "length":
        return stripped
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if codec == "lines":
        return text
    if not text.strip():
        return SKIP
    try:
        return json.loads(text, object_hook=None if codec == "jsonl" else _object_hook)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("nested too deeply for the JSON parser") from None

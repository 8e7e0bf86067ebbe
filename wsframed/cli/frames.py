"""Codecs by name, and frames as one line of text: what ``serve`` and ``connect`` print.

A received frame is shown on one line,

- ``lines``: the text of the line, as received;
- ``bytes``, ``length``: a Python bytes literal, for example ``b'hello\\n'``;
- ``msgpack``, ``cbor``, ``jsonl``: compact JSON (``json_text``). What JSON cannot
  write is shown as a one-key object: a byte string as ``{"$bytes":"<hex>"}``; NaN and
  the infinities as ``{"$float":"NaN"}``, ``"Infinity"``, ``"-Infinity"``; an integer of
  more than 4,300 digits (JSON allows it, but writing it in decimal costs time quadratic
  in its length, and CPython refuses by default) as ``{"$int":"0x<hex>"}``; a set as
  ``{"$set":[...]}``; a CBOR tag the codec left as a tag as ``{"$tag":N,"value":...}``;
  a msgpack extension type as
  ``{"$ext":N,"data":"<hex>"}``. A map key that is a number, ``true``, ``false`` or
  ``null`` is written as its JSON text, a byte string key as its hex; a map with any
  other key (an array, a map) is written as ``{"$map":[[key,value],...]}``. Anything
  else (a datetime, a Decimal, a msgpack Timestamp) is the string of its ``repr``.

``parse_input_line`` turns a line of ``connect``'s input into the item it sends;
for msgpack and CBOR it reads ``$bytes``, ``$float`` and ``$int`` back, so printed
frames can be sent again as they are.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from cbor2 import CBORSimpleValue, CBORTag, undefined
from msgpack import ExtType, Timestamp  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from ..codecs.base import Codec

__all__ = ["CODECS", "SKIP", "format_frame", "json_text", "make_codec", "parse_input_line"]

CODECS = ("bytes", "lines", "length", "msgpack", "cbor", "jsonl")
"""The ``--codec`` choices of ``serve`` and ``connect``."""

_STRUCTURED = frozenset({"msgpack", "cbor", "jsonl"})

SKIP: Any = object()
"""What ``parse_input_line`` returns for a line that sends nothing (a blank line
under a JSON codec, an empty read under ``bytes``)."""


# Codecs and frame formatting ---------------------------------------------------


def make_codec(name: str, max_frame_size: int | None = None) -> Codec[Any]:
    """Return the codec named ``name`` (one of ``CODECS``), with its default limit
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


# Frames as JSON text. The printer walks the item with an explicit stack of iterators
# (no recursion, so any nesting the codec accepted prints) and does a bounded amount of
# work per element: integers are written in decimal only up to _MAX_DECIMAL_BITS
# (decimal conversion is quadratic; CPython refuses it past 4,300 digits), larger ones
# in hex, which is linear. Scalars are written by a lookup on their exact type.

_MAX_DIGITS = 4300
"""Integers of more digits than this print as ``{"$int": "0x..."}``: CPython's default
limit for writing an integer in decimal (``sys.get_int_max_str_digits()``)."""
_MAX_DECIMAL_BITS = 14_290  # 2**14290 has 4,302 digits: below, only the count decides

# The fast path: json's C encoder, for a frame made of JSON values only. It agrees with
# the printer below on every frame it takes: it refuses bytes (so msgpack's ExtType,
# a tuple holding bytes, too), NaN and infinities (allow_nan=False), sets, tags and
# any other type (TypeError), nesting deeper than the recursion limit (RecursionError)
# and, while the interpreter's digit limit is at most _MAX_DIGITS, larger integers.
_fast_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode

_FLOAT_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _decimal(value: int) -> str | None:
    """``value`` in decimal if it has at most ``_MAX_DIGITS`` digits (and the
    interpreter's own limit allows it), else None."""
    if value.bit_length() > _MAX_DECIMAL_BITS:
        return None
    try:
        text = int.__repr__(value)
    except ValueError:  # the interpreter's limit is lower than ours
        return None
    return text if len(text) - (value < 0) <= _MAX_DIGITS else None


def _int_text(value: int) -> str:
    text = _decimal(value)
    return text if text is not None else f'{{"$int":"{hex(value)}"}}'


def _float_name(value: float) -> str:
    """JavaScript's name for a float JSON cannot write: NaN, Infinity, -Infinity."""
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def _float_text(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    return f'{{"$float":"{_float_name(value)}"}}'


def _bytes_text(value: bytes | bytearray | memoryview) -> str:
    return f'{{"$bytes":"{bytes(value).hex()}"}}'


# Exact types (the usual case) to their writer; subclasses go through _scalar_text.
# None: a container to open (an empty one is written at once).
_SCALARS: dict[type, Callable[[Any], str | None]] = {
    str: encode_basestring,
    int: _int_text,
    float: _float_text,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
    bytes: _bytes_text,
    list: lambda value: None if value else "[]",
    tuple: lambda value: None if value else "[]",
    dict: lambda value: None if value else "{}",
}


def _ext_text(value: ExtType) -> str:
    return f'{{"$ext":{int(value.code)},"data":"{bytes(value.data).hex()}"}}'


def _repr_text(value: Any) -> str:
    return encode_basestring(repr(value))


def _tag_text(value: CBORTag) -> str | None:
    """A tag around a scalar, written at once; None (a container to open) otherwise."""
    content = value.value
    writer = _SCALARS.get(type(content))
    if writer is None or type(content) is CBORTag:  # no recursion through nested tags
        return None
    text = writer(content)
    return None if text is None else f'{{"$tag":{int(value.tag)},"value":{text}}}'


_SCALARS.update({
    ExtType: _ext_text,
    CBORTag: _tag_text,
    CBORSimpleValue: _repr_text,
    type(undefined): _repr_text,
    Timestamp: _repr_text,
})


def _scalar_text(value: Any) -> str | None:
    """``value`` as JSON text, or None for a container (written by ``json_text``)."""
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _int_text(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes_text(value)
    if isinstance(value, ExtType):  # a tuple: before the arrays
        return _ext_text(value)
    if isinstance(value, list | tuple | Mapping | set | frozenset | CBORTag):
        return None
    return _repr_text(value)


def _key_text(key: Any) -> str | None:
    """A map key as JSON object key text (with its colon), or None if it is a container."""
    if isinstance(key, str):
        text = key
    elif key is None:
        text = "null"
    elif isinstance(key, bool):
        text = "true" if key else "false"
    elif isinstance(key, int):
        text = _decimal(key) or hex(key)
    elif isinstance(key, float):
        text = float.__repr__(key) if math.isfinite(key) else _float_name(key)
    elif isinstance(key, bytes | bytearray | memoryview):
        text = bytes(key).hex()
    else:
        return None
    return encode_basestring(text) + ":"


class _Open:
    """A container being written: what is left of it, and the text that closes it."""

    __slots__ = ("closer", "count", "items", "keyed", "value")

    def __init__(self, value: Any, items: Iterator[Any], closer: str, keyed: bool = False):
        self.value = value
        self.items = items
        self.closer = closer
        self.keyed = keyed  # items are (key text, value) pairs
        self.count = 0


def _open(value: Any, emit: Callable[[str], None]) -> _Open:
    """Write the opening of the container ``value``; return what is left to write."""
    if isinstance(value, list | tuple):
        emit("[")
        return _Open(value, iter(value), "]")
    if isinstance(value, Mapping):
        entries = list(value.items())
        keys = [_key_text(key) for key, _ in entries]
        if None in keys:  # a key that is a container: a list of [key, value] pairs
            emit('{"$map":[')
            return _Open(value, iter(entries), "]}")
        emit("{")
        return _Open(value, zip(keys, (item for _, item in entries), strict=True), "}", True)
    if isinstance(value, set | frozenset):
        emit('{"$set":[')
        return _Open(value, iter(value), "]}")
    assert isinstance(value, CBORTag)
    emit(f'{{"$tag":{int(value.tag)},"value":')
    return _Open(value, iter((value.value,)), "}")


def json_text(value: Any) -> str:
    """Return ``value`` as one line of compact JSON (see the module documentation).

    Costs time linear in the size of ``value`` whatever its shape, and no recursion.
    Raises whatever ``repr()`` raises for a value shown as its ``repr``.
    """
    if 0 < sys.get_int_max_str_digits() <= _MAX_DIGITS:
        try:
            return _fast_encode(value)
        except (TypeError, ValueError, RecursionError):
            pass  # something JSON cannot write, or too deep for json: the printer below
    return _write(value)


def _write(value: Any) -> str:
    """The printer of ``json_text`` (which tries json's encoder first)."""
    scalars = _SCALARS
    writer = scalars.get(type(value))
    text = writer(value) if writer is not None else _scalar_text(value)
    if text is not None:
        return text
    out: list[str] = []
    emit = out.append
    stack = [_open(value, emit)]
    open_ids = {id(value)}  # a container inside itself would print forever
    while stack:
        current = stack[-1]
        keyed = current.keyed
        for item in current.items:
            if current.count:
                emit(",")
            current.count += 1
            if keyed:
                key, item = item
                emit(key)
            writer = scalars.get(type(item))
            text = writer(item) if writer is not None else _scalar_text(item)
            if text is None:
                if id(item) in open_ids:
                    raise ValueError("the frame contains itself (a shared reference)")
                open_ids.add(id(item))
                stack.append(_open(item, emit))
                break
            emit(text)
        else:
            open_ids.discard(id(current.value))
            emit(current.closer)
            stack.pop()
    return "".join(out)


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
    ``cbor`` and ``jsonl`` parse it as JSON (a blank line gives ``SKIP``) and, except for
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

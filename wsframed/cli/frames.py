"""Codecs by name, and frames as one line of text: what ``serve`` and ``connect`` print.

A received frame is shown on one line,

- ``lines``: the text of the line, as received;
- ``bytes``, ``length``: a Python bytes literal, for example ``b'hello\\n'``;
- ``msgpack``, ``cbor``, ``jsonl``: compact JSON. A byte string is shown as
  ``{"$bytes": "<hex>"}``; a value JSON cannot express (a CBOR tag, a datetime, a set)
  as the string of its Python ``repr``; map keys that are not strings as strings.

:func:`parse_input_line` turns a line of ``connect``'s input into the item it sends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..codecs.base import Codec

__all__ = ["CODECS", "SKIP", "format_frame", "make_codec", "parse_input_line"]

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


def _to_json(value: Any) -> Any:
    """Return ``value`` made of JSON types only (see the module documentation)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {_json_key(key): _to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    return repr(value)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key).hex()
    return json.dumps(_to_json(key), ensure_ascii=False)


def _from_json(value: Any) -> Any:
    """Turn ``{"$bytes": "<hex>"}`` objects back into bytes, recursively."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$bytes"), str):
            return bytes.fromhex(value["$bytes"])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def format_frame(codec: str, item: Any) -> str:
    """Return the one-line text ``serve`` and ``connect`` print for a received frame."""
    if codec in _STRUCTURED:
        return json.dumps(_to_json(item), ensure_ascii=False, separators=(",", ":"))
    if isinstance(item, str):
        return item
    return repr(bytes(item))


def parse_input_line(codec: str, line: bytes) -> Any:
    """Return the item ``connect`` sends for one line of input (with its terminator).

    ``bytes`` sends the line as read, newline included (a raw byte stream, as netcat
    does); ``length`` the line without its terminator; ``lines`` its text; ``msgpack``,
    ``cbor`` and ``jsonl`` parse it as JSON (a blank line gives :data:`SKIP`) and, except for
    ``jsonl``, turn ``{"$bytes": "<hex>"}`` into bytes. Raises ``ValueError`` with a
    message saying what is wrong with the line.
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
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if codec == "jsonl":
        return value
    try:
        return _from_json(value)
    except ValueError:
        raise ValueError('a {"$bytes": ...} value is not valid hex') from None

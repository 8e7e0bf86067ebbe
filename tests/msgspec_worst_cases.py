"""Hostile inputs for MsgspecCodec, for the adversarial cost benchmark (issues 14, 16).

The same interface as ``tests/codec_worst_cases.py`` (whose ``consume`` drives the
decoders): ``worst_cases(codec_name, size)`` returns the shapes of about ``size``
bytes for ``codec_name`` in ``CODECS``, plus ``"benign"``; ``codec_for(codec_name)``
the codec they are aimed at; ``feed_chunk(codec_name, shape)`` how a shape arrives.

- ``msgspec-msgpack``: ``MsgspecCodec()`` (untyped): msgpack's own worst cases, and
  map keys chosen to share one Python hash: arrays of integers (tuples; refused past
  32 per map), integers ``1 + k * (2**61 - 1)`` and floats ``2.0 ** (61 * k)`` (a
  few dozen per hash at most: they cost a bounded factor).
- ``msgspec-typed``: ``MsgspecCodec(Request)``: frames that fail validation deep
  inside (the decoder is failed at the first), long strings where an int is wanted.
- ``msgspec-jsonl``: ``MsgspecCodec(format="json")``: every JSON Lines shape of
  ``codec_worst_cases`` (msgspec parses and refuses where ``json`` did).
- ``msgspec-typed-jsonl``: ``MsgspecCodec(Request, "json")``: lines that fail
  validation between good ones (JSON Lines resynchronise: one error each, within
  LinesCodec's tolerated rate, then the decoder is failed).
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

import msgpack  # type: ignore[import-untyped]
import msgspec

from wsframed.codecs import MsgspecCodec

from . import codec_worst_cases
from .codec_worst_cases import consume

__all__ = ["CODECS", "codec_for", "consume", "feed_chunk", "worst_cases"]

CODECS = ("msgspec-msgpack", "msgspec-typed", "msgspec-jsonl", "msgspec-typed-jsonl")


class Request(msgspec.Struct):
    id: int
    method: str
    params: list[int]


def _fill(unit: bytes, size: int) -> bytes:
    return unit * max(1, size // len(unit))


def _map16(pairs: list[tuple[Any, Any]]) -> bytes:
    packer = msgpack.Packer()
    body = b"".join(packer.pack(key) + packer.pack(value) for key, value in pairs)
    return b"\xde" + struct.pack(">H", len(pairs)) + body


_P = 2**61 - 1  # Python hashes an int modulo this prime
_SAME_INTS = [1 + k * _P for k in range(8)]  # every 64-bit int with hash 1
# Floats with hash 1: 2**(61*k) for every k a double can hold (Python hashes an
# integral float as the int; 2**61 is 1 modulo the prime).
_SAME_FLOATS = [2.0 ** (61 * k) for k in range(-17, 17)]


def _msgpack(size: int) -> dict[str, bytes]:
    shapes = dict(codec_worst_cases.worst_cases("msgpack", size))
    tuples = list(itertools.islice(itertools.product(_SAME_INTS, repeat=4), 1000))
    # Keys that collide and are allowed: ints and floats of one hash (tuples of them:
    # up to 32 per map).
    ints_floats = [(key, None) for key in _SAME_INTS + _SAME_FLOATS]
    shapes.update(
        {
            "benign": _fill(msgpack.packb({"id": 12345, "method": "add", "params": [1, 2]}), size),
            "tuple_keys_colliding": _fill(_map16([(key, None) for key in tuples]), size),
            "tuple_keys_32_colliding": _fill(
                _map16([(key, None) for key in tuples[:32]] + [((i,), 0) for i in range(40)]),
                size,
            ),
            "int_and_float_keys_colliding": _fill(_map16(ints_floats), size),
            "tuple_keys_distinct": _fill(_map16([((i, -i), None) for i in range(2000)]), size),
            "bignum_like_floats": _fill(msgpack.packb([1.5e308, 5e-324] * 500), size),
        }
    )
    return shapes


def _typed(size: int) -> dict[str, bytes]:
    good = msgpack.packb({"id": 12345, "method": "add", "params": [1, 2]})
    return {
        "benign": _fill(good, size),
        "invalid_every_frame": _fill(msgpack.packb({"id": "x", "method": 1, "params": 2}), size),
        "invalid_deep_in_one_frame": msgpack.packb(
            {"id": 1, "method": "m", "params": [1] * (size // 2) + ["x"]}
        ),
        "long_string_for_int": msgpack.packb({"id": "9" * (size - 30), "method": "m"}),
        "unknown_fields": _fill(msgpack.packb({f"k{i}": i for i in range(200)} | {"id": 1}), size),
        "fixint_flood": b"\x00" * size,
    }


def _jsonl(size: int) -> dict[str, bytes]:
    return codec_worst_cases.worst_cases("jsonl", size)


def _typed_jsonl(size: int) -> dict[str, bytes]:
    good = b'{"id":12345,"method":"add","params":[1,2]}\n'
    return {
        "benign": _fill(good, size),
        "invalid_alternating": _fill(good + b'{"id":"x","method":1}\n', size),
        "invalid_every_kib": _fill(good * 23 + b'{"id":1,"params":["x"]}\n', size),
        "invalid_every_line": _fill(b"1\n", size),
        "invalid_deep_in_one_line": b'{"id":1,"method":"m","params":['
        + b"1," * (size // 2 - 40)
        + b'"x"]}\n',
    }


def worst_cases(codec_name: str, size: int) -> dict[str, bytes]:
    """Hostile inputs of about ``size`` bytes for ``codec_name``, and ``"benign"``."""
    if codec_name == "msgspec-msgpack":
        return _msgpack(size)
    if codec_name == "msgspec-typed":
        return _typed(size)
    if codec_name == "msgspec-jsonl":
        return _jsonl(size)
    if codec_name == "msgspec-typed-jsonl":
        return _typed_jsonl(size)
    raise ValueError(f"no worst cases for codec {codec_name!r}")


def codec_for(codec_name: str) -> Any:
    """The codec the shapes of ``codec_name`` are aimed at."""
    if codec_name == "msgspec-msgpack":
        return MsgspecCodec()
    if codec_name == "msgspec-typed":
        return MsgspecCodec(Request)
    if codec_name == "msgspec-jsonl":
        return MsgspecCodec(format="json")
    if codec_name == "msgspec-typed-jsonl":
        return MsgspecCodec(Request, "json", max_frame_size=1024 * 1024)
    raise ValueError(f"no worst cases for codec {codec_name!r}")


def feed_chunk(codec_name: str, shape: str) -> int | None:
    """The chunk size a shape is fed in (``None``: the whole input at once)."""
    return codec_worst_cases.feed_chunk("msgpack" if "msgpack" in codec_name else "jsonl", shape)

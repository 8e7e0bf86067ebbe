"""An RFC 8742 CBOR sequence: every frame is one CBOR data item, nothing else.

Wire format: self-delimiting CBOR items (RFC 8949) concatenated, with no length
prefix or separator::

    +---------------------------+------+---------------------+
    | a2 62 "id" 01 61 "m" 80   |  f6  | 5f 42 .. 41 .. ff   |  ...
    |   {"id": 1, "m": []}      | None | b"..." (in chunks)  |
    +---------------------------+------+---------------------+

Items are encoded with ``cbor2.dumps`` and decoded with cbor2, so
``codec.encode(x) == cbor2.dumps(x)`` and cbor2's options pass through unchanged.

How it decodes. cbor2 has no incremental decoder and no size limit, and
``cbor2.loads`` silently ignores trailing bytes, so the decoder delimits items
itself, two ways:

* items that have fully arrived are read by a ``cbor2.CBORDecoder`` over a window of
  the buffer at most ``max_frame_size`` bytes long, so cbor2 never sees more than one
  frame's worth of bytes and each item costs one pass in Rust (cbor2 6 or later);
* the item cut off by the end of the received bytes goes to a scanner that walks its
  heads (major type, argument, definite lengths, indefinite-length items closed by
  ``0xff``, tags), checking sizes and nesting at each head. The scanner keeps its
  offset and a stack of open containers between feeds, so an item that trickles in
  over many feeds is scanned once, in linear time. Once complete, exactly its bytes
  go to ``cbor2.loads``.

Limits. ``max_frame_size`` (1 MiB by default) bounds one item's size on the wire:

* encoding an item larger than the limit raises [`FrameTooLarge`][wsframed.errors.FrameTooLarge]
  with ``local=True``; nothing is returned, the codec stays usable.
* a head that declares more than the limit fails at the head, before its body is
  buffered: a byte or text string longer than the limit (``5b`` + 8 length bytes),
  or an array or map with more entries than the remaining bytes (every entry takes at
  least one byte). This stops a peer from announcing a huge body and trickling it in.
* an item still incomplete after ``max_frame_size`` bytes fails, so an endless item
  (an indefinite-length string whose chunks never end, a huge array of small
  integers) cannot grow memory without bound.
* ``max_depth`` (256 by default) bounds nesting as cbor2 counts it: non-empty arrays
  and maps, indefinite-length arrays and maps, and tags each open one level. Deeper
  items fail with ``DecodeError``, which stops a ``81 81 81 ...`` stream from
  exhausting a stack.

What cbor2 may build. cbor2 turns tags into Python objects and builds dicts and sets
from whatever keys the peer sends; some of that costs far more than the bytes that
ask for it (cbor2 6.3: a 1 MiB decimal fraction takes about two minutes, 1 MiB of
bignum map keys 31 s). So unless ``trusted_peer=True``:

* map keys and set elements (tag 258) must be integers, floats, simple values, text
  or byte strings, or string references (tag 25). An array, a map or any other tag
  there is a ``DecodeError`` naming the head's offset. Python hashes an integer as
  itself modulo 2**61 - 1, a tuple by an invertible mix of its elements' hashes, a
  ``Decimal``, ``Fraction``, ``UUID`` or IPv6 network from the integer inside, so a
  peer can send thousands of keys with one hash, and the dict fills in quadratic
  time. Keys within 64 bits share a hash at most 8 integers (42 floats and integers)
  at a time, and strings hash with a per-process random key: those stay linear.
* tags 4 (decimal fraction), 5 (bigfloat) and 30 (rational) are converted when every
  integer in them is a plain integer or a bignum (tag 2 or 3) of at most 1024 bytes;
  a longer or indefinite-length bignum, or another tag, inside one is a
  ``DecodeError``. cbor2 converts them through decimal text or a gcd, in time
  quadratic in the size of the integers.
* tags 35 (regular expression), 36 (MIME message) and 52, 54, 260, 261 (IP
  addresses and networks) stay inert, as a ``cbor2.CBORTag`` of their content:
  cbor2 hands them to Python's ``re``, ``email`` and ``ipaddress`` modules, at about
  a microsecond per byte (9 s per MiB of empty messages) or 6 us per address, and a
  peer's pattern can backtrack for ever once you match with it. Convert the content
  yourself (``ipaddress.ip_address(tag.value)``) where you need it, or give your own
  ``semantic_decoders`` entry for the tag.
* every other tag is decoded as cbor2 decodes it: dates (0, 1, 100, 1004) and
  bignums (2, 3) in linear time, UUIDs (37) and complex numbers (43000) of fixed
  size, sets (258) of an array whose elements follow the rule for keys; unknown
  tags (32, a URI, among them) become ``cbor2.CBORTag``.

* string references (tag 25) are refused unless ``string_referencing=True``, as
  shared references (tags 28/29) are unless ``value_sharing=True``: decoding shares
  one string, but re-encoding or printing the value writes it out once per
  reference, so a 64 KiB frame of references to a 32 KiB string becomes 358 MB.

``trusted_peer=True`` lifts the first three rules (size and depth limits stay, and
shared and string references still need ``value_sharing=True`` and
``string_referencing=True``); your own ``semantic_decoders`` entry for tag 4, 5, 30,
35, 36, 52, 54, 260 or 261 replaces the rule for that tag. Every decoded object still
costs what Python charges for it, in linear time: the densest frames (a one-byte
empty array or a few-byte tag per object) take about 8 to 17 times as long per MiB
as a 1 MiB frame of ordinary small maps (docs/security.md has the figures).

The rules cost ordinary items nothing: the fast path's ``CBORDecoder`` runs with
``strict_hashable_types=True`` and a semantic decoder for tags 4, 5 and 30 that
raises, so cbor2 stops at the first key that is not a string and at the first numeric
tag, before building anything costly. From that item on, the plain items (numbers,
strings, definite-length arrays and maps, every key a number or a string) that have
fully arrived are checked together in one pass over their heads and decoded by a
second ``CBORDecoder`` without ``strict_hashable_types``: a small item with integer
keys costs about twice one with string keys (about 6 times before). Any other
item, like one cbor2 finds malformed or one cut off by the end of the received
bytes, goes to the scanner, which checks the rules at each head (keeping its place
between feeds, like the rest of its state) and then hands it to ``cbor2.loads``
(``trusted_peer=True`` keeps the fast path for every item).

Self-describe tag. RFC 8949 section 3.4.6 lets a sender wrap an item in tag 55799
(``d9 d9 f7``) to mark it as CBOR; the tag means nothing else. cbor2 6 decodes the
tagged content as immutable (a tuple instead of a list), so the codec registers a
semantic decoder that returns the content as it is: a self-described item decodes as
the plain value. Likewise tag 64 (RFC 8746, a uint8 typed array: what cbor-x sends for
a JavaScript ``Uint8Array``) decodes as ``bytes``. Pass your own
``semantic_decoders={55799: ..., 64: ...}`` to change either.

After an error. A CBOR sequence cannot be resynchronised: after a ``DecodeError``
(malformed bytes, or any exception from cbor2 or your hooks, kept as the
``__cause__``) or ``FrameTooLarge`` the decoder is failed and re-raises the same
error object from every later iteration, ``feed`` and ``feed_eof``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from io import BytesIO
from typing import Any

import cbor2

from ..errors import DecodeError, FrameTooLarge, IncompleteFrame
from . import _cbor5
from .base import Buffer
from .rope import Rope

__all__ = ["CborCodec", "CborDecoder"]

_DECODE_OPTIONS = frozenset(
    {
        "tag_hook",
        "object_hook",
        "semantic_decoders",
        "str_errors",
        "allow_indefinite",
        "allow_duplicate_keys",
        "strict_hashable_types",
        "immutable",
    }
)
# Encoder options under which one encoder's items depend on each other.
_STATEFUL_ENCODING = frozenset({"value_sharing", "string_referencing"})
_ENCODE_OPTIONS = frozenset(
    {
        "default",
        "encoders",
        "datetime_as_timestamp",
        "timezone",
        "value_sharing",
        "canonical",
        "date_as_datetime",
        "string_referencing",
        "indefinite_containers",
    }
)


def _parameters(function: Callable[..., Any]) -> frozenset[str]:
    """The keyword parameters of one of cbor2's functions, or none if unknown."""
    try:
        return frozenset(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return frozenset()


# cbor2 6 (Rust core) bounds nesting itself and has semantic decoders; with it the
# decoder lets a CBORDecoder delimit fully received items (the fast path).
# (6.2 brought strict_hashable_types, which it needs to hand map keys to the scanner.)
_FAST = {"max_depth", "read_size", "semantic_decoders", "strict_hashable_types"} <= _parameters(
    cbor2.CBORDecoder
)
# cbor2 5's pure-Python decoder (Pyodide's: cbor2 6 has no wheel there) takes older
# options: _cbor5.loads gives it cbor2 6's; every item goes through the scanner.
_SEMANTIC_FALLBACK = not _FAST and _cbor5.AVAILABLE


_SELF_DESCRIBE = 55799
_UINT8_ARRAY = 64  # RFC 8746: a typed array of uint8, i.e. bytes (cbor-x's Uint8Array)
_SHARED_REF = 29  # "sharedref": a reference to a value marked with tag 28 ("shareable")
_STRING_REF = 25  # "stringref": an index into the strings of an enclosing tag 256
_SET = 258  # a set: an array of distinct elements
_STRING_NAMESPACE = 256  # strings referenced inside it (cbor2 puts one inside a set's tag)
# Tags cbor2 converts through decimal text or a gcd, in time quadratic in the size of
# the integers inside: decimal fraction, bigfloat, rational.
_NUMERIC_TAGS = (4, 5, 30)
# Tags left as a cbor2.CBORTag unless the peer is trusted. cbor2 converts 35 and 36
# with a parser written in Python, at about a microsecond per byte, into objects that
# invite more work (a regular expression, a MIME message), and 52, 54, 260 and 261
# through Python's ipaddress module, about 6 us an address or network (17 times a
# benign frame's cost per MiB).
_INERT_TAGS = (35, 36, 52, 54, 260, 261)
# The longest bignum (in bytes) accepted inside a tag of _NUMERIC_TAGS.
_NUMERIC_BIGNUM = 1024
# How much a CBORDecoder reads ahead per item; it seeks back to the item's end.
_READ_SIZE = 256
_MAX_LIMIT = 1 << 48  # keeps every count below the indefinite-length markers below
# A definite-length string that still misses this many bytes collects the chunks fed
# next in a list, joined once when it is complete: growing a buffer chunk by chunk to
# many MiB reallocates, and may copy, it again and again.
_ROPE_MIN = 128 * 1024


def _unwrap_self_described(value: Any, immutable: bool) -> Any:
    """Semantic decoder for tag 55799: the content, as decoded."""
    return value


def _refuse_shared_reference(value: Any, immutable: bool) -> Any:
    """Semantic decoder for tag 29 unless ``value_sharing=True``: refuse the item.

    Shared references let a few bytes stand for a cyclic object, or for a DAG whose
    size doubles with every level: 160 bytes that re-encode (or log, or walk) to
    100 MB. A peer has no business sending them unless both sides agreed.
    """
    raise ValueError(
        "shared references (tags 28/29) are refused; pass value_sharing=True to "
        "CborCodec to accept them from this peer"
    )


def _refuse_string_reference(value: Any, immutable: bool) -> Any:
    """Semantic decoder for tag 25 unless ``string_referencing=True``: refuse the item.

    A string reference is two or three bytes that stand for a whole earlier string:
    decoding shares the one ``str`` object, but re-encoding, printing or walking the
    value writes the string out once per reference. A 64 KiB frame of a 32 KiB string
    and references to it re-encodes to 358 MB; 1 MiB, to about 90 GB.
    """
    raise ValueError(
        "string references (tag 25) are refused; pass string_referencing=True to "
        "CborCodec to accept them from this peer"
    )


def _uint8_array(value: Any, immutable: bool) -> Any:
    """Semantic decoder for tag 64 (uint8 typed array): its byte string, as ``bytes``."""
    return bytes(value) if isinstance(value, (bytes, bytearray)) else value


def _inert(tag: int) -> Callable[[Any, bool], Any]:
    """A semantic decoder for ``tag`` (one of ``_INERT_TAGS``): the tag, unconverted."""
    make = cbor2.CBORTag

    def inert(value: Any, immutable: bool) -> Any:
        return make(tag, value)

    return inert


class _InertTag(dict[bool, tuple[None, Callable[[Any], Any]]]):
    """A decoder for ``cbor2.shareable_decoder`` that leaves its tag a ``CBORTag``.

    cbor2 6 calls a shareable decoder with ``immutable`` and then the second item of
    what it returns with the tag's content. Here both calls are C code (a dict lookup,
    then ``functools.partial(CBORTag, tag)``), where ``_inert`` is a Python function:
    0.35 us less per tag (a tag per three bytes cost 15 times a benign frame per MiB).
    The content is decoded as cbor2 decodes an array's items (mutable), so the codec
    uses it only without ``immutable=True``.
    """

    __call__ = dict.__getitem__


def _fast_inert(tag: int) -> Any:
    """``_inert(tag)`` as C calls, through ``cbor2.shareable_decoder`` (cbor2 6)."""
    wrap = functools.partial(cbor2.CBORTag, tag)
    return cbor2.shareable_decoder(_InertTag({True: (None, wrap), False: (None, wrap)}))


_INERT_DECODERS = {tag: _inert(tag) for tag in _INERT_TAGS}
# cbor2 6.3 has shareable_decoder; cbor2 5 (Pyodide's) takes _inert.
_FAST_INERT_DECODERS: dict[int, Any] | None = (
    {tag: _fast_inert(tag) for tag in _INERT_TAGS} if hasattr(cbor2, "shareable_decoder") else None
)


class _Divert(Exception):
    """Raised by a semantic decoder of the fast path: the scanner must check the item."""


# What the fast path's decode loop takes for an item its CBORDecoder stopped at.
_DIVERTED = object()


def _divert(value: Any, immutable: bool) -> Any:
    """Fast-path semantic decoder for the tags in ``_NUMERIC_TAGS``: hand over the item."""
    raise _Divert


# Scanner tables, indexed by an item's initial byte.
#
# _LEAF: the size of an item that the initial byte alone determines (integers,
# floats, simple values, strings shorter than 24 bytes, empty arrays and maps), or 0.
# _SMALL: the number of entries of a non-empty array or map shorter than 24, or 0.
_leaf = bytearray(256)
_small = bytearray(256)
for _byte in range(256):
    _major, _info = _byte >> 5, _byte & 0x1F
    if _major in (0, 1, 7) and _info < 28:
        _leaf[_byte] = 1 if _info < 24 else 1 + (1 << (_info - 24))
    elif _major in (2, 3) and _info < 24:
        _leaf[_byte] = 1 + _info
    elif _major in (4, 5) and _info == 0:
        _leaf[_byte] = 1
    elif _major == 4 and _info < 24:
        _small[_byte] = _info
    elif _major == 5 and _info < 24:
        _small[_byte] = 2 * _info
_LEAF = bytes(_leaf)
# With the conversion policy on, empty arrays and maps take the slow path too, where
# the scanner checks that they are not map keys or set elements.
_leaf[0x80] = _leaf[0xA0] = 0
_LEAF_CHECKED = bytes(_leaf)
_SMALL = bytes(_small)
del _leaf, _small, _byte, _major, _info

# The scanner keeps, for each open container, the number of items it still needs.
# Indefinite-length containers count down from these markers instead, far above any
# definite count (< 2**48) and apart from each other by more than any item holds.
_HALF = 1 << 59
_INDEF_ARRAY = 1 << 60
_INDEF_MAP = 2 << 60
_INDEF_BYTES = 3 << 60
_INDEF_TEXT = 4 << 60
_IN_STRING = _INDEF_BYTES - _HALF  # counts above this are inside an indefinite string

# What _slow_head tells the main loop.
_ENDED = 0  # an item ended at the returned offset
_OPENED = 1  # a container or tag opened; the returned count is its own
_MORE = 2  # the head (or chunk) at the returned offset needs more bytes


class _Malformed(Exception):
    """Raised by the scanner; the decoder turns it into a DecodeError with an offset.

    ``at`` is the buffer index of the head at fault, when the message names one.
    """

    def __init__(self, message: str, at: int | None = None) -> None:
        super().__init__(message)
        self.at = at


def _too_deep(max_depth: int) -> _Malformed:
    return _Malformed(f"CBOR item nested deeper than max_depth={max_depth}")


# The conversion policy's marks, one per open map, set or numeric tag, innermost last:
# ``depth << 2 | kind`` where depth is the stack length inside it. A mark deeper than
# the stack is stale (its container ended) and is dropped when next looked at.
_MAP_MARK = 0  # a map: its keys are checked
_SET_MARK = 1  # the array of a set: its elements are checked
_SET_TAG_MARK = 2  # tag 258: its content must be an array
_NUMERIC_MARK = 3  # a tag of _NUMERIC_TAGS: the integers in it are bounded
_REFUSED_KEY = (
    "; map keys and set elements may be integers, floats, simple values and strings, "
    "whose hashes a peer cannot make collide (pass trusted_peer=True to accept any)"
)


def _what(major: int, tag: int) -> str:
    return "an array" if major == 4 else "a map" if major == 5 else f"tag {tag}"


def _check_open(
    buf: bytes | bytearray,
    i: int,
    j: int,
    end: int,
    major: int,
    tag: int,
    count: int,
    marks: list[int],
    depth: int,
    numeric: frozenset[int],
) -> bool:
    """Apply the conversion policy to the array, map or tag whose head is ``buf[i:j]``.

    ``depth`` is the stack length before the head opens anything, ``tag`` the tag
    number (major type 6). Refuses, with ``_Malformed``, an array, map or tag (other
    than a string reference) as a map key or set element, content other than an array
    in a set, and any tag but a bignum of at most ``_NUMERIC_BIGNUM`` bytes inside a
    tag of ``numeric``. Returns False when the bignum's length is still to come.
    Otherwise records a mark for what the head opens and returns True.
    """
    while marks and marks[-1] >> 2 > depth:
        marks.pop()
    kind = -1
    if marks:
        mark = marks[-1]
        kind = mark & 3
        if kind == _NUMERIC_MARK:
            # cbor2 puts a string namespace (tag 256) around the array of a top-level
            # decimal or rational when it writes string references.
            if major == 6 and tag != _STRING_NAMESPACE:
                if tag != 2 and tag != 3:
                    raise _Malformed(
                        f"tag {tag} inside a decimal fraction, bigfloat or rational "
                        f"(tags 4, 5, 30), which may only hold integers",
                        i,
                    )
                if j >= end:
                    return False
                ib = buf[j]
                if ib == 0x5F:
                    raise _Malformed(
                        "an indefinite-length bignum inside a decimal fraction, "
                        "bigfloat or rational (tags 4, 5, 30)",
                        i,
                    )
                if 0x40 <= ib < 0x5C:
                    stop = _string_end(buf, j)
                    if stop < 0:
                        return False
                    info = ib & 0x1F
                    size = stop - j - 1 - (1 << (info - 24) if info >= 24 else 0)
                    if size > _NUMERIC_BIGNUM:
                        raise _Malformed(
                            f"a bignum of {size} bytes inside a decimal fraction, bigfloat "
                            f"or rational (tags 4, 5, 30), over the {_NUMERIC_BIGNUM}-byte "
                            f"bound: cbor2 converts them in time quadratic in their size "
                            f"(pass trusted_peer=True to lift the bound)",
                            i,
                        )
        elif mark >> 2 != depth:
            kind = -1  # an array or tag inside the map or set is innermost
        elif (kind == _MAP_MARK and not count & 1) or kind == _SET_MARK:
            if major != 6 or tag != _STRING_REF:
                where = "a map key" if kind == _MAP_MARK else "a set element (tag 258)"
                raise _Malformed(f"{where} is {_what(major, tag)}{_REFUSED_KEY}", i)
        elif kind == _SET_TAG_MARK and major != 4 and tag != _STRING_NAMESPACE:
            raise _Malformed(f"tag 258 (a set) holds {_what(major, tag)}, not an array", i)
    depth = (depth + 1) << 2
    if major == 5:
        marks.append(depth | _MAP_MARK)
    elif major == 4:
        if kind == _SET_TAG_MARK:
            marks.append(depth | _SET_MARK)
    elif tag == _SET or kind == _SET_TAG_MARK:  # a string namespace passes it on
        marks.append(depth | _SET_TAG_MARK)
    elif tag in numeric:
        marks.append(depth | _NUMERIC_MARK)
    return True


def _slow_head(
    buf: bytes | bytearray,
    i: int,
    end: int,
    start: int,
    limit: int,
    count: int,
    stack: list[int],
    max_depth: int,
    marks: list[int] | None,
    numeric: frozenset[int],
) -> tuple[int, int, int]:
    """Scan the head at ``buf[i]`` that the fast tables do not cover.

    Returns ``(what, offset, count)`` where ``what`` is ``_ENDED``, ``_OPENED`` or
    ``_MORE``. ``start`` is where the item in progress starts (for the size checks);
    bytes at ``end`` and beyond are not available. ``marks`` is None when the
    conversion policy is off, else its marks (see ``_check_open``).
    """
    ib = buf[i]
    major = ib >> 5
    info = ib & 0x1F
    if info < 24:
        arg = info
        j = i + 1
    elif info < 28:
        j = i + 1 + (1 << (info - 24))
        if j > end:
            return _MORE, i, count
        arg = int.from_bytes(buf[i + 1 : j], "big")
    elif info == 31:
        if major == 7:  # "break" closes the innermost indefinite-length container
            if not _INDEF_ARRAY - _HALF < count <= _INDEF_MAP:
                raise _Malformed("unexpected break (0xff) outside an indefinite-length item")
            if count > _INDEF_MAP - _HALF and (_INDEF_MAP - count) & 1:
                raise _Malformed("break (0xff) between a key and its value in a map")
            return _ENDED, i + 1, stack.pop()
        if major < 2 or major == 6:
            raise _Malformed(f"indefinite length is not allowed for major type {major}")
        if major >= 4:
            if len(stack) >= max_depth:
                raise _too_deep(max_depth)
            if marks is not None:
                _check_open(buf, i, i + 1, end, major, -1, count, marks, len(stack), numeric)
            stack.append(count)
            return _OPENED, i + 1, _INDEF_ARRAY if major == 4 else _INDEF_MAP
        # An indefinite-length string holds only strings, so it cannot nest: cbor2
        # does not count it as a level, and neither does the scanner.
        stack.append(count)
        return _string_chunks(
            buf, i + 1, end, start, limit, _INDEF_BYTES if major == 2 else _INDEF_TEXT, stack
        )
    else:
        raise _Malformed(f"reserved additional information {info} in initial byte 0x{ib:02x}")

    if major == 2 or major == 3:
        j += arg
        if j - start > limit:
            raise FrameTooLarge(j - start, limit, at_least=bool(stack))
        if j > end:
            return _MORE, i, count
        return _ENDED, j, count
    if major == 4 or major == 5:
        if major == 5:
            arg *= 2
        if not arg:
            if marks is not None:  # an empty array or map may not be a key either
                _check_open(buf, i, j, end, major, -1, count, marks, len(stack), numeric)
            return _ENDED, j, count
        if j - start + arg > limit:  # every entry takes at least one byte
            raise FrameTooLarge(j - start + arg, limit, at_least=True)
        if len(stack) >= max_depth:
            raise _too_deep(max_depth)
        if marks is not None:
            _check_open(buf, i, j, end, major, -1, count, marks, len(stack), numeric)
        stack.append(count)
        return _OPENED, j, arg
    if major == 6:
        if len(stack) >= max_depth:
            raise _too_deep(max_depth)
        if marks is not None and not _check_open(
            buf, i, j, end, 6, arg, count, marks, len(stack), numeric
        ):
            return _MORE, i, count
        stack.append(count)
        return _OPENED, j, 1
    return _ENDED, j, count  # pragma: no cover - the fast tables cover the rest


def _string_chunks(
    buf: bytes | bytearray,
    i: int,
    end: int,
    start: int,
    limit: int,
    count: int,
    stack: list[int],
) -> tuple[int, int, int]:
    """Scan the chunks of an indefinite-length string from ``buf[i]`` up to its break.

    ``count`` is ``_INDEF_BYTES`` or ``_INDEF_TEXT``; each chunk must be a
    definite-length string of the same major type (RFC 8949 section 3.2.3).
    """
    major = 0x40 if count == _INDEF_BYTES else 0x60
    while True:
        if i >= end:
            return _MORE, i, count
        ib = buf[i]
        if ib == 0xFF:
            return _ENDED, i + 1, stack.pop()
        info = ib & 0x1F
        if ib & 0xE0 != major or info > 27:
            kind = "byte" if major == 0x40 else "text"
            raise _Malformed(
                f"initial byte 0x{ib:02x} inside an indefinite-length {kind} string, "
                f"which may only hold definite-length {kind} strings"
            )
        if info < 24:
            j = i + 1 + info
        else:
            j = i + 1 + (1 << (info - 24))
            if j > end:
                return _MORE, i, count
            j += int.from_bytes(buf[i + 1 : j], "big")
        if j - start > limit:
            raise FrameTooLarge(j - start, limit, at_least=True)
        if j > end:
            return _MORE, i, count
        i = j


def _string_end(buf: bytes | bytearray, i: int) -> int:
    """The end of the definite-length string whose head is at ``buf[i]``, or -1.

    -1 also when the head is something else or its length field is incomplete.
    """
    if i >= len(buf):
        return -1
    ib = buf[i]
    if not 0x40 <= ib < 0x80:  # major types 2 (bytes) and 3 (text)
        return -1
    info = ib & 0x1F
    if info < 24:
        return i + 1 + info
    if info > 27:
        return -1
    j = i + 1 + (1 << (info - 24))
    if j > len(buf):
        return -1
    return j + int.from_bytes(buf[i + 1 : j], "big")


def _close(count: int, stack: list[int]) -> int:
    """Account for an item that just ended; return the new count, 0 if the top ended."""
    count -= 1
    while not count and stack:
        count = stack.pop() - 1
    return count


def _plain_run(buf: bytes | bytearray, i: int, stop: int, max_depth: int) -> int:
    """The end of the complete plain items that follow one another from ``buf[i]``.

    A plain item holds only integers, floats, simple values, definite-length strings
    and definite-length arrays and maps nested at most ``max_depth`` deep, and every
    map key in it is a number, a simple value or a string: an item the conversion
    policy accepts as it is, and that cbor2 decodes without calling a semantic
    decoder. The run stops before the first item that is anything else, or that does
    not end before ``stop``; it never raises, so that item goes to the scanner, which
    says what is wrong with it. Returns ``i`` when the first item is not plain.
    """
    leaf = _LEAF_CHECKED  # the empty array and map are not leaves here: not keys
    small = _SMALL
    done = i
    stack: list[int] = []
    push = stack.append
    pop = stack.pop
    count = 1  # items the innermost container still needs (1 for the top)
    keyed = 0  # 1 inside a map, whose keys come when count is even
    while i < stop:
        ib = buf[i]
        size = leaf[ib]
        if size:
            i += size
        elif keyed and not count & 1 and not (0x58 <= ib < 0x5C or 0x78 <= ib < 0x7C):
            return done  # a map key that is neither a number nor a string
        else:
            entries = small[ib]
            if entries:
                if len(stack) >= max_depth:
                    return done
                push(count << 1 | keyed)
                count = entries
                keyed = ib >> 5 & 1  # major type 5: a map
                i += 1
                continue
            if ib == 0x80 or ib == 0xA0:
                i += 1
            else:
                info = ib & 0x1F
                if not 24 <= info < 28 or not 0x40 <= ib < 0xC0:
                    return done  # a tag, an indefinite length, a break or reserved
                j = i + 1 + (1 << (info - 24))
                if j > stop:
                    return done
                arg = int.from_bytes(buf[i + 1 : j], "big")
                if ib < 0x80:  # a byte or text string
                    i = j + arg
                else:  # an array or a map of 24 entries or more
                    if ib >= 0xA0:
                        arg *= 2
                    if arg > stop - j or len(stack) >= max_depth:
                        return done
                    if arg:
                        push(count << 1 | keyed)
                        count = arg
                        keyed = ib >> 5 & 1
                        i = j
                        continue
                    i = j
        count -= 1
        if count:
            continue
        while stack:
            count = pop()
            keyed = count & 1
            count = (count >> 1) - 1
            if count:
                break
        else:
            if i > stop:
                return done
            done = i
            count = 1
            keyed = 0
    return done


class CborCodec:
    """An RFC 8742 CBOR sequence (self-delimiting items, no prefix), decoded incrementally.

    ``max_frame_size`` bounds one item's size on the wire, in bytes, when encoding and
    when decoding; ``max_depth`` bounds its nesting when decoding, as cbor2 counts it
    (non-empty arrays and maps, indefinite-length arrays and maps, and tags).

    Other keyword arguments go to cbor2: ``default``, ``encoders``,
    ``datetime_as_timestamp``, ``timezone``, ``value_sharing``, ``canonical``,
    ``date_as_datetime``, ``string_referencing``, ``indefinite_containers`` when
    encoding; ``tag_hook``, ``object_hook``, ``semantic_decoders``, ``str_errors``,
    ``allow_indefinite``, ``allow_duplicate_keys``, ``strict_hashable_types``,
    ``immutable`` when decoding. ``value_sharing=True`` also lets the decoder accept
    shared references (tags 28/29), which are refused by default: they let a peer
    send cyclic objects, or a few bytes that expand exponentially when re-encoded or
    walked. Likewise ``string_referencing=True`` lets it accept string references
    (tag 25), each of which re-encodes as the whole string it stands for.
    ``trusted_peer=True`` lets cbor2 convert every tag it knows at any size and
    accept any map key (see the module's "What cbor2 may build"). Hooks are called
    as cbor2 calls them, and may be called twice for an item that the fast path
    hands to the scanner. Each item is
    encoded and decoded on its own, so shared values and string references never span
    items. Any other option is a ``TypeError``; option values are checked once, here.

    The codec is immutable configuration, safe to share between connections and
    threads; each decoder holds one connection's state and is not meant to be shared
    between threads.
    """

    __slots__ = (
        "_dumps",
        "_encode_options",
        "_encoders",
        "_immutable",
        "_loads",
        "_max_depth",
        "_max_frame_size",
        "_numeric",
        "_options",
        "_plain_options",
        "_stream_options",
        "_trusted",
    )

    def __init__(
        self,
        max_frame_size: int = 1024 * 1024,
        *,
        max_depth: int = 256,
        trusted_peer: bool = False,
        **cbor2_options: Any,
    ) -> None:
        for name, value in (("max_frame_size", max_frame_size), ("max_depth", max_depth)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if not (_FAST or _SEMANTIC_FALLBACK):
            raise ImportError(
                f"CborCodec needs cbor2 6.2 or later, or cbor2 5's pure-Python build "
                f"(Pyodide's); this cbor2 {_cbor5.version()} has neither's decoding "
                "options: pip install 'cbor2>=6.2'"
            )
        if not 1 <= max_frame_size <= _MAX_LIMIT:
            raise ValueError(f"max_frame_size must be in 1..2**48, got {max_frame_size}")
        if max_depth < 0:
            raise ValueError(f"max_depth must not be negative, got {max_depth}")
        encode_options: dict[str, Any] = {}
        decode_options: dict[str, Any] = {}
        for name, value in cbor2_options.items():
            if name in _ENCODE_OPTIONS:
                encode_options[name] = value
            elif name in _DECODE_OPTIONS:
                decode_options[name] = value
            else:
                raise TypeError(f"CborCodec got an unexpected keyword argument {name!r}")
        if not isinstance(trusted_peer, bool):
            raise TypeError(f"trusted_peer must be a bool, not {type(trusted_peer).__name__}")
        own: dict[int, Any] = dict(decode_options.get("semantic_decoders") or {})
        # The numeric tags the scanner bounds: those cbor2 converts itself.
        self._numeric = frozenset(() if trusted_peer else set(_NUMERIC_TAGS) - set(own))
        self._trusted = trusted_peer
        stream_options: dict[str, Any] = {}
        if _FAST or _SEMANTIC_FALLBACK:
            semantic: dict[int, Callable[[Any, bool], Any]] = {
                _SELF_DESCRIBE: _unwrap_self_described,
                _UINT8_ARRAY: _uint8_array,
            }
            if not encode_options.get("value_sharing"):
                semantic[_SHARED_REF] = _refuse_shared_reference
            if not encode_options.get("string_referencing"):
                semantic[_STRING_REF] = _refuse_string_reference
            if not trusted_peer:
                inert = _INERT_DECODERS
                if _FAST and _FAST_INERT_DECODERS and not decode_options.get("immutable"):
                    inert = _FAST_INERT_DECODERS
                semantic.update(inert)
            semantic.update(own)
            decode_options["semantic_decoders"] = semantic
            decode_options["max_depth"] = max_depth
        if _FAST:
            stream_options = dict(decode_options)
            if not trusted_peer:
                # The fast path hands the scanner every item with a numeric tag, or a
                # map key or set element that is not a string (cbor2 raises on one):
                # the scanner checks those, and cbor2.loads then decodes the item.
                stream_options["semantic_decoders"] = dict.fromkeys(self._numeric, _divert)
                stream_options["semantic_decoders"].update(semantic)
                stream_options["strict_hashable_types"] = True
        # Check the option values now rather than mid-stream.
        if _SEMANTIC_FALLBACK:
            _cbor5.check_encode_options(encode_options)
        cbor2.dumps(None, **encode_options)
        loads: Callable[..., Any] = _cbor5.loads if _SEMANTIC_FALLBACK else cbor2.loads
        loads(b"\xf6", **decode_options)
        self._max_frame_size = max_frame_size
        self._max_depth = max_depth
        self._options = cbor2_options
        self._dumps: Callable[[Any], bytes] = (
            functools.partial(cbor2.dumps, **encode_options) if encode_options else cbor2.dumps
        )
        # A pool of encoders, each used by one encode() at a time: encode_to_bytes()
        # on a kept encoder skips building one per item (15 to 25% of a small item).
        # Value sharing and string references keep state between the items one
        # encoder writes, so with them every item gets a fresh encoder (dumps).
        self._encode_options = encode_options
        self._encoders: list[Any] | None = (
            None
            if _STATEFUL_ENCODING & {k for k, v in encode_options.items() if v}
            or not hasattr(cbor2.CBOREncoder, "encode_to_bytes")
            else []
        )
        self._loads: Callable[[bytes | bytearray], Any] = functools.partial(
            loads, **decode_options
        )
        # CBORDecoder takes the same options except ``immutable``, which goes to decode().
        self._immutable: bool | None = decode_options.pop("immutable", None)
        stream_options.pop("immutable", None)
        self._stream_options = stream_options
        # The options of cbor2.loads: those of the CBORDecoder for checked items.
        self._plain_options = decode_options
        if _FAST:
            self._stream_decoder()  # CBORDecoder checks its options too

    @property
    def max_frame_size(self) -> int:
        """The largest item, in bytes on the wire, accepted on encode and decode."""
        return self._max_frame_size

    @property
    def max_depth(self) -> int:
        """The deepest nesting accepted on decode."""
        return self._max_depth

    def encode(self, item: Any) -> bytes:
        """Return ``item`` as one CBOR item (what ``cbor2.dumps`` gives).

        Raises ``FrameTooLarge`` (``local=True``) when the item exceeds
        ``max_frame_size``. cbor2's encoding errors are re-raised as ``TypeError``
        (a type cbor2 cannot encode: give a ``default`` hook) or ``ValueError``
        (a value it refuses, such as a cycle without ``value_sharing``), with
        cbor2's exception as the ``__cause__``. Nothing is returned in any case.
        """
        encoders = self._encoders
        try:
            if encoders is None:
                data = self._dumps(item)
            else:
                try:
                    encoder = encoders.pop()
                except IndexError:  # every pooled encoder is busy in another thread or call
                    encoder = cbor2.CBOREncoder(BytesIO(), **self._encode_options)
                data = encoder.encode_to_bytes(item)
                encoders.append(encoder)  # an encoder that raised is dropped
        except cbor2.CBOREncodeError as exc:
            if isinstance(exc, cbor2.CBOREncodeTypeError) or str(exc).startswith(
                "cannot encode type"
            ):
                # cbor2 5 words it "cannot serialize type ...".
                message = str(exc).replace("cannot serialize type", "cannot encode type", 1)
                raise TypeError(message) from exc
            raise ValueError(str(exc)) from exc
        except RecursionError as exc:  # cbor2 5's pure-Python encoder (Pyodide's)
            raise ValueError(
                f"cannot encode an item nested this deep with cbor2 {_cbor5.version()}: "
                "its pure-Python encoder stops at Python's recursion limit (about 170 levels)"
            ) from exc
        if len(data) > self._max_frame_size:
            raise FrameTooLarge(len(data), self._max_frame_size, local=True)
        return data

    def encode_many(self, items: Sequence[Any]) -> bytes:
        """Return the items of ``items``, one after the other: ``b"".join(map(encode, items))``.

        Encodes them with one call per item and no Python code in between, then checks
        the total against ``max_frame_size``: within it, no item can exceed it. Over
        it, or when an item fails, encodes them one by one with
        [`encode`][wsframed.codecs.CborCodec.encode], so the error raised (for the
        first item refused, nothing returned) is exactly what ``encode`` raises.
        """
        encoders = self._encoders
        try:
            if encoders is None:
                data = b"".join(map(self._dumps, items))
            else:
                try:
                    encoder = encoders.pop()
                except IndexError:
                    encoder = cbor2.CBOREncoder(BytesIO(), **self._encode_options)
                data = b"".join(map(encoder.encode_to_bytes, items))
                encoders.append(encoder)  # an encoder that raised is dropped
        except Exception:
            data = None
        if data is not None and len(data) <= self._max_frame_size:
            return data
        encode = self.encode
        return b"".join([encode(item) for item in items])

    def decoder(self) -> CborDecoder:
        """Return a fresh decoder for one connection."""
        return CborDecoder(self)

    def _stream_decoder(self) -> tuple[Any, Callable[[], Any]]:
        """A CBORDecoder with the codec's options, and its ``decode`` method to call."""
        decoder = cbor2.CBORDecoder(BytesIO(), read_size=_READ_SIZE, **self._stream_options)
        if self._immutable is None:
            return decoder, decoder.decode
        return decoder, functools.partial(decoder.decode, immutable=self._immutable)

    def _plain_decoder(self) -> tuple[Any, Callable[[], Any]]:
        """A CBORDecoder with the options of ``cbor2.loads``, and its ``decode`` to call."""
        decoder = cbor2.CBORDecoder(BytesIO(), read_size=_READ_SIZE, **self._plain_options)
        if self._immutable is None:
            return decoder, decoder.decode
        return decoder, functools.partial(decoder.decode, immutable=self._immutable)

    def __repr__(self) -> str:
        shown = "".join(f", {name}={value!r}" for name, value in sorted(self._options.items()))
        if self._trusted:
            shown = f", trusted_peer=True{shown}"
        return (
            f"CborCodec(max_frame_size={self._max_frame_size}, max_depth={self._max_depth}{shown})"
        )


class CborDecoder:
    """Decoding state of one connection; made by
    [`CborCodec.decoder`][wsframed.codecs.CborCodec.decoder].

    Iteration yields every complete item buffered so far and stops when the rest of
    an item is still to come, remembering where its scan stopped. When the scan stops
    at a definite-length string still missing 128 KiB or more, the chunks fed next are
    only collected, and joined to the buffer in one copy once the string is complete.
    """

    __slots__ = (
        "_base",
        "_buf",
        "_codec",
        "_count",
        "_error",
        "_marks",
        "_plain",
        "_rope",
        "_scan",
        "_scanning",
        "_stack",
        "_start",
        "_stream",
        "_want",
    )

    def __init__(self, codec: CborCodec) -> None:
        self._codec = codec
        # The CBORDecoder of the fast path and its decode method, made on first use.
        self._stream: tuple[Any, Callable[[], Any]] | None = None
        # The CBORDecoder that decodes the items _plain_run checked, made on first use.
        self._plain: tuple[Any, Callable[[], Any]] | None = None
        # The buffer is a bytes object while it holds one received chunk (no copy, and
        # slices go to cbor2 without another), a bytearray while bytes accumulate.
        self._buf: bytes | bytearray = b""
        self._base = 0  # stream offset of _buf[0]
        self._start = 0  # where the item in progress starts in _buf
        # The scanner's state for the item at _start, once it owns it: where to
        # resume, how many items the innermost open container still needs (1 at the
        # top), and the counts of the containers around it.
        self._scanning = False
        self._scan = 0
        self._count = 1
        self._stack: list[int] = []
        # The conversion policy's marks for the item being scanned (see _check_open),
        # or None when the codec has it off (trusted_peer=True).
        self._marks: list[int] | None = None if codec._trusted else []
        # Waiting for the rest of a long string (see _ROPE_MIN): the chunks fed since,
        # and the length _buf must reach; _rope is None otherwise.
        self._rope: Rope | None = None
        self._want = 0
        self._error: DecodeError | FrameTooLarge | None = None

    def feed(self, data: Buffer) -> None:
        """Append received bytes; they are decoded by the next iteration.

        Raises the stored error of a failed decoder.
        """
        if self._error is not None:
            raise self._error
        rope = self._rope
        if rope is not None:
            rope.append(data)
            return
        buf = self._buf
        if isinstance(buf, bytearray):
            buf += data
        elif not buf:
            self._buf = data if type(data) is bytes else bytes(data)
        elif len(buf) <= len(data):  # copying both costs at most twice the new data
            self._buf = buf + data
        else:
            grown = bytearray(buf)
            grown += data
            self._buf = grown

    def __iter__(self) -> Iterator[Any]:
        """Yield every complete item buffered so far; stop when more bytes are needed.

        Raises ``DecodeError`` for malformed data and ``FrameTooLarge`` for an item over
        ``max_frame_size``, after yielding the items before it; the decoder is then
        failed.
        """
        if self._error is not None:
            raise self._error
        rope = self._rope
        if rope is not None:  # waiting for the rest of a long string
            if len(self._buf) + rope.size < self._want:
                return
            self._buf = b"".join([self._buf, *rope.chunks])  # one copy; the scan goes on
            self._rope = None
        codec = self._codec
        limit = codec._max_frame_size
        max_depth = codec._max_depth
        loads = codec._loads
        marks = self._marks
        numeric = codec._numeric
        leaf = _LEAF if marks is None else _LEAF_CHECKED
        small = _SMALL
        slow_head = _slow_head
        stack = self._stack
        start = self._start
        scanning = self._scanning
        i = self._scan if scanning else start
        count = self._count
        # The fast path's window on the buffer (a BytesIO), its offset in the buffer
        # and its length, kept while the scanner takes an item from it.
        window: BytesIO | None = None
        offset = last = 0
        diverted = _DIVERTED
        while True:
            buf = self._buf  # feed() may have replaced it while we were suspended
            if not scanning and _FAST and start < len(buf):
                # Fast path: cbor2 delimits the items that have fully arrived, reading
                # a window of at most limit bytes, so every item it returns is within
                # the limit; an item the window cuts off goes to the scanner.
                if window is not None and start < offset + last:
                    # Back from the scanner, which took one item of the window: the
                    # window's bytes are still those of the buffer (bytes before
                    # start are dropped only when iteration stops), so read on.
                    fp = window
                    fp.seek(start - offset)
                else:
                    if window is not None:
                        window.close()
                    stop = start + limit
                    if len(buf) <= stop and type(buf) is bytes:
                        offset = 0
                        fp = BytesIO(buf)  # shares the bytes object, no copy
                        fp.seek(start)
                        last = len(buf)
                    else:
                        offset = start
                        with memoryview(buf) as view:
                            fp = BytesIO(view[start:stop])
                        last = min(len(buf), stop) - start
                    window = fp
                stream = self._stream
                if stream is None:
                    stream = self._stream = codec._stream_decoder()
                stream[0].fp = fp
                decode = stream[1]
                tell = fp.tell
                while True:
                    try:
                        item = decode()
                    except cbor2.CBORDecodeEOF:
                        scanning = True  # the item at start is cut off: scan it
                        break
                    except Exception as exc:
                        if marks is None:
                            raise self._fail_decode(exc, start) from exc
                        # A map key, set element or numeric tag that the codec's
                        # CBORDecoder stops at (see CborCodec.__init__), or a
                        # malformed item: see below.
                        item = diverted
                    if item is diverted:
                        # Items with integer keys, and the plain items after them,
                        # are checked by _plain_run in one pass and decoded by a
                        # CBORDecoder without strict_hashable_types. Any other
                        # item goes to the scanner, which checks it (or says what
                        # is wrong with it), then cbor2.loads decodes it.
                        stop = _plain_run(buf, start, offset + last, max_depth)
                        if stop == start:
                            scanning = True
                            break
                        plain = self._plain
                        if plain is None:
                            plain = self._plain = codec._plain_decoder()
                        plain[0].fp = fp
                        fp.seek(start - offset)
                        plain_decode = plain[1]
                        while start < stop:
                            try:
                                item = plain_decode()
                            except Exception as exc:
                                raise self._fail_decode(exc, start) from exc
                            start = i = offset + tell()
                            self._start = i
                            yield item
                        if start != stop:  # pragma: no cover - cbor2 and the run disagree
                            raise self._fail(
                                DecodeError(
                                    "cbor2 read past the end of a checked item",
                                    offset=self._base + start,
                                )
                            )
                        if start >= offset + last:
                            break
                        # Setting fp drops what the CBORDecoder read ahead before
                        # it stopped; it reads on from the end of the run.
                        stream[0].fp = fp
                        continue
                    j = tell()
                    start = i = offset + j
                    self._start = i
                    yield item
                    if j >= last:  # the window is done; more may have been fed meanwhile
                        break
                if not scanning:
                    fp.close()  # do not keep the buffer alive between feeds
                    window = None
                    continue
                buf = self._buf
            # The scanner, on the item at start (resumed where it stopped).
            end = len(buf)
            if end - start > limit:  # the scan never needs more than limit + 1 bytes
                end = start + limit + 1
            complete = False
            try:
                if count > _IN_STRING:  # resuming inside an indefinite-length string
                    what, i, count = _string_chunks(buf, i, end, start, limit, count, stack)
                    if what == _ENDED:
                        count = _close(count, stack)
                        complete = not count
                    heads = not complete and what == _ENDED
                else:
                    heads = True
                while heads:
                    if i >= end:
                        break
                    ib = buf[i]
                    size = leaf[ib]
                    if size:
                        j = i + size
                        if j > end:
                            break
                        i = j
                    else:
                        entries = small[ib]
                        if entries:
                            if len(stack) >= max_depth:
                                raise _too_deep(max_depth)
                            if marks is not None and (marks or ib >= 0xA0):
                                _check_open(
                                    buf,
                                    i,
                                    i + 1,
                                    end,
                                    ib >> 5,
                                    -1,
                                    count,
                                    marks,
                                    len(stack),
                                    numeric,
                                )
                            stack.append(count)
                            count = entries
                            i += 1
                            continue
                        if marks:
                            # Drop the marks of containers that ended; a check applies
                            # to a head that is a key or element of the innermost map
                            # or set, or anywhere inside a numeric tag.
                            depth = len(stack)
                            while marks and marks[-1] >> 2 > depth:
                                marks.pop()
                            mark = marks[-1] if marks else -1
                            checked = mark >= 0 and (
                                mark >> 2 == depth or mark & 3 == _NUMERIC_MARK
                            )
                        else:
                            checked = False
                        if checked:
                            tag = -1
                        elif ib == 0x80 or ib == 0xA0:  # nothing to check: a leaf
                            tag = -2
                        elif 0xC0 <= ib < 0xD8:  # a tag under 24: no check but these
                            tag = ib - 0xC0
                        elif ib == 0xD8 and i + 2 <= end:
                            tag = buf[i + 1]
                        elif ib == 0xD9 and i + 3 <= end:
                            tag = buf[i + 1] << 8 | buf[i + 2]
                        else:
                            tag = -1
                        if tag == -2:
                            i += 1
                        elif tag >= 0 and tag != _SET and tag not in numeric:
                            if len(stack) >= max_depth:
                                raise _too_deep(max_depth)
                            stack.append(count)
                            count = 1
                            i += 1 if ib < 0xD8 else ib - 0xD6
                            continue
                        else:
                            j = 0
                            if tag > 0 and tag != _SET and len(stack) + 2 <= max_depth:
                                # A numeric tag (4, 5, 30) over two integers within 64
                                # bits, the usual decimal: nothing in it to check.
                                k = i + (1 if ib < 0xD8 else ib - 0xD6)
                                if k + 2 < end and buf[k] == 0x82:
                                    first = buf[k + 1]
                                    size = leaf[first] if first < 0x40 else 0
                                    k += 1 + size
                                    if size and k < end:
                                        second = buf[k]
                                        size = leaf[second] if second < 0x40 else 0
                                        if size and k + size <= end:
                                            j = k + size
                            if j:
                                i = j
                            else:
                                what, i, count = slow_head(
                                    buf,
                                    i,
                                    end,
                                    start,
                                    limit,
                                    count,
                                    stack,
                                    max_depth,
                                    marks,
                                    numeric,
                                )
                                if what == _OPENED:
                                    continue
                                if what == _MORE:
                                    break
                    # An item ended at i: count it in its container, closing the
                    # containers it completes; the top item ends with the stack empty.
                    count -= 1
                    if count:
                        continue
                    while stack:
                        count = stack.pop() - 1
                        if count:
                            break
                    else:
                        complete = True
                        break
            except _Malformed as exc:
                message = str(exc)
                if exc.at is not None:
                    message = f"{message}; the head at stream offset {self._base + exc.at}"
                raise self._fail(DecodeError(message, offset=self._base + start)) from None
            except FrameTooLarge as exc:
                raise self._fail(exc) from None
            if not complete:
                if end - start >= limit:  # the item needs at least one byte more
                    raise self._fail(FrameTooLarge(end - start + 1, limit, at_least=True))
                if window is not None:
                    window.close()
                self._save(start, i, count)
                return
            if i - start > limit:
                raise self._fail(FrameTooLarge(i - start, limit))
            if type(buf) is bytes:
                data: bytes = buf[start:i]
            else:  # one copy, to bytes: cbor2 reads bytes far faster than a bytearray
                with memoryview(buf) as view:
                    data = bytes(view[start:i])
            try:
                item = loads(data)
            except Exception as exc:
                raise self._fail_decode(exc, start) from exc
            start = i
            count = 1
            scanning = False
            if marks:
                marks.clear()
            self._start = i
            self._count = 1
            self._scanning = False
            yield item

    def feed_eof(self) -> None:
        """Mark the end of the stream.

        Raises ``IncompleteFrame`` if part of an item is pending (the decoder is then
        failed), or the stored error of a failed decoder. Call it after iterating.
        """
        if self._error is not None:
            raise self._error
        rope = self._rope
        pending = len(self._buf) + (rope.size if rope else 0) - self._start
        if pending > 0:
            self._error = IncompleteFrame(pending, offset=self._base + self._start)
            raise self._error

    def _save(self, start: int, scan: int, count: int) -> None:
        """Keep the scan of the incomplete item at ``start``; drop the bytes before it."""
        buf = self._buf
        if start:
            if start >= len(buf):
                self._buf = b""
            elif isinstance(buf, bytearray):
                del buf[:start]
            else:
                self._buf = buf[start:]
            self._base += start
            scan -= start
        self._start = 0
        self._scan = scan
        self._count = count
        # The scanner keeps the item it started: handing it back to cbor2 on every
        # feed would read a trickling item again and again.
        self._scanning = bool(self._buf)
        if self._scanning and count <= _IN_STRING:
            want = _string_end(self._buf, scan)
            if want - len(self._buf) >= _ROPE_MIN:  # a long string: collect the rest
                self._rope = Rope()
                self._want = want

    def _fail_decode(self, exc: Exception, start: int) -> DecodeError:
        """Fail with a DecodeError for an exception cbor2 (or a hook) raised."""
        error = DecodeError(
            f"invalid CBOR item: {type(exc).__name__}: {exc}", offset=self._base + start
        )
        self._fail(error)
        return error

    def _fail(self, error: DecodeError | FrameTooLarge) -> DecodeError | FrameTooLarge:
        """Store ``error`` for every later call and release the buffer."""
        self._error = error
        self._buf = b""
        self._rope = None
        self._stack.clear()
        if self._marks:
            self._marks.clear()
        self._stream = None
        self._plain = None
        return error

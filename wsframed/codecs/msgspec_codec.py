r"""Typed frames: msgpack or JSON decoded straight into a type, with msgspec.

[`MsgspecCodec`][wsframed.codecs.MsgspecCodec] encodes with msgspec's encoders and decodes
every frame with a msgspec decoder built for ``type``: a ``msgspec.Struct``, a
dataclass, a ``TypedDict``, a tagged union of Structs, ``list[int]``... or ``Any``
for untyped values. A frame that does not match the type is refused when it arrives,
with the frame's stream offset and msgspec's path to the wrong field (``$.params[1]``).

msgspec decodes whole buffers only (it has no incremental decoder), so the frame
boundaries come from wsframed's framing, and each frame is decoded once:

``format="msgpack"`` (``framing="self"``, the default)
    A plain msgpack object stream, wire-compatible with
    [`MsgpackCodec`][wsframed.codecs.MsgpackCodec], ``msgpack.packb`` and any msgpack peer.
    An ``Unpacker`` that only skips (builds nothing) finds where each object ends;
    the object's bytes then go to msgspec.
``format="json"`` (``framing="lines"``, the default)
    JSON Lines over [`LinesCodec`][wsframed.codecs.LinesCodec]: what
    [`JsonLinesCodec`][wsframed.codecs.JsonLinesCodec] and ``json.dumps(x, separators=(",", ":"),
    ensure_ascii=False) + "\n"`` produce, except for some floats (msgspec writes
    ``1e16`` and ``0.00001`` where ``json`` writes ``1e+16`` and ``1e-05``; both read
    back as the same float) and NaN and infinities, written as ``null``. Blank lines are
    skipped.
``framing="length"`` (either format)
    Each payload behind a 4-byte big-endian length, as
    [`LengthPrefixedCodec`][wsframed.codecs.LengthPrefixedCodec] frames it: for JSON texts
    that may contain newlines, or peers that length-prefix everything.

Limits
------
``max_frame_size`` (1 MiB for msgpack and length-prefixed frames, 64 KiB for JSON
Lines, as the untyped codecs) counts one frame's payload, on encode (``FrameTooLarge``
with ``local=True``, nothing returned) and on decode (refused before the frame is
buffered in full; a msgpack header declaring a body over the limit fails at the
header). msgspec builds only what a whole frame holds, so a frame costs memory and
time linear in its size; nesting deeper than the interpreter's recursion limit is a
[`DecodeError`][wsframed.errors.DecodeError]. With ``type=Any`` a msgpack map may have
array keys (decoded as tuples), which a peer can choose to share one hash; the
codec refuses such a frame when it holds more than 32 colliding keys (see
``_check_keys``), as [`MsgpackCodec`][wsframed.codecs.MsgpackCodec] does.

Errors
------
A frame that is malformed, or does not match ``type``, raises
[`DecodeError`][wsframed.errors.DecodeError] (msgspec's exception is the ``__cause__``);
one that does not match is an [`InvalidFrame`][wsframed.codecs.InvalidFrame], whose
``path`` is msgspec's path to the field. ``offset`` is where the frame starts in the
stream. JSON Lines resynchronise at the next line, with
[`LinesCodec`][wsframed.codecs.LinesCodec]'s tolerance for bad lines; a msgpack or
length-prefixed stream does not (as the untyped codecs): the decoder is then failed
and re-raises the same error.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Literal, TypeVar, overload

try:
    import msgspec
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "wsframed.codecs.MsgspecCodec needs msgspec: pip install 'wsframed[msgspec]'"
    ) from exc

import msgpack  # type: ignore[import-untyped]

from ..errors import DecodeError, FrameTooLarge, IncompleteFrame, WsFramedError
from .base import Buffer
from .jsonl import nested_past_parser
from .length import LengthPrefixedCodec, LengthPrefixedDecoder
from .lines import LinesCodec, LinesDecoder
from .msgpack import declared_size

__all__ = ["Format", "Framing", "InvalidFrame", "MsgspecCodec", "MsgspecDecoder"]

T = TypeVar("T")

Format = Literal["msgpack", "json"]
"""The encoding of a frame's payload."""
Framing = Literal["self", "lines", "length"]
"""How frames are delimited: msgpack's own, ``\\n``, or a length header."""

_NL = b"\n"
_JSON_SPACE = b" \t\r"  # what JSON allows around a value, besides the line's \n
_REASON_MAX = 200  # characters of msgspec's message kept in an error
_MODULE_PREFIX = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])")
_PATH = re.compile(r" - at `(\$[^`]*)`$")
_SHARED_HASHES_MAX = 32  # colliding map keys refused past this many (type=Any)
_DEFAULT_LIMITS = {"self": 1024 * 1024, "lines": 64 * 1024, "length": 1024 * 1024}
# A lone bytes chunk up to this size, fed to an idle msgpack decoder, is first
# decoded whole (one message per frame is common); see MsgspecDecoder.
_FAST_MAX = 16 * 1024
# Lines longer than this have their brackets counted (see jsonl.nested_past_parser).
_DEPTH_LINE = 256
# The most frames decoded in one msgspec call (see MsgspecDecoder._frames): as many
# as Framed decodes ahead of its caller.
_BATCH = 256


class InvalidFrame(DecodeError):
    """A well-formed frame whose value does not match the codec's type.

    ``path`` is msgspec's path to the offending value (``"$.params[1]"``), or ``None``
    when the frame as a whole is wrong (``"$"``); ``offset`` is where the frame starts
    in the stream. The peer sent it.
    """

    def __init__(self, message: str, *, path: str | None, offset: int | None = None):
        self.path = path
        super().__init__(message, offset=offset)


class MsgspecCodec(Generic[T]):
    """Frames decoded into ``type`` and encoded by msgspec; see the module documentation.

    Args:
        type: What every received frame must be (anything msgspec accepts: a
            ``Struct``, a dataclass, a ``TypedDict``, a union of tagged Structs,
            ``list[int]``...); ``Any`` (the default) for untyped values.
        format: ``"msgpack"`` (default) or ``"json"``.
        framing: ``"self"`` (msgpack's own boundaries; the default for msgpack),
            ``"lines"`` (JSON Lines; the default for JSON) or ``"length"`` (a 4-byte
            big-endian length before each payload).
        max_frame_size: The largest payload in bytes, on encode and on decode.
            Default: 1 MiB, 64 KiB for JSON Lines.
        strict: msgspec's ``strict``: ``False`` lets strings convert to numbers and
            the like.
        enc_hook: msgspec's ``enc_hook``, for types msgspec cannot encode itself.
        dec_hook: msgspec's ``dec_hook``, for custom types in ``type``.

    The codec is immutable and may serve any number of connections.
    """

    __slots__ = (
        "_check_keys",
        "_decode",
        "_decode_batch",
        "_encode",
        "_encode_lines",
        "_format",
        "_framing",
        "_hooked",
        "_length",
        "_max_frame_size",
        "_type",
    )

    @overload
    def __init__(
        self: MsgspecCodec[T],
        type: type[T],
        format: Format = "msgpack",
        *,
        framing: Framing | None = None,
        max_frame_size: int | None = None,
        strict: bool = True,
        enc_hook: Callable[[Any], Any] | None = None,
        dec_hook: Callable[[type, Any], Any] | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: MsgspecCodec[Any],
        type: Any = Any,
        format: Format = "msgpack",
        *,
        framing: Framing | None = None,
        max_frame_size: int | None = None,
        strict: bool = True,
        enc_hook: Callable[[Any], Any] | None = None,
        dec_hook: Callable[[type, Any], Any] | None = None,
    ) -> None: ...

    def __init__(
        self,
        type: Any = Any,
        format: Format = "msgpack",
        *,
        framing: Framing | None = None,
        max_frame_size: int | None = None,
        strict: bool = True,
        enc_hook: Callable[[Any], Any] | None = None,
        dec_hook: Callable[[type, Any], Any] | None = None,
    ) -> None:
        if format == "msgpack":
            framing = "self" if framing is None else framing
            if framing not in ("self", "length"):
                raise ValueError(f"msgpack frames use framing 'self' or 'length', not {framing!r}")
            encoder: Any = msgspec.msgpack.Encoder(enc_hook=enc_hook)
            decoder: Any = msgspec.msgpack.Decoder(type, strict=strict, dec_hook=dec_hook)
            batch: Any = msgspec.msgpack.Decoder(list[type], strict=strict, dec_hook=dec_hook)
        elif format == "json":
            framing = "lines" if framing is None else framing
            if framing not in ("lines", "length"):
                raise ValueError(f"JSON frames use framing 'lines' or 'length', not {framing!r}")
            encoder = msgspec.json.Encoder(enc_hook=enc_hook)
            decoder = msgspec.json.Decoder(type, strict=strict, dec_hook=dec_hook)
            batch = None
        else:
            raise ValueError(f"format must be 'msgpack' or 'json', not {format!r}")
        if max_frame_size is None:
            max_frame_size = _DEFAULT_LIMITS[framing]
        if isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int):
            raise TypeError(
                f"max_frame_size must be an int, not {max_frame_size.__class__.__name__}"
            )
        if max_frame_size < 1:
            raise ValueError(f"max_frame_size must be at least 1, got {max_frame_size}")
        self._type = type
        self._hooked = dec_hook is not None
        self._format = format
        self._framing = framing
        self._max_frame_size = max_frame_size
        self._encode: Callable[[Any], bytes] = encoder.encode
        self._encode_lines: Callable[[Any], bytes] | None = (
            encoder.encode_lines if format == "json" else None
        )
        self._decode: Callable[[Buffer], T] = decoder.decode
        # msgpack: several frames decoded in one call, as an array (see MsgspecDecoder).
        self._decode_batch: Callable[[Buffer], list[T]] | None = (
            None if batch is None else batch.decode
        )
        self._length = LengthPrefixedCodec(max_frame_size=max_frame_size)
        # Untyped msgpack maps may have tuple keys (see the module's "Limits").
        self._check_keys = format == "msgpack" and _admits_tuple_keys(type)

    @property
    def max_frame_size(self) -> int:
        """The largest frame payload in bytes, on encode and decode (read-only)."""
        return self._max_frame_size

    @property
    def type(self) -> Any:
        """The type every received frame is decoded into (read-only)."""
        return self._type

    @property
    def format(self) -> Format:
        """``"msgpack"`` or ``"json"`` (read-only)."""
        return self._format

    @property
    def framing(self) -> Framing:
        """``"self"``, ``"lines"`` or ``"length"`` (read-only)."""
        return self._framing

    def __repr__(self) -> str:
        return (
            f"MsgspecCodec({_type_name(self._type)}, {self._format!r}, framing={self._framing!r},"
            f" max_frame_size={self._max_frame_size})"
        )

    def encode(self, item: T) -> bytes:
        r"""Return the wire bytes of ``item``: its msgpack or JSON, framed.

        Raises:
            FrameTooLarge: The payload exceeds ``max_frame_size`` (``local=True``).
            TypeError: msgspec cannot encode ``item`` (give an ``enc_hook``).
            ValueError: An integer out of msgpack's range, nesting too deep, or (JSON
                Lines) a ``msgspec.Raw`` value holding a raw ``\n``.
        """
        try:
            data = self._encode(item)
        except (OverflowError, RecursionError) as exc:
            raise ValueError(f"cannot encode as {self._format}: {exc}") from exc
        limit = self._max_frame_size
        if len(data) > limit:
            raise FrameTooLarge(len(data), limit, local=True)
        framing = self._framing
        if framing == "self":
            return data
        if framing == "lines":
            # msgspec escapes every control character: only a msgspec.Raw can hold one.
            if 10 in data:
                raise ValueError("the JSON text of a line must not contain '\\n'")
            return data + _NL
        return self._length.encode(data)

    def encode_many(self, items: Sequence[T]) -> bytes:
        r"""Return the frames of ``items``, one after the other: ``b"".join(map(encode, items))``.

        msgpack frames are encoded in one msgspec call, as an array whose header is then
        dropped (an array's items are their own encodings, one after the other); JSON
        Lines with msgspec's ``encode_lines``. When that fails, or a frame may exceed
        ``max_frame_size``, the items are encoded one by one, so what is raised (for the
        first item [`encode`][wsframed.codecs.MsgspecCodec.encode] refuses, nothing
        returned) is exactly what ``encode`` raises.
        """
        count = len(items)
        framing = self._framing
        if count > 1 and framing != "length":
            limit = self._max_frame_size
            try:
                if framing == "self":
                    data = self._encode(items if type(items) is list else list(items))
                    data = data[1 if count < 16 else 3 if count < 0x10000 else 5 :]
                    if len(data) <= limit:
                        return data
                else:
                    assert self._encode_lines is not None
                    data = self._encode_lines(items)
                    # msgspec escapes every control character: only a msgspec.Raw can
                    # hold a raw newline (encode() refuses it).
                    if data.count(_NL) == count and (
                        len(data) - count <= limit or max(map(len, data.split(_NL))) <= limit
                    ):
                        return data
            except Exception:  # encode() below raises the item's own error
                pass
        encode = self.encode
        return b"".join([encode(item) for item in items])

    def decoder(self) -> MsgspecDecoder[T]:
        """Return a fresh decoder for one connection."""
        return MsgspecDecoder(self)


def _type_name(tp: Any) -> str:
    """``tp`` as written in code, without module prefixes: ``Add | Echo``, ``list[int]``."""
    if isinstance(tp, type):
        return tp.__qualname__
    return _MODULE_PREFIX.sub("", repr(tp))


def _admits_tuple_keys(tp: Any) -> bool:
    """Whether a msgpack map decoded for ``tp`` may have tuple (or frozenset) keys.

    True when ``Any`` (or ``object``) appears anywhere in the type, or a ``dict``'s
    key type holds a tuple, a frozenset or a custom type.
    """
    compound = (
        msgspec.inspect.AnyType,
        msgspec.inspect.TupleType,
        msgspec.inspect.VarTupleType,
        msgspec.inspect.NamedTupleType,
        msgspec.inspect.FrozenSetType,
        msgspec.inspect.CustomType,
    )
    seen: set[int] = set()

    def walk(node: Any, key: bool) -> bool:
        if isinstance(node, msgspec.inspect.AnyType) or (key and isinstance(node, compound)):
            return True
        if id(node) in seen:  # a recursive type: already walked
            return False
        seen.add(id(node))
        if isinstance(node, msgspec.inspect.DictType | msgspec.inspect.FrozenDictType):
            return walk(node.key_type, True) or walk(node.value_type, key)
        children: list[Any] = []
        for name in ("item_type", "types", "item_types", "fields"):
            value = getattr(node, name, None)
            if value is None:
                continue
            if isinstance(value, tuple):
                children.extend(value)
            else:
                children.append(value)
        return any(
            walk(child.type if isinstance(child, msgspec.inspect.Field) else child, key)
            for child in children
        )

    return walk(msgspec.inspect.type_info(tp), False)


# The map headers that can hold more than _SHARED_HASHES_MAX entries (map 16, map 32).
_BIG_MAPS = (0xDE, 0xDF)
_BIG_MAP_BYTE = re.compile(b"[\xde\xdf]")


def _tuple_keys_pairs(pairs: list[tuple[Any, Any]]) -> None:
    """msgpack's ``object_pairs_hook`` for ``_check_keys``: builds no map."""
    if len(pairs) > _SHARED_HASHES_MAX:
        keys = [key for key, _ in pairs if type(key) is tuple]
        if len(keys) - len({hash(key) for key in keys}) > _SHARED_HASHES_MAX:
            raise _Collisions(len(pairs))


class _Collisions(Exception):
    """A map with too many array keys sharing a hash (see ``_check_keys``)."""


def _check_keys(frame: bytes) -> str | None:
    """Refuse a msgpack frame with a map of many array keys that share one hash.

    A peer can choose thousands of distinct arrays of integers with one Python hash;
    decoded as tuple keys into one dict they cost time quadratic in their number
    (64 KiB: 0.18 s; 1 MiB: about 40 s). Only a map 16/32 can hold more than 32
    keys, so frames without those header bytes are let through at the cost of two
    byte searches; the others are walked once by msgpack's C unpacker, which builds
    no map and counts the distinct hashes of each big map's array keys (linear).
    Returns the reason to refuse the frame, or ``None``.
    """
    if _BIG_MAPS[0] not in frame and _BIG_MAPS[1] not in frame:
        return None
    try:
        msgpack.unpackb(
            frame,
            raw=True,
            use_list=False,
            strict_map_key=False,
            object_pairs_hook=_tuple_keys_pairs,
        )
    except _Collisions as exc:
        return (
            f"a map of {exc.args[0]} entries has more than {_SHARED_HASHES_MAX} array keys"
            " that share their hash with another key"
        )
    except Exception:  # anything else: msgspec's decoder decides
        return None
    return None


def _keys_pass(buf: bytearray, first: int, ends: list[int]) -> bool:
    """Whether ``_check_keys`` passes every frame of ``buf`` from ``first`` to each of ``ends``.

    Only the frames holding a map 16/32 header byte are checked, each once: a search
    from ``first`` finds the next such byte, the frame holding it is checked, and the
    search resumes at that frame's end. The cost is a search per checked frame, never
    more than the frames one by one.
    """
    search = _BIG_MAP_BYTE.search
    last = ends[-1]
    pos = first
    while (hit := search(buf, pos, last)) is not None:
        index = bisect_right(ends, hit.start())
        start = first if index == 0 else ends[index - 1]
        end = ends[index]
        if _check_keys(bytes(memoryview(buf)[start:end])) is not None:
            return False  # the frames one by one raise at this one
        pos = end
    return True


class MsgspecDecoder(Generic[T]):
    """Decoding state of a [`MsgspecCodec`][wsframed.codecs.MsgspecCodec] for one connection.

    Frames come from the codec's framing (a ``LinesDecoder``,
    a ``LengthPrefixedDecoder``, or the msgpack
    scanner below), each decoded once by msgspec.

    msgpack: received bytes are kept in one buffer; a ``msgpack.Unpacker`` used only
    with ``skip()`` is fed pieces of it that keep the object in progress within
    ``max_frame_size`` and reports where each object ends (``tell()``); the object's
    bytes go to msgspec. The unpacker keeps its state inside a partial object, so no
    byte is scanned twice. The complete objects found in one pass are decoded in one
    msgspec call, as the items of an array (a header put before them): per frame
    this costs a ``skip()`` and a ``tell()`` instead of a decoder call, which makes
    many small frames (a ``send_all`` batch) cheaper to decode typed than untyped.

    Fast path: a ``bytes`` chunk of at most 16 KiB fed to an idle decoder is first
    decoded whole; when it holds exactly one valid frame (one message per frame),
    that is the frame, otherwise the chunk takes the usual path. With a ``dec_hook``
    neither the fast path nor batches are used, so the hook runs once per value.
    """

    __slots__ = (
        "_base",
        "_buf",
        "_check_keys",
        "_checked",
        "_decode",
        "_decode_batch",
        "_describe",
        "_error",
        "_fast",
        "_fed",
        "_format",
        "_inner",
        "_limit",
        "_pending",
        "_pending_from",
        "_ready",
        "_scanned",
        "_scanner",
        "_start",
        "_untyped",
    )

    def __init__(self, codec: MsgspecCodec[T]) -> None:
        self._decode = codec._decode
        # Untyped JSON lines are parsed to the end (a type may stop msgspec early): a
        # line nested past its reach is refused without parsing (see _lines).
        self._untyped = codec._type is Any or codec._type is object
        # With a dec_hook, no frame is decoded twice (a failed fast path or batch would
        # run the hook again for the frames it decoded): one msgspec call per frame.
        hooked = codec._hooked
        self._decode_batch = None if hooked else codec._decode_batch
        self._fast = not hooked
        self._format = codec._format
        self._limit = limit = codec._max_frame_size
        self._check_keys = codec._check_keys
        self._describe = _type_name(codec._type)
        self._error: WsFramedError | None = None
        self._inner: LinesDecoder[bytes] | LengthPrefixedDecoder | None = None
        if codec._framing == "lines":
            self._inner = LinesCodec(None, limit).decoder()
        elif codec._framing == "length":
            self._inner = codec._length.decoder()
        # msgpack framing: the buffer (stream offset of _buf[0] is _base; with length
        # framing, _base is where the next frame starts), where the
        # object in progress starts in it, how much of it the scanner was fed, the
        # object whose header passed the size check, and frames the fast path decoded.
        self._buf = bytearray()
        self._base = 0
        self._start = 0
        self._fed = 0
        self._checked = -1
        self._ready: list[T] = []
        self._scanner: Any = None
        self._scanned = 0  # bytes fed to the scanner since it was made
        self._pending: list[int] = []  # see _frames
        self._pending_from = 0

    def feed(self, data: Buffer) -> None:
        """Append received bytes; raises the stored error of a failed decoder."""
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        inner = self._inner
        if inner is not None:
            inner.feed(data)
            return
        buf = self._buf
        if (
            not buf
            and not self._ready
            and type(data) is bytes
            and len(data) <= _FAST_MAX
            and len(data) <= self._limit
            and self._fast
            # A chunk not yet scanned may hold a partial object: _check_keys's
            # unpacker would preallocate for its array headers. Not tried then.
            and (not self._check_keys or (_BIG_MAPS[0] not in data and _BIG_MAPS[1] not in data))
        ):
            try:
                value = self._decode(data)
            except (msgspec.DecodeError, RecursionError):
                pass  # several frames, a part of one, or a bad one: the usual path
            else:
                self._ready.append(value)
                self._base += len(data)
                return
        buf += data

    def __iter__(self) -> Iterator[T]:
        """Yield every complete frame's value; stop when more bytes are needed.

        Raises:
            InvalidFrame: A frame does not match the type.
            DecodeError: A frame is malformed.
            FrameTooLarge: A frame exceeds ``max_frame_size``.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        inner = self._inner
        if isinstance(inner, LinesDecoder):
            return self._lines(inner)
        if inner is not None:
            return self._length_prefixed(inner)
        return self._msgpack()

    def _lines(self, lines: LinesDecoder[bytes]) -> Iterator[T]:
        decode = self._decode
        depth_line = _DEPTH_LINE if self._untyped else -1
        for line in lines:
            if not line:
                continue
            try:
                if 0 <= depth_line < len(line) and (
                    deep := nested_past_parser(line, line.count(b"[") + line.count(b"{"))
                ):
                    raise deep
                value = decode(line)
            except (msgspec.DecodeError, RecursionError) as exc:
                if not line.strip(_JSON_SPACE):  # whitespace only: a blank line
                    continue
                error = self._error_for(exc, lines._line_offset(len(line)))
                error.__cause__ = exc
                skipped = lines._skipped(error)
                raise skipped from skipped.__cause__
            yield value

    def _length_prefixed(self, frames: LengthPrefixedDecoder) -> Iterator[T]:
        decode = self._decode
        try:
            for frame in frames:
                # Frames follow each other with nothing between: each starts (its 4-byte
                # header) where the one before ended; _base counts them here.
                offset = self._base
                self._base = offset + 4 + len(frame)
                try:
                    value = decode(frame)
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise self._fail(self._error_for(exc, offset)) from exc
                yield value
        except FrameTooLarge as exc:  # the inner decoder is failed: so is this one
            self._error = exc
            raise

    def _msgpack(self) -> Iterator[T]:
        ready = self._ready
        while ready:
            yield ready.pop()  # at most one: see feed()
        self._compact()
        buf = self._buf
        if self._pending:  # complete frames an abandoned pass did not yield
            pending = self._pending[self._pending_from :]
            self._pending = []
            yield from self._frames(buf, pending)
        if not buf:
            return
        scanner = self._scanner
        if scanner is None:
            limit = self._limit
            self._scanner = scanner = msgpack.Unpacker(
                max_buffer_size=limit,
                read_size=min(limit, 16 * 1024),  # its first buffer (the default: 1 MiB)
                max_str_len=limit,
                max_bin_len=limit,
                max_ext_len=limit,
                max_array_len=limit,
                max_map_len=limit // 2,
            )
            self._scanned = 0
        skip = scanner.skip
        tell = scanner.tell
        while True:
            # Find every complete object the scanner was given; their ends in _buf.
            # tell() counts the bytes the scanner consumed, _fed those of _buf fed:
            # an object ends at stream offset shift + tell(), and shift stays put
            # while _refill() adds the same to _fed and _scanned.
            ends: list[int] = []
            shift = self._base + self._fed - self._scanned
            scan_error: Exception | None = None
            while True:
                try:
                    skip()
                except msgpack.OutOfData:
                    if ends or not self._refill(buf, self._start):
                        break
                    continue
                except Exception as exc:
                    scan_error = exc
                    break
                ends.append(shift + tell())
            if ends:
                yield from self._frames(buf, ends)
            if scan_error is not None:
                raise self._fail_scan(scan_error) from scan_error
            if not ends:
                break
        self._compact()

    def _frames(self, buf: bytearray, ends: list[int]) -> Iterator[T]:
        """Decode the complete objects from ``_start`` to each of ``ends`` (stream offsets).

        Up to ``_BATCH`` objects are decoded in one msgspec call, as the items of an
        array whose header is put before them: one call instead of one per frame. (Not
        more: the values of a whole 64 KiB chunk, alive at once, would be walked again
        and again by the garbage collector while the caller takes them.) A batch
        msgspec refuses is decoded frame by frame, which finds the bad one. The ends
        not yet yielded stay in ``_pending`` (from ``_pending_from``), for a pass
        abandoned part-way: the scanner is already past them.
        """
        base = self._base
        self._pending = ends
        self._pending_from = 0
        ends = [end - base for end in ends]
        decode_batch = self._decode_batch
        decode = self._decode
        check_keys = self._check_keys
        done = 0
        while done < len(ends):
            group = ends[done : done + _BATCH]
            first = self._start
            values: list[T] | None = None
            if (
                len(group) > 1
                and decode_batch is not None
                and (not check_keys or _keys_pass(buf, first, group))
            ):
                region = memoryview(buf)[first : group[-1]]
                batch = b"\xdd" + len(group).to_bytes(4, "big") + region
                del region
                try:
                    values = decode_batch(batch)
                except (msgspec.DecodeError, RecursionError):
                    values = None  # the frames one by one find the error below
            if values is not None:
                for value, end in zip(values, group, strict=True):
                    self._start = end
                    done += 1
                    self._pending_from = done
                    yield value
                continue
            for end in group:
                start = self._start
                frame = bytes(memoryview(buf)[start:end])
                if check_keys and (reason := _check_keys(frame)) is not None:
                    raise self._fail(DecodeError(reason, offset=self._base + start))
                try:
                    value = decode(frame)
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise self._fail(self._error_for(exc, self._base + start)) from exc
                self._start = end
                done += 1
                self._pending_from = done
                yield value
        self._pending = []

    def _compact(self) -> None:
        """Drop the bytes of the objects already yielded."""
        start = self._start
        if start and self._error is None:
            del self._buf[:start]
            self._base += start
            self._fed -= start
            self._start = 0
            if self._checked >= 0:
                self._checked -= start

    def _refill(self, buf: bytearray, start: int) -> bool:
        """Feed the scanner its next piece of ``buf``; ``False`` when none is left.

        The object in progress (from ``start``) never exceeds the limit in the
        scanner; its header is checked for a declared size over it first.
        """
        fed = self._fed
        limit = self._limit
        pending = fed - start
        if pending and self._checked != start:
            declared = declared_size(buf, start)
            if declared is not None:
                size, exact = declared
                if size > limit:
                    offset = self._base + start
                    raise self._fail(FrameTooLarge(size, limit, at_least=not exact, offset=offset))
                self._checked = start
        available = len(buf) - fed
        if not available:
            return False
        if pending >= limit:
            offset = self._base + start
            raise self._fail(FrameTooLarge(pending + 1, limit, at_least=True, offset=offset))
        size = min(available, limit - pending)
        self._scanner.feed(memoryview(buf)[fed : fed + size])
        self._fed = fed + size
        self._scanned += size
        return True

    def _fail_scan(self, exc: Exception) -> WsFramedError:
        offset = self._base + self._start
        if isinstance(exc, msgpack.StackError):
            reason = "msgpack object nested deeper than the scanner allows (1024 levels)"
            return self._fail(DecodeError(reason, offset=offset))
        if isinstance(exc, ValueError) and "exceeds max_" in str(exc):
            limit = self._limit
            return self._fail(FrameTooLarge(limit + 1, limit, at_least=True, offset=offset))
        return self._fail(DecodeError("malformed msgpack data", offset=offset))

    def _error_for(self, exc: Exception, offset: int) -> DecodeError:
        """The error for a frame at ``offset`` that msgspec refused with ``exc``."""
        if isinstance(exc, RecursionError):
            return DecodeError("frame nested too deeply for the parser", offset=offset)
        message = str(exc)
        if len(message) > _REASON_MAX:
            message = message[:_REASON_MAX] + "..."
        if isinstance(exc, msgspec.ValidationError):
            match = _PATH.search(str(exc))
            return InvalidFrame(
                f"frame does not match {self._describe}: {message}",
                path=match.group(1) if match else None,
                offset=offset,
            )
        return DecodeError(f"frame is not valid {self._format}: {message}", offset=offset)

    def _fail(self, error: WsFramedError) -> WsFramedError:
        """Store ``error`` for every later call and release the buffers."""
        self._error = error
        self._buf = bytearray()
        self._ready = []
        self._pending = []
        self._scanner = None
        self._inner = None
        return error

    def feed_eof(self) -> None:
        """Mark the end of the stream; ``IncompleteFrame`` if a frame is cut short."""
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        inner = self._inner
        if inner is not None:
            inner.feed_eof()
            return
        pending = len(self._buf) - self._start
        if pending:
            error = IncompleteFrame(pending, offset=self._base + self._start)
            raise self._fail(error).with_traceback(None)

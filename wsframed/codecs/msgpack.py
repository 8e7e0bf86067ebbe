"""A plain msgpack object stream: every frame is one msgpack object, nothing else.

Wire format: objects are concatenated exactly as msgpack streams them, with no
length prefix or separator of wsframed's own::

    +----------------+-------------+------------------+
    | 0x93 0x01 0x02 | 0xa3 "add"  | 0xc6 len32 bytes |  ...
    |   [1, 2]       |   "add"     |   b"..."         |
    +----------------+-------------+------------------+

so a [`MsgpackCodec`][wsframed.codecs.MsgpackCodec] talks to any msgpack peer: a msgpack-RPC
server, Neovim's RPC API, or a ``msgpack.Unpacker`` fed from a socket. Encoding uses
``msgpack.Packer``, decoding ``msgpack.Unpacker``; their options pass through
unchanged and keep msgpack's own defaults (``use_bin_type=True``, ``raw=False``,
``strict_map_key=True``, lists for arrays), so ``codec.encode(x) ==
msgpack.packb(x)``.

Limits. ``max_frame_size`` (1 MiB by default) bounds the size of one object on the
wire, on both sides:

* encoding an object larger than the limit raises [`FrameTooLarge`][wsframed.errors.FrameTooLarge]
  with ``local=True``; nothing is returned, the codec stays usable.
* decoding measures the object in progress from the end of the last complete one.
  The decoder feeds the unpacker in pieces, never more than the limit allows, so the
  unpacker's buffer (``max_buffer_size``) is bounded by ``max_frame_size`` and
  msgpack's ``BufferFull`` never reaches you. This stops a peer that streams one
  endless object (a huge array of small integers, a never-finished string) from
  growing memory without bound: the decoder fails with ``FrameTooLarge`` as soon as
  the object passes the limit.
* a bin/str/ext/array/map header that declares a size over the limit at the start
  of an object fails at the header, before any of its body is buffered. This stops
  a peer from announcing a 4 GiB body (``0xc6 ff ff ff ff``) and trickling it in.
  A header nested inside an object fails once the frame in progress passes the
  limit: until then the object is held as bytes, at most ``max_frame_size`` of them.
* the unpacker that builds objects only ever parses whole objects: a second
  unpacker, which skips over objects and builds nothing, counts the complete ones
  first (see ``MsgpackDecoder``). msgpack preallocates a list for each array
  header before the items arrive, so parsing a partial object of nested array
  headers would hold about 15,000 times its size in memory; a whole one cannot,
  since each slot costs at least a byte of the frame.
* nesting deeper than the C unpacker's fixed stack (1024 levels) is a
  [`DecodeError`][wsframed.errors.DecodeError]; no recursion error, no hang.

Encoding keeps a few ``Packer`` objects per codec, each used by one call at a time,
so one codec serves many connections and threads. A decoder holds one connection's
state and is not meant to be shared between threads.

Map keys. With the default ``strict_map_key=True`` keys are ``str`` or ``bytes``,
whose hashes Python randomises. ``strict_map_key=False`` also admits numbers (a
64-bit int or a float shares its hash with a few dozen others at most) and, with
``use_list=False``, tuples, which can be combined into thousands of distinct keys
with one hash: building such a map takes time quadratic in its size (a 288 KB map
took 0.6 s, 1 MiB about 8 s). With that combination (and no ``object_pairs_hook``)
the codec builds maps itself and refuses, as a ``DecodeError``, a map in which more
than 32 keys share their hash with another key (equal keys included), after
counting the distinct hashes in linear time; an ``object_hook`` then receives the
dict built.

After an error. A msgpack stream cannot be resynchronised: after a
``DecodeError`` or ``FrameTooLarge`` the decoder is failed and re-raises the same
error object from every later iteration, ``feed`` and ``feed_eof``, at constant cost
(its traceback is reset each time, so a retry loop does not grow it). Errors raised
by your hooks (``ext_hook``, ``object_hook``, ...), by msgpack's own conversions (a
Timestamp with nanoseconds over 999,999,999, or out of ``datetime``'s range with
``timestamp=3``) and invalid UTF-8 also fail the decoder as a ``DecodeError`` whose
``__cause__`` is the original exception (its message cut to 200 characters).
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any

import msgpack  # type: ignore[import-untyped]

from ..errors import DecodeError, FrameTooLarge, IncompleteFrame
from .base import Buffer
from .rope import Rope

__all__ = ["MsgpackCodec", "MsgpackDecoder"]

_PACKER_OPTIONS = frozenset(
    {
        "default",
        "use_single_float",
        "use_bin_type",
        "strict_types",
        "datetime",
        "unicode_errors",
        "buf_size",
    }
)
_UNPACKER_OPTIONS = frozenset(
    {
        "use_list",
        "raw",
        "timestamp",
        "strict_map_key",
        "object_hook",
        "object_pairs_hook",
        "list_hook",
        "unicode_errors",
        "ext_hook",
    }
)
# Options the codec sets itself: limits come from max_frame_size, and a Packer must
# reset after every object for encode() to return exactly one frame.
_OWNED_OPTIONS = frozenset(
    {
        "max_buffer_size",
        "max_str_len",
        "max_bin_len",
        "max_array_len",
        "max_map_len",
        "max_ext_len",
        "read_size",
        "file_like",
        "autoreset",
    }
)

# Headers that declare a length: type byte -> (length bytes, header size, bytes per
# unit, exact). The smallest object such a header can start is
# ``header size + units * bytes per unit``: a bin/str/ext body is exactly that long,
# and every element of an array (key and value of a map) takes at least one byte.
_SIZED_HEADERS: dict[int, tuple[int, int, int, bool]] = {
    0xC4: (1, 2, 1, True),  # bin 8
    0xC5: (2, 3, 1, True),  # bin 16
    0xC6: (4, 5, 1, True),  # bin 32
    0xC7: (1, 3, 1, True),  # ext 8 (length, then the ext type byte)
    0xC8: (2, 4, 1, True),  # ext 16
    0xC9: (4, 6, 1, True),  # ext 32
    0xD9: (1, 2, 1, True),  # str 8
    0xDA: (2, 3, 1, True),  # str 16
    0xDB: (4, 5, 1, True),  # str 32
    0xDC: (2, 3, 1, False),  # array 16
    0xDD: (4, 5, 1, False),  # array 32
    0xDE: (2, 3, 2, False),  # map 16
    0xDF: (4, 5, 2, False),  # map 32
}


# Sizes of the objects whose type byte alone fixes them (ints, floats, fixext).
_FIXED_SIZES = {0xCA: 5, 0xCB: 9, 0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9, 0xD0: 2, 0xD1: 3}
_FIXED_SIZES.update({0xD2: 5, 0xD3: 9, 0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18})


def _fixed_size(type_byte: int) -> tuple[int, bool]:
    """The smallest object a header without a length field can start, and if exact."""
    if 0x80 <= type_byte <= 0x8F:  # fixmap
        return 1 + 2 * (type_byte & 0x0F), False
    if 0x90 <= type_byte <= 0x9F:  # fixarray
        return 1 + (type_byte & 0x0F), False
    if 0xA0 <= type_byte <= 0xBF:  # fixstr
        return 1 + (type_byte & 0x1F), True
    return _FIXED_SIZES.get(type_byte, 1), True


def declared_size(buf: bytes | bytearray, index: int) -> tuple[int, bool] | None:
    """The smallest size the msgpack object whose header is at ``buf[index]`` declares,
    and whether it is exact; ``None`` when the header has not fully arrived.

    Shared by the msgpack codecs' size checks (MsgpackCodec, MsgspecCodec).
    """
    if not 0 <= index < len(buf):
        return None
    type_byte = buf[index]
    spec = _SIZED_HEADERS.get(type_byte)
    if spec is None:
        return _fixed_size(type_byte)
    length_bytes, header, unit, exact = spec
    if len(buf) - index < 1 + length_bytes:
        return None
    count = int.from_bytes(buf[index + 1 : index + 1 + length_bytes], "big")
    return header + unit * count, exact


_REASON_MAX = 200  # characters of a hook's or msgpack's message kept in a DecodeError
_LIMIT_MESSAGE = re.compile(r"-?\d+ exceeds max_\w+_len\(\d+\)")

# Options whose callables run during decoding: with any of them the decoder never
# tries a message a second way (see MsgpackDecoder.feed), so no hook runs twice.
_HOOKS = frozenset({"object_hook", "object_pairs_hook", "list_hook", "ext_hook"})
# Unpacker options the fast path leaves out: unpackb() takes no buffer options, and
# derives its length limits from the chunk it decodes, which is never longer than
# max_frame_size there (so they are at least as strict). Fewer keywords, faster call.
_STREAM_ONLY = frozenset(
    {
        "max_buffer_size",
        "read_size",
        "max_str_len",
        "max_bin_len",
        "max_ext_len",
        "max_array_len",
        "max_map_len",
    }
)
# The options of the scanner (see MsgpackDecoder): the unpacker's limits.
_SCANNER_OPTIONS = _STREAM_ONLY
_NOTHING: Any = object()
# The fast path is tried on chunks up to this size: a one-object message is usually
# small, and a large chunk usually holds many objects, for which trying it would cost
# a copy of the rest of the chunk (msgpack's ExtraData) for nothing.
_FAST_MAX = 16 * 1024
# The type bytes of array 16/32 and map 16/32 headers: msgpack preallocates a list
# for each (up to 10,000 slots, 80 KB; a map only with object_pairs_hook) before
# their items arrive. The fast path decodes a chunk with at most _FAST_HEADERS of
# these bytes, so what it preallocates for an incomplete object, and frees at once,
# stays under 1 MB.
_PREALLOCATING = bytes([0xDC, 0xDD, 0xDE, 0xDF])
_FAST_HEADERS = 8
# An object of known size (bin, str, ext) that still misses this many bytes collects
# the chunks fed next in a list and goes to the unpacker when complete, skipping an
# unpacker feed and a failed unpack per chunk.
_ROPE_MIN = 128 * 1024


# With strict_map_key=False and use_list=False, a map may hold this many keys that
# share their hash with an earlier one (equal keys included); more is refused.
_SHARED_HASHES_MAX = 32


def _checked_map(object_hook: Callable[[dict[Any, Any]], Any] | None, pairs: list[Any]) -> Any:
    """Build a map whose keys may be tuples, refusing one of colliding keys.

    A peer can choose thousands of distinct tuples of numbers with one hash; inserting
    them into a dict costs time quadratic in their number. Counting distinct hashes
    first costs linear time.
    """
    if len(pairs) > _SHARED_HASHES_MAX:
        shared = len(pairs) - len({hash(key) for key, _ in pairs})
        if shared > _SHARED_HASHES_MAX:
            raise ValueError(
                f"map of {len(pairs)} entries where {shared} keys share their hash with"
                f" another key (at most {_SHARED_HASHES_MAX} allowed)"
            )
    result = dict(pairs)
    return result if object_hook is None else object_hook(result)


_new_tuple = tuple.__new__


def _ext_type(code: int, data: bytes) -> Any:
    """The codec's default ``ext_hook``: ``msgpack.ExtType(code, data)``, made faster.

    msgpack passes a code from -128 to 127 and ``bytes``; ``ExtType`` checks both in
    Python, then builds the namedtuple with a second Python call. A code from 0 to 127
    needs neither check. A negative code (reserved; -1, the timestamp, never comes
    here) still goes through ``ExtType``, which refuses it as before.
    """
    if code >= 0:
        return _new_tuple(msgpack.ExtType, (code, data))
    return msgpack.ExtType(code, data)


class MsgpackCodec:
    """A plain msgpack object stream (no prefix), interoperable with any msgpack peer.

    ``max_frame_size`` bounds one object's size on the wire, in bytes, when encoding
    and when decoding. Every other keyword argument goes to ``msgpack.Packer``
    (``default``, ``use_bin_type``, ``datetime``, ``use_single_float``,
    ``strict_types``, ``buf_size``) or ``msgpack.Unpacker`` (``raw``,
    ``strict_map_key``, ``ext_hook``, ``timestamp``, ``use_list``,
    ``object_hook``, ``object_pairs_hook``, ``list_hook``); ``unicode_errors``
    goes to both. The codec owns the unpacker's limits: passing
    ``max_buffer_size``, ``max_str_len``, ``max_bin_len``, ``max_array_len``,
    ``max_map_len``, ``max_ext_len``, ``read_size``, ``file_like`` or ``autoreset``
    is a ``TypeError``, as is any option msgpack does not know. Option values are
    checked once, here.

    The codec is immutable configuration and safe to share between connections and
    threads: it keeps a small pool of packers, each used by one ``encode`` call at a
    time, so concurrent or re-entrant calls (a ``default`` hook that encodes) never
    share a buffer.
    """

    __slots__ = (
        "_batch_packers",
        "_max_frame_size",
        "_packer_options",
        "_packers",
        "_shared",
        "_shown",
        "_unpacker_options",
    )

    def __init__(self, max_frame_size: int = 1024 * 1024, **options: Any) -> None:
        if not isinstance(max_frame_size, int) or isinstance(max_frame_size, bool):
            raise TypeError(f"max_frame_size must be an int, not {type(max_frame_size).__name__}")
        if max_frame_size < 1:
            raise ValueError(f"max_frame_size must be at least 1, got {max_frame_size}")
        packer_options: dict[str, Any] = {}
        unpacker_options: dict[str, Any] = {}
        for name, value in options.items():
            if name in _OWNED_OPTIONS:
                raise TypeError(
                    f"MsgpackCodec sets {name} itself, from max_frame_size; "
                    f"pass max_frame_size instead"
                )
            known = False
            if name in _PACKER_OPTIONS:
                packer_options[name] = value
                known = True
            if name in _UNPACKER_OPTIONS:
                unpacker_options[name] = value
                known = True
            if not known:
                raise TypeError(f"MsgpackCodec got an unexpected keyword argument {name!r}")
        shown = {**packer_options, **unpacker_options}
        if (
            not unpacker_options.get("strict_map_key", True)
            and not unpacker_options.get("use_list", True)
            and "object_pairs_hook" not in unpacker_options
        ):
            # Map keys may be tuples: check their hashes before building each map.
            hook = unpacker_options.pop("object_hook", None)
            unpacker_options["object_pairs_hook"] = functools.partial(_checked_map, hook)
        # msgpack's own ext_hook, ExtType, is two Python calls with checks; build the
        # same ExtType with one (see _ext_type).
        unpacker_options.setdefault("ext_hook", _ext_type)
        limit = max_frame_size
        # The codec's limits. Every element of an array takes at least one byte and
        # every entry of a map two, so no valid frame within the limit trips these;
        # they bound what a nested header can make the unpacker preallocate.
        unpacker_options.update(
            max_buffer_size=limit,
            read_size=min(limit, 16 * 1024),
            max_str_len=limit,
            max_bin_len=limit,
            max_ext_len=limit,
            max_array_len=limit,
            max_map_len=limit // 2,
        )
        self._max_frame_size = limit
        self._packer_options = packer_options
        self._unpacker_options = unpacker_options
        self._shared = _Shared(unpacker_options)
        self._shown = shown
        # Building one of each checks the option values now rather than mid-stream.
        self._packers: list[Any] = [msgpack.Packer(**packer_options)]
        self._batch_packers: list[Any] = []  # autoreset=False, for encode_many
        msgpack.Unpacker(**unpacker_options)

    @property
    def max_frame_size(self) -> int:
        """The largest object, in bytes on the wire, accepted on encode and decode."""
        return self._max_frame_size

    def encode(self, item: Any) -> bytes:
        """Return ``item`` packed as one msgpack object (what ``msgpack.packb`` gives).

        Raises ``FrameTooLarge`` (``local=True``) when the packed object exceeds
        ``max_frame_size``, ``TypeError`` for an object msgpack cannot pack (give a
        ``default`` hook), ``ValueError`` for an integer out of msgpack's range or
        nesting too deep. Nothing is returned in any of these cases.
        """
        packers = self._packers
        try:
            packer = packers.pop()
        except IndexError:  # every pooled packer is busy in another thread or frame
            packer = msgpack.Packer(**self._packer_options)
        # A packer that raised is dropped: msgpack before 1.1 kept a half-written
        # object in its buffer, and one that packed an oversized object keeps its
        # grown buffer.
        try:
            data: bytes = packer.pack(item)
        except OverflowError as exc:
            raise ValueError(f"cannot pack as msgpack: {exc}") from exc
        if len(data) > self._max_frame_size:
            raise FrameTooLarge(len(data), self._max_frame_size, local=True)
        packers.append(packer)
        return data

    def encode_many(self, items: Sequence[Any]) -> bytes:
        """Return the frames of ``items``, one after the other: ``b"".join(map(encode, items))``.

        Packs them into one buffer (a ``Packer`` with ``autoreset=False``), then checks
        the total against ``max_frame_size``: within it, no object can exceed it. Over
        it, or when an item fails, encodes them one by one with
        [`encode`][wsframed.codecs.MsgpackCodec.encode], so the error raised (for the
        first item refused, nothing returned) is exactly what ``encode`` raises.
        """
        packers = self._batch_packers
        try:
            packer = packers.pop()
        except IndexError:
            packer = msgpack.Packer(autoreset=False, **self._packer_options)
        try:
            deque(map(packer.pack, items), maxlen=0)
            data: bytes = packer.bytes()
        except Exception:
            data = b""  # a packer that raised is dropped (see encode)
        else:
            packer.reset()
            packers.append(packer)
            if len(data) <= self._max_frame_size:
                return data
        encode = self.encode
        return b"".join([encode(item) for item in items])

    def decoder(self) -> MsgpackDecoder:
        """Return a fresh decoder for one connection."""
        return MsgpackDecoder(self._max_frame_size, self._unpacker_options, _shared=self._shared)

    def __repr__(self) -> str:
        shown = "".join(f", {name}={value!r}" for name, value in sorted(self._shown.items()))
        return f"MsgpackCodec(max_frame_size={self._max_frame_size}{shown})"


class _Shared:
    """What every decoder of one codec derives from its unpacker options, made once."""

    __slots__ = ("scanner_options", "unpackb", "unpacker_options")

    def __init__(self, unpacker_options: dict[str, Any]) -> None:
        self.unpacker_options = unpacker_options
        self.scanner_options = {k: unpacker_options[k] for k in _SCANNER_OPTIONS}
        # The fast path's unpackb (see MsgpackDecoder), None with decoding hooks.
        self.unpackb: Callable[[Buffer], Any] | None = None
        hooks = _HOOKS & unpacker_options.keys()
        if unpacker_options.get("ext_hook") is _ext_type:
            hooks -= {"ext_hook"}  # the codec's own: pure, it may run twice
        if not hooks:
            options = {k: v for k, v in unpacker_options.items() if k not in _STREAM_ONLY}
            self.unpackb = (
                functools.partial(msgpack.unpackb, **options) if options else msgpack.unpackb
            )


class MsgpackDecoder:
    """Decoding state of one connection; made by
    [`MsgpackCodec.decoder`][wsframed.codecs.MsgpackCodec.decoder].

    Received bytes wait in the decoder's own buffer and go to the unpacker in pieces
    that keep the object in progress within ``max_frame_size``. Iteration yields every
    complete object, then stops when the rest of an object is still to come.

    Whole objects only: msgpack preallocates a list for an array header before its
    items arrive (up to 10,000 slots, 80 KB), so an unpacker parsing a partial object
    can be made to hold far more memory than the bytes it was given: 1,000 nested
    array headers (5 KB) would hold 77 MB. Every piece the unpacker gets also goes to
    a *scanner*, an ``Unpacker`` used only with ``skip()`` (which builds nothing), and
    the unpacker is asked for as many objects as the scanner found complete, never
    more: an unpacker parses only when asked, so the object in progress stays bytes in
    its buffer (at most ``max_frame_size`` of them) until it is whole. Every slot it
    then preallocates is filled by at least one byte of the frame. The cost is one
    ``skip()`` per object, about 0.05 µs.

    Fast path: when the decoder is idle (no object in progress, nothing buffered) a
    fed ``bytes`` chunk of at most 16 KiB (and ``max_frame_size``) with at most 8
    array 16/32 or map 16/32 type bytes in it (so that what msgpack preallocates for
    it stays under 1 MB, freed at once) goes to ``msgpack.unpackb`` first, which
    decodes a chunk holding exactly one object (one WebSocket message per request,
    say) at a fraction of the cost of the streaming path, and hands back the rest of
    a chunk holding more (``ExtraData``), which takes the usual path. Anything else
    (a cut-off or malformed object) takes the usual path whole, so errors and their
    offsets are the same. With decoding hooks configured the fast path is off, so no
    hook ever runs twice for one object.

    Large objects: once the header of a bin, str or ext object has been checked and
    128 KiB or more of it are still to come, the chunks fed are only collected, then
    handed to the unpacker together when the object is complete (the scanner, which
    need not see them, starts afresh after it).
    """

    __slots__ = (
        "_base",
        "_buf",
        "_checked",
        "_ends_at",
        "_error",
        "_first_end",
        "_limit",
        "_pos",
        "_ready",
        "_rope",
        "_scan_base",
        "_scan_error",
        "_scanner",
        "_shared",
        "_skew",
        "_start",
        "_unpackb",
        "_unpacker",
        "_whole",
    )

    def __init__(
        self,
        max_frame_size: int,
        unpacker_options: dict[str, Any],
        *,
        _shared: _Shared | None = None,
    ) -> None:
        self._limit = max_frame_size
        shared = _Shared(unpacker_options) if _shared is None else _shared
        self._shared = shared
        # The unpacker and the scanner (about 56 KiB each) are made when the first
        # bytes need them (see _start_unpacking): an idle connection holds neither,
        # and one whose messages each hold one object (the fast path) never does.
        self._unpacker: Any = None
        self._scanner: Any = None
        # Objects the scanner found complete that the unpacker has not yet decoded,
        # and what the scanner raised, kept until the objects before it are yielded.
        self._whole = 0
        # Offsets: where the scanner's stream starts (a fresh scanner follows a large
        # object), and where the first object it last found whole ends.
        self._scan_base = 0
        self._first_end = 0
        self._scan_error: Exception | None = None
        self._unpackb = shared.unpackb
        # Objects decoded by the fast path, yielded before the unpacker's; and the
        # bytes the fast path took, which the unpacker never saw. The offsets below
        # count the bytes given to the unpacker (its tell()); errors add _skew to
        # report stream offsets.
        self._ready: deque[Any] | None = None  # made by the first fast-path object
        self._skew = 0
        # Bytes received and not yet fed to the unpacker start at _buf[_pos]; the
        # bytes before _pos were fed and are kept only while the header of the object
        # in progress is still unchecked. _base is the offset of _buf[0].
        self._buf = bytearray()
        self._pos = 0
        self._base = 0
        # Offset where the object in progress starts: the unpacker's tell()
        # after the last complete object.
        self._start = 0
        # Offset of the object whose header passed the early size check, and
        # where that object ends when its header says exactly (-1 otherwise).
        self._checked = -1
        self._ends_at = -1
        # Collecting the rest of a large object (see _ROPE_MIN): the chunks fed since,
        # while _buf is empty; None otherwise.
        self._rope: Rope | None = None
        self._error: DecodeError | FrameTooLarge | None = None

    def feed(self, data: Buffer) -> None:
        """Append received bytes; they are decoded by the next iteration.

        Raises the stored error of a failed decoder.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        rope = self._rope
        if rope is not None:
            rope.append(data)
            return
        buf = self._buf
        unpackb = self._unpackb
        if (
            not buf
            and type(data) is bytes
            and unpackb is not None
            and self._start == self._base
            and len(data) <= _FAST_MAX
            and len(data) <= self._limit
            and len(data) - len(data.translate(None, _PREALLOCATING)) <= _FAST_HEADERS
        ):
            # Idle, and a small chunk that cannot hold an object over the limit nor
            # make msgpack preallocate much: try the fast path (see the class docs).
            try:
                obj = unpackb(data)
                rest = b""
            except msgpack.ExtraData as extra:
                obj, rest = extra.unpacked, extra.extra
            except Exception:
                obj = _NOTHING  # cut off or malformed: the usual path decides
            if obj is not _NOTHING:
                ready = self._ready
                if ready is None:
                    ready = self._ready = deque()
                ready.append(obj)
                self._skew += len(data) - len(rest)
                if not rest:
                    return
                data = rest
        if self._unpacker is None:
            self._start_unpacking()
        queued = len(buf)
        buf += data
        # When nothing is waiting to be fed, give the bytes to the unpacker (and the
        # scanner) now if the object in progress stays within the limit (the usual
        # case). The copy in _buf stays until the next iteration has checked the
        # object's header.
        if self._pos == queued and len(buf) - self._start + self._base <= self._limit:
            self._unpacker.feed(data)
            self._scanner.feed(data)
            self._pos = len(buf)

    def __iter__(self) -> Iterator[Any]:
        """Yield every complete object buffered so far; stop when more bytes are needed.

        Raises ``DecodeError`` for malformed data and ``FrameTooLarge`` for an object
        over ``max_frame_size``, after yielding the objects before it; the decoder is
        then failed.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        ready = self._ready
        while ready:
            yield ready.popleft()
        if self._rope is not None:  # collecting a large object
            if self._base + self._rope.size < self._ends_at:
                return
            self._feed_rope()
        elif not self._buf:
            # Nothing fed since the last complete object was taken (an empty buffer
            # means the unpacker was exhausted): nothing more to yield.
            return
        unpacker = self._unpacker
        tell = unpacker.tell
        while True:
            whole = self._whole
            if whole:
                # The objects the scanner found whole, decoded by the unpacker's own
                # iteration (islice never asks for more): no Python call per object.
                # Where each ends is looked up only if one fails (_failed_at).
                n = 0
                try:
                    for n, obj in enumerate(islice(unpacker, whole), 1):  # noqa: B007
                        yield obj
                except Exception as exc:
                    self._start = self._failed_at(n)
                    raise self._fail_unpack(exc) from exc
                finally:
                    if self._error is None:  # also when the pass is abandoned
                        self._whole = whole - n
                        self._start = tell()
                continue
            if self._count_whole():
                continue
            if not self._refill():
                return

    def feed_eof(self) -> None:
        """Mark the end of the stream.

        Raises ``IncompleteFrame`` if part of an object is pending (the decoder is then
        failed), or the stored error of a failed decoder. Call it after iterating.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)  # a traceback that does not grow
        rope = self._rope
        pending = self._base + len(self._buf) + (rope.size if rope else 0) - self._start
        if pending > 0:
            self._error = IncompleteFrame(pending, offset=self._start + self._skew)
            raise self._error.with_traceback(None)  # a traceback that does not grow

    def _count_whole(self) -> bool:
        """Let the scanner skip the complete objects it was given; count them.

        Returns whether it found any. Raises what the scanner raised once the objects
        before it have been yielded.
        """
        if self._scan_error is not None:
            exc = self._scan_error
            raise self._fail_unpack(exc) from exc
        scanner = self._scanner
        skip = scanner.skip
        found = 0
        try:
            skip()
            found = 1
            self._first_end = self._scan_base + scanner.tell()
            while True:
                skip()
                found += 1
        except msgpack.OutOfData:
            pass
        except Exception as exc:
            self._scan_error = exc  # raised at the next call, when found are yielded
            if not found:
                raise self._fail_unpack(exc) from exc
        self._whole = found
        return found > 0

    def _refill(self) -> bool:
        """Check the object in progress, then feed the unpacker its next piece.

        Called when the scanner found no more complete objects, so every byte fed
        since ``_start`` belongs to the incomplete object. Returns ``False`` when
        nothing is left.
        """
        buf = self._buf
        base = self._base
        pos = self._pos
        fed = base + pos
        start = self._start
        pending = fed - start
        if not pending and pos == len(buf):  # everything fed was decoded
            if pos:
                buf.clear()
                self._base = fed
                self._pos = 0
            return False
        limit = self._limit
        unchecked = False
        if pending:
            if pending >= limit:  # the object needs at least one more byte
                raise self._fail(FrameTooLarge(pending + 1, limit, at_least=True))
            if self._checked != start:
                if self._check_header(start - base):
                    self._checked = start
                else:
                    unchecked = True
        # Drop the bytes already fed, keeping the header of an unchecked object.
        drop = (start if unchecked else fed) - base
        if drop > 0:
            del buf[:drop]
            self._base = base + drop
            pos -= drop
        available = len(buf) - pos
        if not available:
            self._pos = pos
            if pending and not unchecked and self._ends_at - fed >= _ROPE_MIN:
                self._rope = Rope()  # a large object: collect the rest (_buf is empty)
            return False
        size = min(available, limit - pending)
        piece = buf if size == len(buf) else buf[pos : pos + size]
        self._unpacker.feed(piece)
        self._scanner.feed(piece)
        self._pos = pos + size
        return True

    def _feed_rope(self) -> None:
        """Hand the collected rest of a large object to the unpacker.

        The scanner, which saw only the start of the object, is replaced by a fresh
        one for the bytes after it; they go through ``feed`` as usual.
        """
        rope = self._rope
        assert rope is not None
        self._rope = None
        need = self._ends_at - self._base  # the bytes of the object still missing
        body, rest = rope.split(need)
        feed = self._unpacker.feed
        for piece in body:
            feed(piece)
        self._base += need  # fed and never buffered: _buf is still empty
        # The object is whole (a bin, str or ext: nothing preallocated for it).
        self._scanner = msgpack.Unpacker(**self._shared.scanner_options)
        self._scan_base = self._base
        self._first_end = self._base
        self._whole += 1
        for piece in rest:
            self.feed(piece)

    def _start_unpacking(self) -> None:
        """Make the unpacker and the scanner, for the first bytes that need them."""
        shared = self._shared
        self._unpacker = msgpack.Unpacker(**shared.unpacker_options)
        # The scanner has the unpacker's limits, which it checks as it skips.
        self._scanner = msgpack.Unpacker(**shared.scanner_options)

    def _failed_at(self, n: int) -> int:
        """The offset of the object after the first ``n`` of a batch, which failed.

        The batch started at ``_start``; the scanner noted where its first object ends.
        The objects after that one lie in ``_buf`` (fed since the last ``_refill``):
        a fresh scanner skips ``n - 1`` of them there. Runs once, on the error path.
        """
        if n == 0:
            return self._start
        end = self._first_end
        if n == 1:
            return end
        region = bytes(self._buf[end - self._base : self._pos])
        limit = max(len(region), self._limit)
        options = dict(self._shared.scanner_options, max_buffer_size=limit)
        replay = msgpack.Unpacker(**options)
        replay.feed(region)
        for _ in range(n - 1):
            replay.skip()
        return end + int(replay.tell())

    def _check_header(self, index: int) -> bool:
        """Refuse an object whose header at ``_buf[index]`` declares it over the limit.

        Returns ``False`` while the header's length field is still incomplete.
        """
        declared = declared_size(self._buf, index)
        if declared is None:
            return False
        size, exact = declared
        if size > self._limit:
            raise self._fail(FrameTooLarge(size, self._limit, at_least=not exact))
        self._ends_at = self._base + index + size if exact else -1
        return True

    def _fail_unpack(self, exc: Exception) -> DecodeError | FrameTooLarge:
        """Turn an unpacker or scanner exception into the decoder's stored error."""
        offset = self._start + self._skew
        if isinstance(exc, msgpack.StackError):
            reason = "msgpack object nested deeper than the unpacker allows (1024 levels)"
            return self._fail(DecodeError(reason, offset=offset))
        if type(exc) is ValueError and _LIMIT_MESSAGE.fullmatch(str(exc)):
            # A header over one of the max_*_len limits derived from max_frame_size.
            # Report the object's declared size when its own header is the culprit.
            limit = self._limit
            declared = declared_size(self._buf, self._start - self._base)
            if declared is not None and declared[0] > limit:
                return self._fail(FrameTooLarge(declared[0], limit, at_least=not declared[1]))
            return self._fail(FrameTooLarge(limit + 1, limit, at_least=True))
        if isinstance(exc, msgpack.FormatError):
            reason = "malformed msgpack data"
        else:  # a hook's message may quote the data: keep it short
            message = str(exc)
            if len(message) > _REASON_MAX:
                message = message[:_REASON_MAX] + "..."
            reason = f"cannot decode msgpack object: {type(exc).__name__}: {message}"
        return self._fail(DecodeError(reason, offset=offset))

    def _fail(self, error: DecodeError | FrameTooLarge) -> DecodeError | FrameTooLarge:
        """Store ``error`` for every later call and release the buffers."""
        self._error = error
        self._buf = bytearray()
        self._rope = None
        self._pos = 0
        self._unpacker = None
        self._scanner = None
        return error
